"""Params, multiply-adds, inference latency, training-step time and peak
memory of a config's model on this machine (CPU), on a random batch.

The command lines are ``tools/analysis/benchmark.py`` and
``tools/analysis/get_flops.py`` (mmdrconv/cli/benchmark.py, get_flops.py);
the benchmark suite runs the first once per variant, each in its own
process, so that one model's allocations cannot slow the next.
"""
from typing import Sequence

import torch
from mmengine.optim import OptimWrapper

from ..apis import model_for_measuring
from ..core.layers import DRConv
from ..core.complexity import count_complexity
from .inputs import random_batch
from ..core.timing import keep_freed_memory, median_latency, peak_memory


def profile_config(config: str, size=(128, 128), batch_size: int = 2,
                   repeat: int = 10) -> dict:
    """Params, multiply-adds, inference latency, training-step time and peak
    memory of ``config``'s model on a random batch, on this machine."""
    cfg, model = model_for_measuring(config)
    batch = random_batch(cfg, batch_size=batch_size, size=tuple(size))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-4))

    def infer():
        with torch.no_grad():
            model.test_step(batch)

    def train():
        model.train_step(batch, optim)

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


def network_complexity(config: str, shape: Sequence[int] = (800, 1344)
                       ) -> dict:
    """Params and multiply-adds of one image of ``shape`` (H, W) through
    ``config``'s network forward (``mode='tensor'``: backbone, neck and
    heads, without post-processing such as NMS or resizing), and the
    network input's shape after the data preprocessor's padding."""
    cfg, model = model_for_measuring(config, init_weights=False)
    batch = random_batch(cfg, batch_size=1, size=tuple(shape))
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
    counts = count_complexity(
        model, lambda: model(data['inputs'], data['data_samples'],
                             mode='tensor'))
    return dict(counts,
                input_shape=tuple(data['inputs'].shape),
                drconv_layers=sum(isinstance(m, DRConv)
                                  for m in model.modules()))


__all__ = ['profile_config', 'network_complexity']
