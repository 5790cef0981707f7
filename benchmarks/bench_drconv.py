"""DRConv speed and memory against nn.Conv2d and the naive reference.

Prints, per shape, forward and forward+backward time of each DRConv generator
as a ratio to nn.Conv2d of the same shape and to the naive all-regions
reference (same layer, same filters, computed as m convolutions then
select), and the training-step peak memory ratio to that reference. All
numbers come from this one process, side by side. glibc is told to keep freed
memory (as a caching allocator would) so that times measure the ops rather
than page faults on fresh multi-megabyte tensors; see
mmdrconv.core.timing.keep_freed_memory.

    python benchmarks/bench_drconv.py [--repeat 5] [--rounds 3] [--shapes r50]

On a GPU (``--device cuda``, see device_bench.py): each generator, the
region_conv op, cuDNN and the naive reference in fp32 and bf16, plus a
ResNet-50 training step with DRConv in c3-c5, in one command:

    python benchmarks/bench_drconv.py --device cuda --json drconv_gpu.json

``--dry-run`` runs that code path on tiny shapes on any device.
"""
import argparse
import statistics

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdrconv.core.timing import (interleaved_rounds, keep_freed_memory,
                                  median_latency, num_threads,
                                  peak_memory)
from mmdrconv.core.layers import DRConv
from mmdrconv.core.ops import naive_region_conv

# name: (batch, in, out, height, width, kernel, padding, dilation)
SHAPES = {
    'r50-c3 3x3 128@100x100': (2, 128, 128, 100, 100, 3, 1, 1),
    'r50-c4 3x3 256@50x50': (2, 256, 256, 50, 50, 3, 1, 1),
    'r50-c5 3x3 512@25x25': (2, 512, 512, 25, 25, 3, 1, 1),
    'deeplabv3-d8 3x3 d2 256@64x128': (2, 256, 256, 64, 128, 3, 2, 2),
    'shufflenetv2 1x1 58@28x28': (8, 58, 58, 28, 28, 1, 0, 1),
    'shufflenetv2 1x1 116@14x14': (8, 116, 116, 14, 14, 1, 0, 1),
    'shufflenetv2 1x1 232@7x7': (8, 232, 232, 7, 7, 1, 0, 1),
    'mobilenetv2 1x1 32->192@56x56': (8, 32, 192, 56, 56, 1, 0, 1),
}


def naive_forward(layer: DRConv, x):
    return naive_region_conv(x, layer.region_filters(x), layer.guide(x),
                             layer.bias, layer.stride, layer.padding,
                             layer.dilation, layer.groups)


def training_step(forward, x):
    def step():
        out = forward(x)
        out.backward(torch.ones_like(out))
    return step


def paired_ratio(fn, reference, repeat, rounds):
    """fn's time / reference's time in paired, interleaved rounds (median
    over rounds), and the reference's median seconds."""
    rounds = interleaved_rounds(dict(fn=fn, reference=reference), rounds,
                                repeat)
    return (rounds.ratio('fn', 'reference').median,
            rounds.seconds('reference').median)


def epilogue_floor(layer: DRConv, x):
    """The forward a modulated DRConv could not beat with a fused epilogue:
    its convolution (the guide's m channels included) and one pass over
    the output (read the conv's, write the result)."""
    weight = torch.cat([layer.weight, layer.guide.weight])
    scale = torch.rand(layer.out_channels, 1, 1)

    def forward():
        both = F.conv2d(x, weight, None, layer.stride, layer.padding,
                        layer.dilation)
        return both[:, :layer.out_channels] * scale
    return forward


