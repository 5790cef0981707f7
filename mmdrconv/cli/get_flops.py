"""Params and multiply-adds of a config's model for one image (DRConv
counted as what it computes: one conv per output pixel plus its guide and
generator). Counts the network forward without post-processing.

    python tools/analysis/get_flops.py CONFIG [--shape H W]

It counts one image (batch 1) at 800 x 1344 by default, the COCO test size,
through the network forward (mode='tensor', no test-time post-processing).
The benchmark suite's GMACs differ on purpose: they are per image at the
task's profile size (e.g. 128 x 128 for the generated COCO task), from a
full inference step (test_step) on a batch of two divided by two. Pass
--shape H W to count at the suite's size.
"""
import argparse

from . import at_least, summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument('config')
    parser.add_argument('--shape', type=at_least(1), nargs=2,
                        default=(800, 1344), metavar=('H', 'W'),
                        help='image size; batch size is 1')
    args = parser.parse_args(argv)
    from ..analysis.profile import network_complexity
    counts = network_complexity(args.config, args.shape)
    height, width = args.shape
    network_input = 'x'.join(map(str, counts['input_shape']))
    print(f'config: {args.config}\n'
          f'batch size: 1 (one image)\n'
          f'input size: {height}x{width} image -> {network_input} network '
          'input (after the data preprocessor\'s padding)\n'
          'counted: the network forward (mode="tensor": backbone, neck and '
          'heads), without post-processing (NMS, mask pasting, resizing); '
          'conv/linear/DRConv layers only\n'
          f'params: {counts["params"] / 1e6:.2f} M\n'
          f'multiply-adds: {counts["macs"] / 1e9:.2f} G for one image\n'
          f'DRConv layers: {counts["drconv_layers"]}')


if __name__ == '__main__':
    main()
