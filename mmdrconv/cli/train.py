"""Train a detector or segmentor from a config (mmdet 3.x / mmseg 1.x).

    python tools/train.py CONFIG [--work-dir DIR] [--data-root DIR]
        [--resume [CKPT] | --auto-resume | --start-over] [--amp]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

(also ``python -m mmdrconv.cli.train``)

The work dir is held by one run at a time (rank 0 of a distributed run holds
it for all ranks); a second run into it is refused, naming the first. A run
from scratch into a work dir holding an earlier run's checkpoints is
refused unless --start-over, which moves them aside; a resumed run is
the interrupted one, random numbers included (mmdrconv.openmmlab.randomness).
"""
import argparse

from mmdrconv.apis import load_config
from mmdrconv.cli import add_common_args, parse, user_errors
from mmdrconv.openmmlab import close_distributed
from mmdrconv.runlock import hold_folder, launcher_rank
from mmdrconv.runner import (EarlierRunError, build_runner,
                             prepare_train_cfg, settle_work_dir)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where to save logs and models')
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or with no value from the latest '
        'checkpoint in the work dir (an error when there is none)')
    resume.add_argument(
        '--auto-resume', dest='resume', action='store_const',
        const='auto-or-start',
        help='resume from the latest checkpoint in the work dir if there is '
        'one, else train from scratch (as mmdet 2.x --auto-resume)')
    resume.add_argument(
        '--start-over', action='store_true',
        help='train from scratch into a work dir that holds checkpoints of '
        'an earlier run (refused otherwise); they are moved to '
        'WORK_DIR/earlier_runs/<time>/, not deleted')
    parser.add_argument(
        '--amp', action='store_true',
        help='mixed precision: float16 with loss scaling on CUDA, bfloat16 '
        'autocast on a machine without CUDA')
    add_common_args(parser)
    return parse(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    with user_errors(EarlierRunError):
        cfg = load_config(args.config, args.cfg_options)
        cfg = prepare_train_cfg(cfg, args.config, args.work_dir, args.resume,
                                args.amp, args.launcher, args.data_root)
        rank = launcher_rank(args.launcher)
        with hold_folder(cfg.work_dir, 'work dir', enabled=rank == 0):
            settle_work_dir(cfg, args.start_over, rank)
            try:
                build_runner(cfg).train()
            finally:
                close_distributed()


if __name__ == '__main__':
    main()
