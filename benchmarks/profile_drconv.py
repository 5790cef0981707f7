"""Where a DRConv step spends its time on the CPU (torch.profiler).

Two profiles, each beside its standard twin in the same process:
- a 1x1 DRConv forward (default generator) at MobileNetV2's worst shape
  (32 -> 192 channels, 56x56, batch 8) against ``nn.Conv2d``;
- a training step of the suite's DeepLabV3 MobileNetV2 model with DRConv in
  its 1x1 convs against the standard model.

Prints, per profile, the operators that take the most self CPU time,
summed over the profiled calls, and the total; the difference of the two
totals is what DRConv adds, and the table says to which operators it goes.

    python benchmarks/profile_drconv.py [--calls 10] [--top 15] [--threads 2]
"""
import argparse

import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile

_MOBILENET = ('configs/synthetic/mobilenet-v2-d8{}_deeplabv3_synthetic-'
              'cityscapes.py')


def profiled(fn, calls: int):
    """Self CPU time per operator (ms, summed over ``calls``) and the wall
    total, after two warm-up calls."""
    for _ in range(2):
        fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            fn()
    rows = {}
    for event in prof.key_averages():
        rows[event.key] = rows.get(event.key, 0.0) + \
            event.self_cpu_time_total / 1e3
    return rows


def print_side_by_side(title, twin, drconv, top):
    total_twin, total_drconv = sum(twin.values()), sum(drconv.values())
    print(f'\n## {title}\n')
    print(f'total self CPU ms: twin {total_twin:.1f}, DRConv '
          f'{total_drconv:.1f} ({total_drconv / total_twin:.2f}x)\n')
    print('| operator | twin ms | DRConv ms | DRConv - twin ms | '
          'share of the difference |')
    print('|---|---|---|---|---|')
    extra = total_drconv - total_twin
    keys = sorted(set(twin) | set(drconv),
                  key=lambda k: -abs(drconv.get(k, 0) - twin.get(k, 0)))
    for key in keys[:top]:
        a, b = twin.get(key, 0.0), drconv.get(key, 0.0)
        share = (b - a) / extra if extra else float('nan')
        print(f'| {key} | {a:.1f} | {b:.1f} | {b - a:+.1f} | {share:.0%} |')


def layer_profiles(calls):
    from mmdrconv.core.layers import DRConv
    from mmdrconv.core.timing import keep_freed_memory
    keep_freed_memory()
    x = torch.randn(8, 32, 56, 56)
    conv = nn.Conv2d(32, 192, 1, bias=False).eval()
    layer = DRConv(32, 192, 1, bias=False).eval()
    with torch.no_grad():
        layer.weight.copy_(conv.weight)
        twin = profiled(lambda: conv(x), calls)
        drconv = profiled(lambda: layer(x), calls)
    return twin, drconv


def model_profiles(calls):
    import logging
    import sys

    from mmengine.logging import MMLogger
    sys.path.insert(0, 'benchmarks')
    from bench_models import Variant
    # Not the per-parameter initialisation report of every model built.
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    from mmdrconv.core.timing import keep_freed_memory
    keep_freed_memory()
    twin = Variant(_MOBILENET.format(''), None, (64, 128), None)
    drconv = Variant(_MOBILENET.format('-drconv'), None, (64, 128), None)
    return (profiled(twin.train_step, calls),
            profiled(drconv.train_step, calls))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--calls', type=int, default=10)
    parser.add_argument('--top', type=int, default=15)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}, {args.threads} threads, '
          f'{args.calls} profiled calls after 2 warm-up calls')
    print_side_by_side(
        '1x1 DRConv forward, 32 -> 192 @ 56x56, batch 8 (vs nn.Conv2d)',
        *layer_profiles(args.calls), args.top)
    print_side_by_side(
        'DeepLabV3 MobileNetV2 (synthetic task) training step, DRConv in '
        'the 1x1 convs (vs the standard model)',
        *model_profiles(args.calls), args.top)


if __name__ == '__main__':
    main()
