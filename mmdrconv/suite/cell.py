"""Train and evaluate one suite cell (one config, one seed).

Run by the suite in its own process (or under torchrun) so cells cannot
disturb each other: ``python -m mmdrconv.cli.suite_cell CONFIG WORK_DIR
RESULT`` (mmdrconv/cli/suite_cell.py).
"""
import math
from typing import Optional, Sequence

from ..apis import load_config
from ..openmmlab import close_distributed
from ..runlock import hold_folder, launcher_rank
from ..runner import build_runner, prepare_train_cfg, settle_work_dir
from .hooks import SuiteResultHook
from .split_half import split_half_evaluation


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


def set_evaluations(cfg, evaluations: int) -> None:
    """Evaluate ``evaluations`` times along training, the last time at its
    end: every ceil(budget / evaluations) iterations (epochs for an
    epoch-based loop); mmengine's loops also evaluate after the last one.
    A budget shorter than ``evaluations`` gives one evaluation per
    iteration (or epoch)."""
    if isinstance(evaluations, bool) or not isinstance(evaluations, int) \
            or evaluations < 1:
        raise ValueError(f'evaluations must be a positive int, got '
                         f'{evaluations!r}')
    kind = cfg.train_cfg.get('type')
    key = dict(IterBasedTrainLoop='max_iters',
               EpochBasedTrainLoop='max_epochs').get(kind)
    if key is None or not cfg.train_cfg.get(key):
        raise ValueError(f'evaluations need an IterBasedTrainLoop or '
                         f'EpochBasedTrainLoop train_cfg with its budget '
                         f'(max_iters / max_epochs), got {kind!r}')
    cfg.train_cfg.val_interval = max(
        1, math.ceil(cfg.train_cfg[key] / evaluations))
    cfg.train_cfg.pop('val_begin', None)  # from the first interval on


def add_pairing(cfg, twin_config: str, seed: int,
                cfg_options: Optional[dict] = None) -> None:
    """Start from the twin's initial weights where they fit, with the same
    random numbers as every other variant of this seed
    (:class:`~mmdrconv.suite.hooks.PairedStartHook`)."""
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='PairedStartHook', twin_config=twin_config, seed=seed,
             cfg_options=dict(cfg_options or {}))
    ]


# Where the suite's hooks and metric are registered: named in the cell's
# config, so that the config saved in its work dir loads on its own (e.g.
# tools/test.py on a cell's config and checkpoint).
SUITE_MODULES = ('mmdrconv.suite.hooks', 'mmdrconv.suite.split_half')


def import_suite_modules(cfg) -> None:
    """Add :data:`SUITE_MODULES` to the config's ``custom_imports``."""
    imports = dict(cfg.get('custom_imports') or {})
    names = list(imports.get('imports', []))
    names += [m for m in SUITE_MODULES if m not in names]
    cfg.custom_imports = dict(imports, imports=names,
                              allow_failed_imports=False)


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


def cell_config(config: str, work_dir: str, result_file: str, seed: int = 0,
                max_iters=None, resume: bool = False, data_root=None,
                cfg_options=None, launcher: str = 'none',
                evaluations: Optional[int] = None,
                paired_with: Optional[str] = None,
                split_half: Optional[Sequence[str]] = None):
    """The config a cell trains (arguments: :func:`train_cell`)."""
    cfg = load_config(config, cfg_options)
    cfg.randomness = dict(seed=seed, deterministic=False)
    if max_iters:
        rescale_schedule(cfg, max_iters)
    if evaluations is not None:
        set_evaluations(cfg, evaluations)
    if paired_with:
        add_pairing(cfg, paired_with, seed, cfg_options)
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='SuiteResultHook', out_file=result_file)
    ]
    cfg = prepare_train_cfg(cfg, config, work_dir,
                            'auto' if resume else None,
                            launcher=launcher, data_root=data_root)
    if split_half:
        # After the data root is set: it rewrites the metric's ann_file.
        split_half_evaluation(cfg, split_half)
    import_suite_modules(cfg)
    return cfg


def train_cell(config: str, work_dir: str, result_file: str, seed: int = 0,
               max_iters=None, resume: bool = False, data_root=None,
               cfg_options=None, launcher: str = 'none',
               evaluations: Optional[int] = None,
               paired_with: Optional[str] = None,
               split_half: Optional[Sequence[str]] = None) -> None:
    """Train and evaluate one cell; the result goes to ``result_file``
    (SuiteResultHook). ``evaluations``: validations along training, the
    last at its end; ``paired_with``: the twin config whose initial weights
    the cell starts from where names and shapes match; ``split_half``:
    metrics also evaluated on each half of the validation set
    (:mod:`~mmdrconv.suite.split_half`)."""
    cfg = cell_config(config, work_dir, result_file, seed, max_iters,
                      resume, data_root, cfg_options, launcher, evaluations,
                      paired_with, split_half)
    # Its own folder, not the suite's (which the suite holds): a cell
    # started twice, e.g. by a second suite, is refused.
    with hold_folder(work_dir, 'cell work dir',
                     enabled=launcher_rank(launcher) == 0):
        # Never train afresh over an earlier run's checkpoints.
        settle_work_dir(cfg, rank=launcher_rank(launcher))
        try:
            train_and_evaluate(cfg)
        finally:
            close_distributed()


def check_cell(config: str, work_dir: str, result_file: str, seed: int = 0,
               max_iters=None, resume: bool = False, data_root=None,
               cfg_options=None, evaluations: Optional[int] = None,
               paired_with: Optional[str] = None,
               split_half: Optional[Sequence[str]] = None) -> None:
    """What would stop a cell at its start, before any cell trains: its
    config (budget, evaluations, split-half metrics, what to resume), its
    data on disk and its model, built; raises the error (arguments:
    :func:`train_cell`)."""
    from mmengine.logging import MMLogger

    from ..apis import build_model
    from ..datasets import check_dataset
    from ..datasets.data_root import align_evaluator_ann_files
    cfg = cell_config(config, work_dir, result_file, seed, max_iters, resume,
                      data_root, cfg_options, 'none', evaluations,
                      paired_with, split_half)
    align_evaluator_ann_files(cfg)
    check_dataset(cfg)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('ERROR')  # not the change of default scope per model
    try:
        build_model(cfg)
    finally:
        logger.setLevel(level)
