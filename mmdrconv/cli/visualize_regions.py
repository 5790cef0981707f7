"""PNG overlays of every DRConv layer's region map for one image.

    python tools/analysis/visualize_regions.py CONFIG CHECKPOINT IMAGE OUT_DIR
        [--alpha 0..1] [--trust-checkpoint]
"""
import argparse

from . import add_trust_arg, parse, summary, user_errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('out_dir')
    parser.add_argument('--alpha', type=float, default=0.5,
                        help='opacity of the region colours, 0 to 1')
    add_trust_arg(parser)
    args = parse(parser, argv)
    if not 0 <= args.alpha <= 1:
        parser.error(f'--alpha must be in [0, 1], got {args.alpha}')
    from ..analysis.region_maps import render_region_maps
    with user_errors():
        written = render_region_maps(args.config, args.checkpoint,
                                     args.image, args.out_dir, args.alpha)
    for name, path in written.items():
        print(f'{name}: {path}')


if __name__ == '__main__':
    main()
