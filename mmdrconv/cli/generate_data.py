"""Generate the demo datasets: COCO-format shapes or Cityscapes-format
street scenes, deterministic from --seed.

    python tools/generate_data.py {coco,cityscapes} OUT_DIR [--train N]
        [--val N] [--height H --width W] [--seed S]
"""
import argparse

from mmdrconv.datasets import generate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('dataset', choices=['coco', 'cityscapes'])
    parser.add_argument('out_dir')
    parser.add_argument('--train', type=int, default=200)
    parser.add_argument('--val', type=int, default=50)
    parser.add_argument('--height', type=int, default=None)
    parser.add_argument('--width', type=int, default=None)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    options = dict(num_train=args.train, num_val=args.val, seed=args.seed)
    if args.height and args.width:
        options['image_size'] = (args.height, args.width)
    generate(args.dataset, args.out_dir, **options)
    print(f'{args.dataset} data in {args.out_dir}')


if __name__ == '__main__':
    main()
