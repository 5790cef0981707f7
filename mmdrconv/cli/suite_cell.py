"""Train and evaluate one suite cell (one config, one seed): what the
suite runs in its own process, or under torchrun (mmdrconv/suite/cell.py).

    python -m mmdrconv.cli.suite_cell CONFIG WORK_DIR RESULT_FILE [--seed S]
        [--max-iters N] [--resume] [--data-root DIR] [--cfg-options ...]
        [--launcher ...] [--paired-with TWIN_CONFIG] [--evaluations N]
        [--split-half METRIC ...]
"""
import argparse

from . import CfgOptions


def main(argv=None):
    parser = argparse.ArgumentParser(description='Run one suite cell')
    parser.add_argument('config')
    parser.add_argument('work_dir')
    parser.add_argument('result_file')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-iters', type=int, default=None)
    parser.add_argument('--resume', action='store_true')
    parser.add_argument('--data-root', help='where the dataset is')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptions)
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--paired-with', metavar='TWIN_CONFIG',
                        help="start from this config's initial weights "
                        'where names and shapes match (the task\'s twin)')
    parser.add_argument('--evaluations', type=int,
                        help='evaluate this many times along training, the '
                        'last at its end')
    parser.add_argument('--split-half', nargs='+', metavar='METRIC',
                        help='also evaluate these metrics on each half of '
                        'the validation set (the evaluation noise)')
    args = parser.parse_args(argv)
    from ..suite.cell import train_cell
    train_cell(args.config, args.work_dir, args.result_file, args.seed,
               args.max_iters, args.resume, args.data_root,
               args.cfg_options, args.launcher, args.evaluations,
               args.paired_with, args.split_half)


if __name__ == '__main__':
    main()
