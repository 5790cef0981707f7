"""Params, multiply-adds, latency and peak memory of one config's model,
in its own process: ``python -m mmdrconv.suite.profile CONFIG OUT``."""
import argparse

import mmengine
import torch
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper

from ..apis import build_model, demo_batch, load_config
from ..profiling import count_complexity, median_latency, peak_memory


def profile_config(config: str, size=(128, 128), batch_size: int = 2,
                   repeat: int = 10) -> dict:
    torch.manual_seed(0)
    cfg = load_config(config)
    model = revert_sync_batchnorm(build_model(cfg))
    model.init_weights()
    batch = demo_batch(cfg, batch_size=batch_size, size=tuple(size))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-4))

    def infer():
        with torch.no_grad():
            model.test_step(batch)

    def train():
        model.train_step(batch, optim)

    model.eval()
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
    parser.add_argument('out_file')
    parser.add_argument('--size', type=int, nargs=2, default=(128, 128),
                        metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=10)
    args = parser.parse_args(argv)
    mmengine.dump(
        profile_config(args.config, args.size, args.batch_size, args.repeat),
        args.out_file)


if __name__ == '__main__':
    main()
