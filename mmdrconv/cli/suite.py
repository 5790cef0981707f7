"""Run a benchmark suite (baseline vs DRConv): generate data, train and
evaluate every cell, profile every variant, write the report
(mmdrconv/suite/run.py).

    python tools/suite.py configs/suites/{smoke,demo,full,paper}.py
        [--work-dir DIR] [--skip-profile] [--jobs N] [--plan-seeds REL]
        [--until-mde REL [--max-seeds N]]
        [--launcher slurm --partition P ...] (mmdrconv/suite/launchers.py)
"""
import argparse
import sys

from . import user_errors
from ..suite import launchers
from ..suite.jobs import SuiteError
from ..suite.report import record_seeding
from ..suite.run import run_suite
from ..suite.seeding import run_until_mde


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
    parser.add_argument('--until-mde', type=float, metavar='REL',
                        help='add seeds to a task until the median MDE of '
                        'its non-control variants on its primary metric is '
                        "at most REL times the twin's mean (e.g. 0.05), "
                        'deciding from the spread of the paired '
                        'differences only; finished cells are reused')
    parser.add_argument('--max-seeds', type=int, default=10, metavar='N',
                        help='with --until-mde: the most seeds a task gets '
                        '(default 10)')
    launchers.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs must be at least 1, got {args.jobs}')
    if args.until_mde is not None and not 0 < args.until_mde < 1:
        parser.error(f'--until-mde is a relative difference in (0, 1), e.g. '
                     f'0.05 for 5%, got {args.until_mde}')
    if args.max_seeds < 2:
        parser.error(f'--max-seeds must be at least 2 (a spread needs two '
                     f'seeds), got {args.max_seeds}')
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
    options = dict(skip_profile=args.skip_profile,
                   launcher=launchers.from_args(args, parser))
    with user_errors(SuiteError):
        if args.until_mde is None:
            report = run_suite(args.suite, args.work_dir, **options)
        else:
            report = run_until_mde(args.suite, args.until_mde,
                                   args.max_seeds, run_suite,
                                   args.work_dir, **options)
            record_seeding(report)
    with open(report['markdown']) as f:
        print(f.read())
    if report['failed']:
        sys.exit(f"{report['failed']} cell(s) failed; see the report")


if __name__ == '__main__':
    main()
