"""Run a benchmark suite (baseline vs DRConv): generate data, train and
evaluate every cell, profile every variant, write the report
(mmdrconv/suite/run.py).

    python tools/suite.py configs/suites/{smoke,demo,full,paper}.py
        [--work-dir DIR] [--skip-profile] [--jobs N] [--plan-seeds REL]
        [--until-mde REL [--max-seeds N] | --fixed-seeds]
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
from ..suite.spec import load_suite


def seeding_rule(args) -> tuple:
    """(target, max_seeds) of ``--until-mde``: the command line's, else
    the suite file's ``until_mde``; (None, None) for the file's seeds only.
    """
    if args.fixed_seeds:
        return None, None
    rule = load_suite(args.suite, args.work_dir).until_mde or {}
    target = args.until_mde if args.until_mde is not None \
        else rule.get('target')
    if target is None:
        if args.max_seeds is not None:
            raise ValueError('--max-seeds goes with --until-mde (or a suite '
                             'file with until_mde)')
        return None, None
    max_seeds = args.max_seeds if args.max_seeds is not None \
        else rule.get('max_seeds', 10)
    return target, max_seeds


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
                        'differences only; finished cells are reused '
                        "(default: the suite file's until_mde, if any)")
    parser.add_argument('--max-seeds', type=int, metavar='N',
                        help='with --until-mde: the most seeds a task gets '
                        "(default: the suite file's, else 10)")
    parser.add_argument('--fixed-seeds', action='store_true',
                        help="run the suite file's seeds only, without its "
                        'until_mde rule')
    launchers.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs must be at least 1, got {args.jobs}')
    if args.until_mde is not None and not 0 < args.until_mde < 1:
        parser.error(f'--until-mde is a relative difference in (0, 1), e.g. '
                     f'0.05 for 5%, got {args.until_mde}')
    if args.max_seeds is not None and args.max_seeds < 2:
        parser.error(f'--max-seeds must be at least 2 (a spread needs two '
                     f'seeds), got {args.max_seeds}')
    if args.fixed_seeds and (args.until_mde is not None
                             or args.max_seeds is not None):
        parser.error('--fixed-seeds runs the suite file\'s seeds only: it '
                     'cannot go with --until-mde or --max-seeds')
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
    with user_errors(ValueError):  # a suite file that does not read
        target, max_seeds = seeding_rule(args)
    with user_errors(SuiteError):
        if target is None:
            report = run_suite(args.suite, args.work_dir, **options)
        else:
            report = run_until_mde(args.suite, target, max_seeds, run_suite,
                                   args.work_dir, **options)
            record_seeding(report)
    with open(report['markdown']) as f:
        print(f.read())
    if report['failed']:
        sys.exit(f"{report['failed']} cell(s) failed; see the report")


if __name__ == '__main__':
    main()
