"""Params, multiply-adds, inference latency, training-step time and peak
memory of a config's model on this machine (CPU), on a random batch.

    python tools/analysis/benchmark.py CONFIG [--size H W] [--batch-size 2]
        [--repeat 10] [--out FILE.json]

(also ``python -m mmdrconv.analysis.profile``; the benchmark suite runs it
once per variant, each in its own process).
"""
import argparse
import json

import mmengine
import torch
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper

from ..apis import build_model, load_config
from ..cli import at_least, user_errors
from ..outputs import check_output_file
from .complexity import count_complexity
from .inputs import random_batch
from .timing import keep_freed_memory, median_latency, peak_memory


def profile_config(config: str, size=(128, 128), batch_size: int = 2,
                   repeat: int = 10) -> dict:
    """Params, multiply-adds, inference latency, training-step time and peak
    memory of ``config``'s model on a random batch, on this machine."""
    torch.manual_seed(0)
    cfg = load_config(config)
    model = revert_sync_batchnorm(build_model(cfg))
    model.init_weights()
    batch = random_batch(cfg, batch_size=batch_size, size=tuple(size))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-4))

    def infer():
        with torch.no_grad():
            model.test_step(batch)

    def train():
        model.train_step(batch, optim)

    model.eval()
    keep_freed_memory()
    complexity = count_complexity(model, infer)
    latency = median_latency(infer, repeat)
    model.train()
    train_time = median_latency(train, max(2, repeat // 2))
    # Memory last: its allocator settings slow allocation.
    train_memory = peak_memory(train)
    model.eval()
    infer_memory = peak_memory(infer)
    return dict(params=complexity['params'], macs=complexity['macs'],
                latency_ms=latency * 1e3, train_step_ms=train_time * 1e3,
                infer_peak_mib=infer_memory / 2**20,
                train_peak_mib=train_memory / 2**20,
                image_size=list(size), batch_size=batch_size,
                threads=torch.get_num_threads())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--size', type=at_least(1), nargs=2,
                        default=(512, 512), metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=at_least(2), default=2,
                        help='at least 2: BatchNorm trains on the batch')
    parser.add_argument('--repeat', type=at_least(1), default=10)
    parser.add_argument('--out', help='also write the numbers to this JSON')
    args = parser.parse_args(argv)
    if args.out:
        with user_errors():
            check_output_file(args.out, '--out')  # not after the profiling
    profile = profile_config(args.config, args.size, args.batch_size,
                             args.repeat)
    if args.out:
        mmengine.dump(profile, args.out)
    print(json.dumps(profile, indent=2))


if __name__ == '__main__':
    main()
