"""What tools/train.py and tools/test.py do, as functions (OpenMMLab style).

The logic follows mmdet's and mmseg's own tools, for both tasks: the config's
``default_scope`` decides which conventions apply.
"""
import difflib
import logging
import os
import os.path as osp
import re
import time
from typing import List, Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

from .apis import ConfigOptionError, accepted_options, codebase_of
from .datasets import check_dataset
from .datasets.data_root import align_evaluator_ann_files, set_data_root
from .datasets.evaluation_check import EvaluationDataCheckHook
from .openmmlab import (CheckpointError, use_cpu_distributed,
                        verify_checkpoint)
from .outputs import OutputPathError, check_output_dir, check_output_file
from .openmmlab.amp import (SLOW_BFLOAT16, amp_optim_wrapper,
                            cpu_has_native_bfloat16)
from .openmmlab.randomness import RandomStateHook


def default_work_dir(config_path: str) -> str:
    return osp.join('./work_dirs',
                    osp.splitext(osp.basename(config_path))[0])


class NothingToResumeError(FileNotFoundError):
    """--resume on a work dir without a checkpoint."""


class EarlierRunError(RuntimeError):
    """Training from scratch into a work dir that holds the checkpoints of
    an earlier run."""


RESUME_HELP = ('--resume alone resumes from the latest checkpoint in the '
               'work dir; --auto-resume does so when there is one and '
               'otherwise trains from scratch (as mmdet 2.x did)')
# What mmengine's CheckpointHook writes into the work dir.
_CHECKPOINT_FILE = re.compile(r'^((iter|epoch)_\d+|best_.+)\.pth$')
EARLIER_RUNS = 'earlier_runs'


def earlier_checkpoints(work_dir: str) -> List[str]:
    """The checkpoint files (and ``last_checkpoint``) in ``work_dir``."""
    if not osp.isdir(work_dir):
        return []
    return sorted(name for name in os.listdir(work_dir)
                  if name == 'last_checkpoint' or
                  _CHECKPOINT_FILE.match(name))


