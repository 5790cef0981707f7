"""Run a benchmark suite (baseline vs DRConv): generate data, train and
evaluate every cell, profile every variant, write the report
(mmdrconv/suite/run.py).

    python tools/suite.py configs/suites/{smoke,demo,full,paper}.py
        [--work-dir DIR] [--skip-profile] [--jobs N] [--plan-seeds REL]
        [--launcher slurm --partition P ...] (mmdrconv/suite/slurm.py)
"""
import argparse
import sys

from . import user_errors
from ..suite import slurm
from ..suite.run import run_suite


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
    parser.add_argument('--plan-seeds', type=float, metavar='REL',
                        help='run nothing: from the finished run in the '
                        'work dir, print the seeds needed to detect a '
                        "paired difference of REL times the twin's mean "
                        '(e.g. 0.03) with 80%% power')
    slurm.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs must be at least 1, got {args.jobs}')
    if args.plan_seeds is not None:
        if not args.plan_seeds > 0:
            parser.error(f'--plan-seeds must be positive (0.03 for 3%), '
                         f'got {args.plan_seeds}')
        from ..suite.report import seed_plan_report
        try:
            print(seed_plan_report(args.suite, args.work_dir,
                                   args.plan_seeds))
        except FileNotFoundError as error:
            sys.exit(str(error))
        return
    with user_errors():
        report = run_suite(args.suite, args.work_dir, args.skip_profile,
                           args.jobs, slurm.options_from_args(args, parser))
    with open(report['markdown']) as f:
        print(f.read())
    if report['failed']:
        sys.exit(f"{report['failed']} cell(s) failed; see the report")


if __name__ == '__main__':
    main()
