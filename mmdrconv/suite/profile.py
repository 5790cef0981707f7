"""Params, multiply-adds, latency and peak memory of one config's model,
in its own process: ``python -m mmdrconv.suite.profile CONFIG OUT``."""
import argparse

import mmengine

from ..profiling import profile_config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('out_file')
    parser.add_argument('--size', type=int, nargs=2, default=(128, 128),
                        metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=10)
    args = parser.parse_args(argv)
    mmengine.dump(
        profile_config(args.config, args.size, args.batch_size, args.repeat),
        args.out_file)


if __name__ == '__main__':
    main()