def measure(shape, generators, repeat, rounds, region_num):
    batch, cin, cout, h, w, k, pad, dil = shape
    torch.manual_seed(0)
    x = torch.randn(batch, cin, h, w, requires_grad=True)
    conv = nn.Conv2d(cin, cout, k, padding=pad, dilation=dil)
    rows = []
    for generator in generators:
        layer = DRConv(cin, cout, k, padding=pad, dilation=dil,
                       region_num=region_num, generator=generator)
        floor = None
        with torch.no_grad():  # spread pixels over the regions
            layer.guide.weight.normal_(std=0.1)
            fwd_ratio, conv_fwd = paired_ratio(
                lambda: layer(x), lambda: conv(x), repeat, rounds)
            if generator == 'modulated':
                floor, _ = paired_ratio(epilogue_floor(layer, x),
                                        lambda: conv(x), repeat, rounds)
            naive_fwd = median_latency(lambda: naive_forward(layer, x), repeat)
        train_ratio, conv_train = paired_ratio(
            training_step(layer, x), training_step(conv, x), repeat, rounds)
        naive_train = median_latency(
            training_step(lambda t: naive_forward(layer, t), x),
            max(1, repeat // 2))
        rows.append(
            dict(generator=generator,
                 fwd_vs_conv=fwd_ratio,
                 fwd_floor_vs_conv=floor,
                 train_vs_conv=train_ratio,
                 fwd_speedup_vs_naive=naive_fwd / (fwd_ratio * conv_fwd),
                 train_speedup_vs_naive=naive_train / (train_ratio *
                                                       conv_train),
                 conv_fwd_ms=conv_fwd * 1e3,
                 layer=layer))
    return x, rows


def add_memory(x, rows):
    # After every timing: the malloc settings it needs slow allocation.
    for row in rows:
        layer = row.pop('layer')
        for _ in range(2):  # second run: steady state (no lazy init)
            mem = peak_memory(training_step(layer, x))
            naive = peak_memory(
                training_step(lambda t: naive_forward(layer, t), x))
        row['mem_vs_naive'] = mem / naive
        row['mem_mib'] = mem / 2**20
        row['naive_mem_mib'] = naive / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--rounds', type=int, default=3,
                        help='back-to-back rounds per ratio to nn.Conv2d')
    parser.add_argument('--region-num', type=int, default=8)
    parser.add_argument('--generators', nargs='+',
                        default=['modulated', 'mixture'])
    parser.add_argument('--shapes', nargs='*', default=None,
                        help='substrings of shape names to run (default all)')
    parser.add_argument('--threads', type=int, default=None)
    device = parser.add_argument_group('device mode (device_bench.py)')
    device.add_argument('--device', default='cpu',
                        help="'cuda' runs the GPU benchmark")
    device.add_argument('--dry-run', action='store_true',
                        help='the device benchmark on tiny shapes (any '
                        'device), to check that it runs')
    device.add_argument('--dtypes', nargs='+', default=['fp32', 'bf16'],
                        choices=['fp32', 'bf16'])
    device.add_argument('--backend', default='auto',
                        choices=['auto', 'triton', 'torch'],
                        help='backend of the DRConv ops')
    device.add_argument('--json', default=None, help='write results here')
    device.add_argument('--time-budget', type=float, default=360,
                        help='seconds; later measurements are skipped')
    device.add_argument('--no-backbone', action='store_true')
    args = parser.parse_args()
    with num_threads(args.threads):
        if args.device != 'cpu' or args.dry_run:
            import device_bench
            device_bench.run(args, SHAPES)
        else:
            run_cpu(args)


def run_cpu(args):
    keep_freed_memory()
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'm={args.region_num}, median of {args.repeat}, '
          f'{args.rounds} paired rounds')
    header = ('| shape | generator | conv fwd ms | fwd / conv | '
              'fwd floor / conv | train / conv | fwd speed-up vs naive | '
              'train speed-up vs naive | train peak mem / naive |')
    measured = []
    for name, shape in SHAPES.items():
        if args.shapes and not any(s in name for s in args.shapes):
            continue
        print(f'timing {name} ...', flush=True)
        measured.append((name, *measure(shape, args.generators, args.repeat,
                                        args.rounds, args.region_num)))
    for _, x, rows in measured:
        add_memory(x, rows)
    print(header)
    print('|' + '---|' * 9)
    summary = {g: [] for g in args.generators}
    for name, _, rows in measured:
        for row in rows:
            row['pointwise'] = SHAPES[name][5] == 1
            summary[row['generator']].append(row)
            floor = row['fwd_floor_vs_conv']
            print(f"| {name} | {row['generator']} | "
                  f"{row['conv_fwd_ms']:.2f} | {row['fwd_vs_conv']:.2f} | "
                  f"{'-' if floor is None else f'{floor:.2f}'} | "
                  f"{row['train_vs_conv']:.2f} | "
                  f"{row['fwd_speedup_vs_naive']:.2f} | "
                  f"{row['train_speedup_vs_naive']:.2f} | "
                  f"{row['mem_vs_naive']:.2f} "
                  f"({row['mem_mib']:.0f} / {row['naive_mem_mib']:.0f} MiB) |")
    for generator, rows in summary.items():
        if not rows:
            continue
        fwd = [r['fwd_vs_conv'] for r in rows]
        pointwise = [r['fwd_vs_conv'] for r in rows if r['pointwise']]
        speedup = statistics.median(r['train_speedup_vs_naive'] for r in rows)
        memory = statistics.median(r['mem_vs_naive'] for r in rows)
        print(f'{generator}: forward / conv median '
              f'{statistics.median(fwd):.2f} max {max(fwd):.2f}'
              + (f'; 1x1 shapes median {statistics.median(pointwise):.2f} '
                 f'max {max(pointwise):.2f}' if pointwise else '')
              + f'; train speed-up vs naive median {speedup:.2f}; train '
              f'peak memory / naive median {memory:.2f}')


if __name__ == '__main__':
    main()