def settle_work_dir(cfg: Config, start_over: bool = False,
                    rank: int = 0) -> Optional[str]:
    """Before training from scratch into ``cfg.work_dir``: if it holds the
    checkpoints of an earlier run (e.g. one that was killed), raise
    EarlierRunError, naming --resume, --auto-resume and --start-over.
    Training afresh would overwrite them (and max_keep_ckpts then delete
    them). With ``start_over`` they are moved, never deleted, to
    ``WORK_DIR/earlier_runs/<time>/``, which is returned (rank 0 moves).
    Call it holding the work dir (a live run's files are not to be moved).
    Nothing to do when the run resumes."""
    if cfg.get('resume'):
        return None
    found = earlier_checkpoints(cfg.work_dir)
    if not found:
        return None
    if not start_over:
        if 'last_checkpoint' in found:
            resume = ('--resume (from its latest checkpoint, or --resume '
                      'CKPT) or --auto-resume')
        else:  # nothing names the latest: --resume alone would not find it
            newest = max(found, key=lambda n: osp.getmtime(
                osp.join(cfg.work_dir, n)))
            resume = f'--resume {osp.join(cfg.work_dir, newest)}'
        raise EarlierRunError(
            f'{cfg.work_dir} holds the checkpoints of an earlier run '
            f'({", ".join(found)}); training from scratch would overwrite '
            f'them. To continue that run: {resume}; to train from scratch '
            f'anyway: --start-over (they are moved to '
            f'{cfg.work_dir}/{EARLIER_RUNS}/); or choose another --work-dir.')
    if rank != 0:
        return None
    stamp = osp.join(cfg.work_dir, EARLIER_RUNS,
                     time.strftime('%Y%m%d_%H%M%S'))
    folder, number = stamp, 1
    while osp.exists(folder):  # started over twice in one second
        number += 1
        folder = f'{stamp}_{number}'
    os.makedirs(folder)
    for name in found:
        os.replace(osp.join(cfg.work_dir, name), osp.join(folder, name))
    load_from = cfg.get('load_from')
    if load_from and osp.dirname(osp.abspath(load_from)) == \
            osp.abspath(cfg.work_dir) and osp.basename(load_from) in found:
        cfg.load_from = osp.join(folder, osp.basename(load_from))
    print_log(f'--start-over: moved the earlier run\'s {", ".join(found)} to '
              f'{folder}', logger='current', level=logging.WARNING)
    return folder


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint named by ``work_dir/last_checkpoint``, or None.

    mmengine records it by absolute path. In a work dir that was moved or
    copied that path points at the old place (or at the other copy's
    checkpoint), so the file of the same name in ``work_dir`` comes first.
    """
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return None
    with open(record) as f:
        named = f.read().strip()
    local = osp.join(work_dir, osp.basename(named))
    for path in (local, named):
        if named and osp.isfile(path):
            return path
    raise NothingToResumeError(
        f'--resume: {record} names {named!r}, which does not exist (nor '
        f'{local}); pass the checkpoint to resume from: --resume CKPT')


def resolve_resume(work_dir: str, resume: Optional[str]) -> Optional[str]:
    """The checkpoint to resume from: ``resume`` is None (start fresh),
    'auto' (the latest in the work dir; none is an error), 'auto-or-start'
    (the latest if any, else None) or a checkpoint path."""
    if resume is None:
        return None
    if resume in ('auto', 'auto-or-start'):
        found = latest_checkpoint(work_dir)
        if found is None and resume == 'auto':
            raise NothingToResumeError(
                f'--resume: nothing to resume in {work_dir} (no '
                'last_checkpoint there). To train from scratch, leave out '
                f'--resume. ({RESUME_HELP}.)')
        return found
    if not osp.isfile(resume):
        raise FileNotFoundError(f'--resume {resume}: no such checkpoint '
                                f'file ({RESUME_HELP})')
    return resume


def prepare_train_cfg(cfg: Config,
                      config_path: str,
                      work_dir: Optional[str] = None,
                      resume: Optional[str] = None,
                      amp: bool = False,
                      launcher: str = 'none',
                      data_root: Optional[str] = None) -> Config:
    """Apply the upstream train.py options to ``cfg``.

    ``resume``: see :func:`resolve_resume`. ``data_root``: read every
    split from this folder (see
    :func:`~mmdrconv.datasets.data_root.set_data_root`).
    """
    cfg.launcher = launcher
    if data_root is not None:
        set_data_root(cfg, data_root)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(config_path)
    if amp:
        # float16 + loss scaling on CUDA; bfloat16 autocast on the CPU.
        cuda = torch.cuda.is_available()
        cfg.optim_wrapper = amp_optim_wrapper(cfg.optim_wrapper, cuda,
                                              codebase_of(cfg))
        if not cuda and cpu_has_native_bfloat16() is False:
            print_log(SLOW_BFLOAT16, logger='current', level=logging.WARNING)
    checkpoint = resolve_resume(cfg.work_dir, resume)
    if checkpoint is not None:
        cfg.resume, cfg.load_from = True, checkpoint
    return cfg


def prepare_test_cfg(cfg: Config,
                     config_path: str,
                     checkpoint: str,
                     work_dir: Optional[str] = None,
                     show: bool = False,
                     show_dir: Optional[str] = None,
                     wait_time: float = 2,
                     launcher: str = 'none',
                     data_root: Optional[str] = None) -> Config:
    cfg.launcher = launcher
    if data_root is not None:
        set_data_root(cfg, data_root)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(config_path)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {checkpoint}')
    cfg.load_from = checkpoint
    if show or show_dir:
        hook = cfg.default_hooks.get('visualization')
        if hook is None:
            raise ValueError('--show/--show-dir need a visualization hook in '
                             'default_hooks (the upstream configs have one)')
        hook.update(draw=True, show=show, wait_time=wait_time)
        if show_dir:
            if codebase_of(cfg) == 'mmdet':
                hook.test_out_dir = show_dir
            else:
                # mmseg paints every 50th batch by default; a user asking
                # for painted predictions wants them all.
                cfg.visualizer.save_dir = show_dir
                hook.interval = 1
    return cfg


def build_runner(cfg: Config) -> Runner:
    """Check the data, then build mmengine's Runner for ``cfg``.

    COCO evaluators follow their dataloader's data root, and every val/test
    epoch first checks that the evaluator's annotation file describes the
    evaluated images (:class:`EvaluationDataCheckHook`).
    """
    for note in align_evaluator_ann_files(cfg):
        print_log(note, logger='current', level=logging.WARNING)
    check_dataset(cfg)
    use_cpu_distributed(cfg)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.register_hook(EvaluationDataCheckHook())
    runner.register_hook(RandomStateHook())
    check_checkpoint_hook_options(runner)
    if cfg.get('resume') and cfg.get('load_from'):
        # mmengine resumes non-strictly and then fails deep in the
        # optimizer (or trains a partly random model) on another config's
        # checkpoint: name the mismatch first, as tools/test.py does.
        try:
            verify_checkpoint(runner.model, cfg.load_from)
        except CheckpointError as error:
            raise type(error)(f'--resume: {error}') from None
    return runner


def check_checkpoint_hook_options(runner: Runner) -> None:
    """ConfigOptionError for options of a CheckpointHook that it does not
    take. mmengine's keeps them (``**kwargs``) for Runner.save_checkpoint,
    which takes none beyond what the hook passes: a typo such as
    ``intervl=1`` fails only at the first save, after the first interval
    of training, and that checkpoint is never written."""
    from mmengine.hooks import CheckpointHook
    for hook in runner.hooks:
        if not isinstance(hook, CheckpointHook) or not hook.args:
            continue
        name = next(iter(hook.args))
        close = difflib.get_close_matches(
            name, sorted(accepted_options(type(hook)) or ()), n=1)
        hint = f'; did you mean {close[0]!r}?' if close else ''
        raise ConfigOptionError(
            f'default_hooks.checkpoint: {type(hook).__name__} takes no '
            f'option {name!r}{hint}')


def _check_out_kind(cfg: Config, out: str) -> None:
    if codebase_of(cfg) == 'mmdet':
        if not out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file for detection, got '
                             f'{out!r}')
    elif out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a folder for segmentation (the '
                         f'predicted label maps are saved as PNGs), got '
                         f'{out!r}')


def check_test_outputs(cfg: Config, out: Optional[str],
                       show_dir: Optional[str],
                       overwrite: bool = False) -> None:
    """tools/test.py's --out and --show-dir, checked before the evaluation
    (mmdet writes --out after it; mmseg's label maps and painted images fail
    at the first batch written). An --out that holds results already (a
    file; a folder with files) is refused unless ``overwrite``."""
    if out:
        _check_out_kind(cfg, out)
        if codebase_of(cfg) == 'mmdet':
            check_output_file(out, '--out')
            held = osp.isfile(out)
        else:
            check_output_dir(out, '--out')
            held = bool(os.listdir(out))
        if held and not overwrite:
            what = 'exists' if osp.isfile(out) else 'holds files already'
            raise OutputPathError(
                f'--out {out}: {what}; pass --overwrite to replace them, or '
                'choose another --out')
    if show_dir:
        check_output_dir(show_dir, '--show-dir')


def add_prediction_dump(runner: Runner, cfg: Config, out: str) -> None:
    """--out: a .pkl of predictions (detection), or a folder of predicted
    label maps (segmentation), as the upstream test tools do."""
    _check_out_kind(cfg, out)
    if codebase_of(cfg) == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=out))
    else:
        metrics = [m for m in runner.test_evaluator.metrics
                   if hasattr(m, 'output_dir')]
        if not metrics:
            raise ValueError('--out: no test metric of this config can save '
                             'label maps (IoUMetric and CityscapesMetric '
                             'can)')
        for metric in metrics:
            metric.output_dir, metric.keep_results = out, True
