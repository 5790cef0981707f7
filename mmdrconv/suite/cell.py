"""Train and evaluate one suite cell (one config, one seed).

Run by the suite in its own process (or under torchrun) so cells cannot
disturb each other: ``python -m mmdrconv.suite.cell CONFIG WORK_DIR RESULT``.
"""
import argparse

from ..apis import load_config
from ..cli import CfgOptions
from ..openmmlab import close_distributed
from ..runlock import hold_folder, launcher_rank
from ..runner import build_runner, prepare_train_cfg
from .hooks import SuiteResultHook


def rescale_schedule(cfg, max_iters: int) -> None:
    """Set an iteration budget, stretching iteration-based LR schedules
    written for the config's own budget to the new one."""
    old = cfg.train_cfg.get('max_iters')
    if cfg.train_cfg.get('type') != 'IterBasedTrainLoop' or not old:
        raise ValueError('a max_iters budget needs an IterBasedTrainLoop '
                         'config; leave max_iters unset to use the '
                         "config's own schedule")
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    for scheduler in schedulers:
        if scheduler.get('by_epoch', True):
            continue
        scale = max_iters / old
        begin = round(scheduler.get('begin', 0) * scale)
        if 'begin' in scheduler:
            scheduler['begin'] = begin
        if 'end' in scheduler:
            scheduler['end'] = max(begin + 1, round(scheduler['end'] * scale))
        if 'T_max' in scheduler:
            scheduler['T_max'] = max(1, round(scheduler['T_max'] * scale))
    # Checkpoints along the way: an interrupted cell resumes from the last.
    cfg.default_hooks.checkpoint.update(
        by_epoch=False, interval=max(1, max_iters // 4), max_keep_ckpts=1)


def train_and_evaluate(cfg) -> None:
    runner = build_runner(cfg)
    runner.train()
    result_hook = next(h for h in runner.hooks
                       if isinstance(h, SuiteResultHook))
    if result_hook.metrics is None:
        # Resumed from the final checkpoint (interrupted during the last
        # validation): no iteration left, so evaluate explicitly.
        result_hook.metrics = {k: float(v)
                               for k, v in runner.val().items()}
        result_hook.write(runner)


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
    args = parser.parse_args(argv)

    cfg = load_config(args.config, args.cfg_options)
    cfg.randomness = dict(seed=args.seed, deterministic=False)
    if args.max_iters:
        rescale_schedule(cfg, args.max_iters)
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='SuiteResultHook', out_file=args.result_file)
    ]
    cfg = prepare_train_cfg(cfg, args.config, args.work_dir,
                            'auto' if args.resume else None,
                            launcher=args.launcher, data_root=args.data_root)
    # Its own folder, not the suite's (which the suite holds): a cell
    # started twice, e.g. by a second suite, is refused.
    with hold_folder(args.work_dir, 'cell work dir',
                     enabled=launcher_rank(args.launcher) == 0):
        try:
            train_and_evaluate(cfg)
        finally:
            close_distributed()


if __name__ == '__main__':
    main()
