"""CPU forward of the 'mixture' DRConv: materialised filters vs mixed outputs.

Per shape of bench_drconv.py, in one process and interleaved round by
round: nn.Conv2d, the mixture layer building its B x m filters
(``mixture_algorithm='filters'``: region_conv) and the same layer mixing the
outputs of its num_bases kernels per pixel (mmdrconv.core.ops.mixture_conv; what
``mixture_algorithm='auto'`` picks for small pointwise maps). Prints each as
a ratio to nn.Conv2d (median over rounds) and which one the layer picks.

    python benchmarks/bench_mixture_cpu.py [--threads 2] [--cpu-time]
        [--backward] [--shapes NAME ...]

``--backward`` times forward + backward (a training step's share) instead
of the forward without grad. Besides bench_drconv.py's shapes, the suite's
(1/4-width ResNet-50 c3-c5 on its small generated images, batch 4), those
of the models of bench_models.py, and three where the layer's choice
turns.

``--cpu-time`` times by the calling thread's CPU time (with --threads 1),
which a machine shared with other jobs disturbs less than wall time.
"""
import argparse

import torch
import torch.nn as nn

from bench_drconv import SHAPES as GPU_SHAPES
from mmdrconv.core.timing import (interleaved_rounds, keep_freed_memory,
                                  num_threads)
from mmdrconv.core.layers import DRConv
from mmdrconv.core.ops.mixture_conv import mixed_output_conv, mixes_outputs

# (batch, in, out, h, w, k, padding, dilation) of the suite's c3-c5 conv2
# (configs/synthetic: base_channels=16): Mask R-CNN at 128x128, DeepLabV3-D8
# at 64x128 (dilated c4, c5).
SUITE_SHAPES = {
    'suite mask-rcnn c3 3x3 32@16x16': (4, 32, 32, 16, 16, 3, 1, 1),
    'suite mask-rcnn c4 3x3 64@8x8': (4, 64, 64, 8, 8, 3, 1, 1),
    'suite mask-rcnn c5 3x3 128@4x4': (4, 128, 128, 4, 4, 3, 1, 1),
    'suite deeplabv3 c3 3x3 32@8x16': (4, 32, 32, 8, 16, 3, 1, 1),
    'suite deeplabv3 c4 3x3 d2 64@8x16': (4, 64, 64, 8, 16, 3, 2, 2),
    'suite deeplabv3 c5 3x3 d4 128@8x16': (4, 128, 128, 8, 16, 3, 4, 4),
}
# MobileNetV2-D8's pointwise convs at the suite's 64x128 (batch 4), one per
# map size; the real-size models of benchmarks/bench_models.py: ResNet-50
# DeepLabV3-D8 at 256x512 (batch 1) and RetinaNet at 320x320 (batch 2).
MODEL_SHAPES = {
    'suite mobilenetv2 1x1 16->96@32x64': (4, 16, 96, 32, 64, 1, 0, 1),
    'suite mobilenetv2 1x1 144->24@16x32': (4, 144, 24, 16, 32, 1, 0, 1),
    'suite mobilenetv2 1x1 384->64@8x16': (4, 384, 64, 8, 16, 1, 0, 1),
    'r50-d8 256x512 c3 3x3 128@32x64': (1, 128, 128, 32, 64, 3, 1, 1),
    'r50-d8 256x512 c4 3x3 d2 256@32x64': (1, 256, 256, 32, 64, 3, 2, 2),
    'r50-d8 256x512 c5 3x3 d4 512@32x64': (1, 512, 512, 32, 64, 3, 4, 4),
    'retinanet 320 c3 3x3 128@40x40': (2, 128, 128, 40, 40, 3, 1, 1),
    'retinanet 320 c4 3x3 256@20x20': (2, 256, 256, 20, 20, 3, 1, 1),
    'retinanet 320 c5 3x3 512@10x10': (2, 512, 512, 10, 10, 3, 1, 1),
}
# Where the choice turns for k x k kernels (256 vs 1024 pixels per sample).
BOUNDARY_SHAPES = {
    'boundary 3x3 128@16x16': (4, 128, 128, 16, 16, 3, 1, 1),
    'boundary 3x3 256@16x16': (4, 256, 256, 16, 16, 3, 1, 1),
    'boundary 3x3 256@32x32': (4, 256, 256, 32, 32, 3, 1, 1),
}
SHAPES = {**GPU_SHAPES, **SUITE_SHAPES, **MODEL_SHAPES, **BOUNDARY_SHAPES}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--cpu-time', action='store_true')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--shapes', nargs='*', default=None)
    parser.add_argument('--backward', action='store_true',
                        help='time forward + backward')
    args = parser.parse_args()
    with num_threads(args.threads):
        run(args)


def run(args):
    keep_freed_memory()
    clock = 'thread_cpu' if args.cpu_time else 'wall'
    print(f'torch {torch.__version__}, {args.threads} threads, '
          f'{"thread CPU time" if args.cpu_time else "wall time"}, '
          f'median of {args.repeat} x {args.rounds} interleaved rounds, '
          f'{"forward + backward" if args.backward else "forward"}')
    print('| shape | conv ms | materialised / conv | mixed outputs / conv '
          '| layer picks |')
    print('|---|---|---|---|---|')
    for name, shape in SHAPES.items():
        if args.shapes and not any(s in name for s in args.shapes):
            continue
        batch, cin, cout, h, w, k, pad, dil = shape
        torch.manual_seed(0)
        x = torch.randn(batch, cin, h, w, requires_grad=args.backward)
        conv = nn.Conv2d(cin, cout, k, padding=pad, dilation=dil)
        layer = DRConv(cin, cout, k, padding=pad, dilation=dil,
                       generator='mixture')
        layer.mixture_algorithm = 'filters'  # region_conv on the filters
        gen = layer.filter_generator

        def mixed():
            return mixed_output_conv(x, gen.coefficients(x), gen.bases,
                                     layer.guide.weight, layer.guide.bias,
                                     layer.bias, layer.stride, layer.padding,
                                     layer.dilation)

        runs = dict(conv=lambda: conv(x), materialised=lambda: layer(x),
                    mixed=mixed)
        if args.backward:
            runs = {key: _with_backward(fn) for key, fn in runs.items()}
        with torch.no_grad():
            layer.guide.weight.normal_(std=0.1)
            out_pixels = conv(x).shape[2:].numel()
        with torch.set_grad_enabled(args.backward):
            rounds = interleaved_rounds(runs, args.rounds, args.repeat,
                                        warmup=1, clocks=(clock, ))
        picks = 'mixed' if mixes_outputs(
            'auto', x, layer.kernel_size, out_pixels, 1) else 'materialised'
        conv_ms = rounds.seconds('conv', clock).median * 1e3
        ratios = {key: rounds.ratio(key, 'conv', clock).median
                  for key in ('materialised', 'mixed')}
        print(f'| {name} | {conv_ms:.2f} | {ratios["materialised"]:.2f} | '
              f'{ratios["mixed"]:.2f} | {picks} |', flush=True)


def _with_backward(forward):
    def step():
        forward().sum().backward()
    return step


if __name__ == '__main__':
    main()
