"""What tools/train.py and tools/test.py do, as functions (OpenMMLab style).

The logic follows mmdet's and mmseg's own tools, for both tasks: the config's
``default_scope`` decides which conventions apply.
"""
import logging
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

from .apis import codebase_of
from .datasets import check_dataset
from .datasets.data_root import align_evaluator_ann_files, set_data_root
from .datasets.evaluation_check import EvaluationDataCheckHook
from .openmmlab import use_cpu_distributed
from .openmmlab.amp import (SLOW_BFLOAT16, amp_optim_wrapper,
                            cpu_has_native_bfloat16)


def default_work_dir(config_path: str) -> str:
    return osp.join('./work_dirs',
                    osp.splitext(osp.basename(config_path))[0])


def prepare_train_cfg(cfg: Config,
                      config_path: str,
                      work_dir: Optional[str] = None,
                      resume: Optional[str] = None,
                      amp: bool = False,
                      launcher: str = 'none',
                      data_root: Optional[str] = None) -> Config:
    """Apply the upstream train.py options to ``cfg``.

    ``resume``: None (start fresh), 'auto' (latest checkpoint in the work
    dir, if any) or a checkpoint path. ``data_root``: read every split from
    this folder (see :func:`~mmdrconv.datasets.data_root.set_data_root`).
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
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif resume is not None:
        if not osp.isfile(resume):
            raise FileNotFoundError(f'--resume {resume}: no such checkpoint '
                                    'file (--resume alone takes the latest '
                                    'one in the work dir)')
        cfg.resume, cfg.load_from = True, resume
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
    return runner


def add_prediction_dump(runner: Runner, cfg: Config, out: str) -> None:
    """--out: a .pkl of predictions (detection), or a folder of predicted
    label maps (segmentation), as the upstream test tools do."""
    if codebase_of(cfg) == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        if not out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file for detection, got '
                             f'{out!r}')
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=out))
    else:
        if out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a folder for segmentation (the '
                             f'predicted label maps are saved as PNGs), got '
                             f'{out!r}')
        metrics = [m for m in runner.test_evaluator.metrics
                   if hasattr(m, 'output_dir')]
        if not metrics:
            raise ValueError('--out: no test metric of this config can save '
                             'label maps (IoUMetric and CityscapesMetric '
                             'can)')
        for metric in metrics:
            metric.output_dir, metric.keep_results = out, True
