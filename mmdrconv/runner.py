"""What tools/train.py and tools/test.py do, as functions (OpenMMLab style).

The logic follows mmdet's and mmseg's own tools, for both tasks: the config's
``default_scope`` decides which conventions apply.
"""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

from .apis import task_of
from .datasets import check_dataset
from .openmmlab import use_cpu_distributed


def default_work_dir(config_path: str) -> str:
    return osp.join('./work_dirs',
                    osp.splitext(osp.basename(config_path))[0])


def prepare_train_cfg(cfg: Config,
                      config_path: str,
                      work_dir: Optional[str] = None,
                      resume: Optional[str] = None,
                      amp: bool = False,
                      launcher: str = 'none') -> Config:
    """Apply the upstream train.py options to ``cfg``.

    ``resume``: None (start fresh), 'auto' (latest checkpoint in the work
    dir, if any) or a checkpoint path.
    """
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(config_path)
    if amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            pass  # already mixed precision
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif resume is not None:
        cfg.resume, cfg.load_from = True, resume
    return cfg


def prepare_test_cfg(cfg: Config,
                     config_path: str,
                     checkpoint: str,
                     work_dir: Optional[str] = None,
                     show: bool = False,
                     show_dir: Optional[str] = None,
                     wait_time: float = 2,
                     launcher: str = 'none') -> Config:
    cfg.launcher = launcher
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
            if task_of(cfg) == 'detection':
                hook.test_out_dir = show_dir
            else:
                # mmseg paints every 50th batch by default; a user asking
                # for painted predictions wants them all.
                cfg.visualizer.save_dir = show_dir
                hook.interval = 1
    return cfg


def build_runner(cfg: Config) -> Runner:
    """Check the data, then build mmengine's Runner for ``cfg``."""
    check_dataset(cfg)
    use_cpu_distributed(cfg)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def add_prediction_dump(runner: Runner, cfg: Config, out: str) -> None:
    """--out: a .pkl of predictions (detection), or a folder of predicted
    label maps (segmentation), as the upstream test tools do."""
    if task_of(cfg) == 'detection':
        from mmdet.evaluation import DumpDetResults
        if not out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file for detection, got '
                             f'{out!r}')
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=out))
    else:
        for metric in runner.test_evaluator.metrics:
            if hasattr(metric, 'output_dir'):
                metric.output_dir, metric.keep_results = out, True
