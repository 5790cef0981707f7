"""Config helpers shared by tools/, analysis code and the benchmark suite."""
import copy
import os.path as osp
from typing import Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.utils import get_installed_path

from . import openmmlab  # noqa: F401  (registers DRConv; loading policy)


def resolve_config_path(path: str) -> str:
    """'mmdet::faster_rcnn/x.py' -> the upstream config file installed with
    mmdet (or mmseg); other paths are returned unchanged."""
    if '::' not in path:
        return path
    package, relative = path.split('::', 1)
    resolved = osp.join(get_installed_path(package), '.mim', 'configs',
                        relative)
    if not osp.isfile(resolved):
        raise FileNotFoundError(f'{path}: no such config in the installed '
                                f'{package} ({resolved})')
    return resolved


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config and apply overrides. Paths may be our configs or
    upstream ones (``mmdet::...``, ``mmseg::...``)."""
    cfg = Config.fromfile(resolve_config_path(path))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def codebase_of(cfg: Config) -> str:
    """'mmdet' or 'mmseg': the codebase (as mmdeploy calls it) that builds
    and evaluates the config's model, from its default scope. ("Task" is
    kept for a row of the benchmark suite.)"""
    scope = cfg.get('default_scope', 'mmdet')
    if scope not in ('mmdet', 'mmseg'):
        raise ValueError(f"default_scope must be 'mmdet' or 'mmseg', got "
                         f'{scope!r}')
    return scope


def build_model(cfg: Config) -> torch.nn.Module:
    """Build ``cfg.model`` in the config's default scope (no weight init)."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    # Some builders (mmseg's EncoderDecoder) edit the dict they are given.
    return MODELS.build(copy.deepcopy(cfg.model))


def model_cfg(cfg: Config) -> dict:
    model = cfg.model
    while model.get('type') == 'ConvertToDRConv':
        model = model['model']
    return model


def num_classes_of(cfg: Config, default: int = 80) -> int:
    model = model_cfg(cfg)
    for head in ('decode_head', 'bbox_head'):
        if head in model:
            return model[head]['num_classes']
    roi_head = model.get('roi_head')
    if roi_head is not None:
        return roi_head['bbox_head']['num_classes']
    return default


def model_for_measuring(config: str, cfg_options: Optional[dict] = None,
                        init_weights: bool = True, seed: int = 0
                        ) -> Tuple[Config, torch.nn.Module]:
    """``config``'s model as every measurement (complexity, latency, memory,
    export) builds it: SyncBN as plain BN (one process measures it), and
    with ``init_weights`` its initialisation drawn after
    ``torch.manual_seed(seed)``, so repeated measurements see the same
    model (time and memory do not depend on trained values). Returned in
    eval mode, with its config."""
    from mmengine.model import revert_sync_batchnorm
    cfg = load_config(config, cfg_options)
    model = revert_sync_batchnorm(build_model(cfg))
    if init_weights:
        torch.manual_seed(seed)
        model.init_weights()
    return cfg, model.eval()
