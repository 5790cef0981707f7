"""Config helpers shared by tools/, analysis code and the benchmark suite."""
import copy
import difflib
import inspect
import os.path as osp
from typing import Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
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


class ConfigOptionError(ValueError):
    """A --cfg-options key that names nothing in the config."""


def _runner_arguments() -> set:
    """Top-level keys a config may gain: what mmengine's Runner reads."""
    names = set(inspect.signature(Runner.__init__).parameters) - {'self'}
    return names | {'runner_type', 'custom_imports'}


def unknown_cfg_option(cfg: Config, key: str) -> Optional[str]:
    """Why ``key`` (dotted, as --cfg-options takes it) names nothing in
    ``cfg``, or None when it does.

    mmengine merges any key, so a typo (``optim_wraper.optimizer.lr``)
    silently adds an unused entry. A key is unknown when a component before
    the last does not exist (list components must be indices in range), or
    when a new top-level key is not a Runner argument; the last component
    may be new (a component option not written in the config). Keys below
    a value that is neither (``pretrained=None``) are left to mmengine,
    which refuses them itself."""
    parts = key.split('.')
    node = cfg._cfg_dict
    for depth, part in enumerate(parts):
        where = '.'.join(parts[:depth + 1])
        last = depth == len(parts) - 1
        if isinstance(node, (list, tuple)):
            if not part.isdigit():
                return (f'{where!r}: {".".join(parts[:depth])} is a list; '
                        'use an index, e.g. '
                        f'{".".join(parts[:depth] + ["0"])}')
            if int(part) >= len(node):
                return (f'{where!r}: index {part} out of range (the list has '
                        f'{len(node)} items)')
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            return None  # mmengine's merge refuses it, naming the key
        if part in node:
            node = node[part]
            continue
        if depth == 0 and part in _runner_arguments():
            return None  # a new Runner setting, e.g. randomness.seed
        if last and depth > 0:
            return None  # a new option of an existing dict
        choices = list(node) + (sorted(_runner_arguments())
                                if depth == 0 else [])
        close = difflib.get_close_matches(part, choices, n=1)
        prefix = '.'.join(parts[:depth])
        hint = (f'; did you mean {".".join(parts[:depth] + close)!r}?'
                if close else
                f'; {prefix or "the config"} has: {", ".join(map(str, node))}')
        if depth > 0:
            hint += (' (a new nested option goes in a config inheriting '
                     'this one)')
        return f'{where!r} is not in the config{hint}'
    return None


def check_cfg_options(cfg: Config, cfg_options: dict) -> None:
    """Raise ConfigOptionError for the first key of ``cfg_options`` that
    names nothing in ``cfg`` (see :func:`unknown_cfg_option`)."""
    for key in cfg_options:
        problem = unknown_cfg_option(cfg, key)
        if problem:
            raise ConfigOptionError(f'--cfg-options {key}: {problem}')


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config and apply overrides, refusing keys that name nothing in
    it. Paths may be our configs or upstream ones (``mmdet::...``,
    ``mmseg::...``)."""
    cfg = Config.fromfile(resolve_config_path(path))
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
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
