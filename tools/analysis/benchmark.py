"""Inference latency, training-step time and peak memory of a config's
model on this machine (CPU), with params and multiply-adds.

    python tools/analysis/benchmark.py CONFIG [--size H W] [--batch-size 2]
        [--repeat 10]
"""
import argparse
import json

from mmdrconv.profiling import profile_config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--size', type=int, nargs=2, default=(512, 512),
                        metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(profile_config(args.config, args.size, args.batch_size,
                                    args.repeat), indent=2))


if __name__ == '__main__':
    main()
