"""Params, multiply-adds, inference latency, training-step time and peak
memory of a config's model on this machine (CPU), on a random batch.

    python tools/analysis/benchmark.py CONFIG [--size H W] [--batch-size 2]
        [--repeat 10] [--out FILE.json]

(also ``python -m mmdrconv.cli.benchmark``, which the benchmark suite runs
once per variant.)
"""
import argparse
import json

from . import at_least, summary, user_errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument('config')
    parser.add_argument('--size', type=at_least(1), nargs=2,
                        default=(512, 512), metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=at_least(2), default=2,
                        help='at least 2: BatchNorm trains on the batch')
    parser.add_argument('--repeat', type=at_least(1), default=10)
    parser.add_argument('--out', help='also write the numbers to this JSON')
    args = parser.parse_args(argv)
    import mmengine

    from ..analysis.profile import profile_config
    from ..outputs import check_output_file
    if args.out:
        with user_errors():
            check_output_file(args.out, '--out')  # not after the profiling
    profile = profile_config(args.config, args.size, args.batch_size,
                             args.repeat)
    if args.out:
        mmengine.dump(profile, args.out)
    print(json.dumps(profile, indent=2))


if __name__ == '__main__':
    main()
