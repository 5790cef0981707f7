"""Run a benchmark suite (baseline vs DRConv): generate data, train and
evaluate every cell, profile every variant, write the report
(mmdrconv/suite/run.py).

    python tools/suite.py configs/suites/{smoke,demo,full,paper}.py
        [--work-dir DIR] [--skip-profile] [--jobs N]
"""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Run a benchmark suite (baseline vs DRConv)')
    parser.add_argument('suite',
                        help='suite file, e.g. configs/suites/demo.py')
    parser.add_argument('--work-dir', help='default: work_dirs/<suite name>')
    parser.add_argument('--skip-profile', action='store_true',
                        help='no latency / memory / FLOPs measurements')
    parser.add_argument('--jobs', type=int, default=1,
                        help='cells run at once, each with cores / jobs '
                        'threads (default 1; training times are then '
                        'contended)')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs must be at least 1, got {args.jobs}')
    from ..suite.run import run_suite
    report = run_suite(args.suite, args.work_dir, args.skip_profile,
                       args.jobs)
    with open(report['markdown']) as f:
        print(f.read())
    if report['failed']:
        sys.exit(f"{report['failed']} cell(s) failed; see the report")


if __name__ == '__main__':
    main()
