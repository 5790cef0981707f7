"""Generate the demo datasets: COCO-format shapes or Cityscapes-format
street scenes, deterministic from --seed.

    python tools/generate_data.py {coco,cityscapes} OUT_DIR [--train N]
        [--val N] [--height H --width W] [--seed S] [--appearance-cue P]
        [--object-size LOW HIGH]

Regenerating into OUT_DIR replaces the data generated there before; a
folder another run is generating into is refused.
"""
import argparse

from mmdrconv.cli import at_least, probability, summary, user_errors
from mmdrconv.datasets import generate
from mmdrconv.datasets.synthetic import (MIN_IMAGE_SIDE,
                                         check_generate_options)
from mmdrconv.datasets.synthetic.coco import DEFAULT_OBJECT_SIZE


def main(argv=None):
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument('dataset', choices=['coco', 'cityscapes'])
    parser.add_argument('out_dir')
    parser.add_argument('--train', type=at_least(1), default=200,
                        help='number of train images')
    parser.add_argument('--val', type=at_least(1), default=50,
                        help='number of val images')
    parser.add_argument('--height', type=at_least(MIN_IMAGE_SIDE),
                        help='image height (give --width too)')
    parser.add_argument('--width', type=at_least(MIN_IMAGE_SIDE),
                        help='image width (give --height too)')
    parser.add_argument('--seed', type=at_least(0), default=0)
    parser.add_argument('--appearance-cue', type=probability, default=1.0,
                        help='probability that an object or region wears '
                        "its class's texture and colour (0: only shape "
                        'and layout tell the class; default 1)')
    parser.add_argument('--object-size', type=float, nargs=2,
                        metavar=('LOW', 'HIGH'),
                        help='coco only: range of an object\'s side as '
                        'fractions of the shorter image side (default '
                        '%s %s)' % DEFAULT_OBJECT_SIZE)
    args = parser.parse_args(argv)
    if (args.height is None) != (args.width is None):
        parser.error('--height and --width go together: give both or '
                     'neither (the default size is per dataset)')
    options = dict(num_train=args.train, num_val=args.val, seed=args.seed,
                   appearance_cue=args.appearance_cue)
    if args.object_size is not None:
        options['object_size'] = tuple(args.object_size)
    if args.height is not None:
        options['image_size'] = (args.height, args.width)
    try:
        check_generate_options(args.dataset, options)
    except ValueError as error:
        parser.error(str(error))
    with user_errors():
        try:
            generate(args.dataset, args.out_dir, **options)
        except FileExistsError as error:
            parser.exit(1, f'error: {error}\n')
    print(f'{args.dataset} data in {args.out_dir}')


if __name__ == '__main__':
    main()
