"""Inference latency, training-step time and peak memory of a config's
model on this machine (CPU), with params and multiply-adds.

    python tools/analysis/benchmark.py CONFIG [--size H W] [--batch-size 2]
        [--repeat 10]
"""
import argparse
import json

from mmdrconv.cli import at_least
from mmdrconv.profiling import profile_config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--size', type=at_least(1), nargs=2,
                        default=(512, 512), metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=at_least(2), default=2,
                        help='at least 2: BatchNorm trains on the batch')
    parser.add_argument('--repeat', type=at_least(1), default=10)
    args = parser.parse_args(argv)
    print(json.dumps(profile_config(args.config, args.size, args.batch_size,
                                    args.repeat), indent=2))


if __name__ == '__main__':
    main()
