"""Cost of DRConv's export formulation relative to its fast path.

While exporting (torch.export / torch.onnx.export), region_conv and
region_scale switch to traceable forms (mmdrconv/core/ops/export_forms.py). This
prints, per shape and generator, the forward time and peak memory of that
form in PyTorch as a ratio to the fast path, measured side by side in this
process (interleaved rounds), plus the multiply-add ratio by construction.

    python benchmarks/bench_export_forms.py [--repeat 5] [--rounds 3]
        [--threads 1]
"""
import argparse
from unittest import mock

import torch

from mmdrconv import DRConv
from mmdrconv.core.timing import (interleaved_rounds, keep_freed_memory,
                                  num_threads, peak_memory)

# name: (batch, in, out, height, width, kernel, padding)
SHAPES = {
    'r50-c4 3x3 256@50x50': (1, 256, 256, 50, 50, 3, 1),
    'r50-c5 3x3 512@25x25': (1, 512, 512, 25, 25, 3, 1),
    'shufflenetv2 1x1 116@14x14': (8, 116, 116, 14, 14, 1, 0),
}


def exporting():
    """Make the ops take their export form, as during torch.onnx.export."""
    return mock.patch('torch.compiler.is_exporting', lambda: True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--region-num', type=int, default=8)
    parser.add_argument('--threads', type=int, default=1,
                        help='1 is steadiest on a shared machine')
    args = parser.parse_args()
    with num_threads(args.threads):
        run(args)


def run(args):
    torch.manual_seed(0)
    keep_freed_memory()
    print(f'{torch.get_num_threads()} threads, m = {args.region_num}; '
          'ratios: export form / fast path (forward, no grad)')
    print('| shape | generator | time | peak memory | multiply-adds |')
    print('|---|---|---|---|---|')
    for name, (b, c, o, h, w, k, p) in SHAPES.items():
        x = torch.randn(b, c, h, w)
        for generator in ('modulated', 'mixture'):
            layer = DRConv(c, o, k, padding=p, region_num=args.region_num,
                           generator=generator).eval()

            def fast():
                with torch.no_grad():
                    layer(x)

            def export_form():
                with torch.no_grad(), exporting():
                    layer(x)

            rounds = interleaved_rounds(dict(fast=fast, export=export_form),
                                        args.rounds, args.repeat)
            memory = peak_memory(export_form) / max(peak_memory(fast), 1)
            # (mixture, groups 1: the n bases' outputs mixed per pixel)
            macs = '1 (gather + mul)' if generator == 'modulated' else \
                f"{layer.filter_generator.num_bases} (n bases' outputs)"
            ratio = rounds.ratio('export', 'fast').median
            print(f'| {name} | {generator} | {ratio:.2f} | {memory:.2f} | '
                  f'{macs} |')


if __name__ == '__main__':
    main()
