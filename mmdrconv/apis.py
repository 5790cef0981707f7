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
            if len(parts) > 1 and parts[1].isdigit():
                # merged as a dict {'0': ...}, which no Runner list takes
                return (f'{where!r} is not in the config, and a list cannot '
                        f'be made from dotted keys: give {where} in a '
                        'config inheriting this one')
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


# ------------------------------------------ what a new option is passed to
# A new last key (``default_hooks.checkpoint.intervl``) is passed to the
# component its dict configures, which may accept it only at the first save
# or evaluation, hours later, or never read it. Each is checked at load
# against the signature it reaches. The registries a typed dict is looked
# up in, by the top-level key it is under:
_REGISTRIES = {
    'model': ('MODELS', 'TASK_UTILS', 'WEIGHT_INITIALIZERS'),
    'default_hooks': ('HOOKS', ),
    'custom_hooks': ('HOOKS', ),
    'train_cfg': ('LOOPS', ),
    'val_cfg': ('LOOPS', ),
    'test_cfg': ('LOOPS', ),
    'optim_wrapper': ('OPTIM_WRAPPERS', 'OPTIMIZERS'),
    'param_scheduler': ('PARAM_SCHEDULERS', ),
    'train_dataloader': ('DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS'),
    'val_dataloader': ('DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS'),
    'test_dataloader': ('DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS'),
    'val_evaluator': ('METRICS', 'EVALUATOR'),
    'test_evaluator': ('METRICS', 'EVALUATOR'),
    'visualizer': ('VISUALIZERS', 'VISBACKENDS'),
    'log_processor': ('LOG_PROCESSORS', ),
}
# Untyped dicts mmengine builds with a default type, and what they take.
_DEFAULT_TYPES = {
    ('train_cfg', ): ('LOOPS', None),  # by_epoch picks the loop
    ('val_cfg', ): ('LOOPS', 'ValLoop'),
    ('test_cfg', ): ('LOOPS', 'TestLoop'),
    ('optim_wrapper', ): ('OPTIM_WRAPPERS', 'OptimWrapper'),
    ('log_processor', ): ('LOG_PROCESSORS', 'LogProcessor'),
}
# Keys that the code building a component takes out of its dict first.
_BUILDER_KEYS = {
    'optim_wrapper': {'constructor', 'paramwise_cfg'},
    'param_scheduler': {'convert_to_iter_based'},
    'norm_cfg': {'requires_grad'},  # mmcv's build_norm_layer
    'dcn': {'fallback_on_stride'},  # mmdet's / mmseg's ResNet blocks
}
_DATALOADER_KEYS = {  # mmengine's Runner.build_dataloader
    'dataset', 'sampler', 'batch_sampler', 'collate_fn', 'worker_init_fn',
    'num_batch_per_epoch', 'disable_subprocess_warning'
}
_NEAR_MISS = 0.8  # difflib ratio of a new key to an existing one: a typo


def _kwargs_go_nowhere() -> dict:
    """Classes whose ``**kwargs`` reach something that takes none beyond
    what the class passes itself: CheckpointHook forwards them to
    Runner.save_checkpoint, every argument of which it already passes."""
    from mmengine.hooks import CheckpointHook
    return {CheckpointHook: set()}


def _keywords(function) -> Optional[Tuple[set, bool]]:
    """(the named keyword arguments of ``function``, whether it also takes
    ``**kwargs``), or None when its signature is unknown (a builtin)."""
    kind = inspect.Parameter
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return None
    names = {n for n, p in params.items() if n != 'self' and p.kind in
             (kind.POSITIONAL_OR_KEYWORD, kind.KEYWORD_ONLY)}
    return names, any(p.kind is kind.VAR_KEYWORD for p in params.values())


def accepted_options(target) -> Optional[set]:
    """The keyword arguments ``target`` (a class or function) takes, or
    None when it takes any (``**kwargs`` whose destination is unknown).
    A class's ``**kwargs`` are followed up its MRO's ``__init__``s."""
    inits = [target] if not inspect.isclass(target) else [
        vars(klass)['__init__'] for klass in target.__mro__
        if '__init__' in vars(klass)]
    names: set = set()
    for init in inits:
        if init in (object.__init__, torch.nn.Module.__init__):
            return names  # these refuse other keywords
        found = _keywords(init)
        if found is None:
            return None
        names |= found[0]
        if not found[1]:
            return names
    # **kwargs that no parent __init__ takes: kept for something else.
    extra = _kwargs_go_nowhere().get(target)
    return None if extra is None else names | extra


def _lookup(registry_names, scope: str, name):
    """The class or function registered as ``name`` in the first of the
    registries that has it (``scope``'s child registries first)."""
    if not isinstance(name, str):
        return name if callable(name) else None
    from mmengine import registry as registries
    for registry_name in registry_names:
        registry = getattr(registries, registry_name)
        with registry.switch_scope_and_registry(scope) as scoped:
            found = scoped.get(name)
        if found is not None:
            return found
    return None


def _component(node: dict, path: Tuple[str, ...], scope: str):
    """(what the dict at ``path`` builds, the options it takes besides its
    keys) or None when unknown. ``path``: keys and list indices."""
    extra = set(_BUILDER_KEYS.get(next(
        (p for p in reversed(path) if not p.isdigit()), ''), ()))
    if 'type' not in node:
        if path[-1].endswith('_dataloader') and len(path) == 1:
            return torch.utils.data.DataLoader, _DATALOADER_KEYS
        if path == ('randomness', ):
            return Runner.set_randomness, set()
        default = _DEFAULT_TYPES.get(path)
        if default is None:
            return None
        registry_name, name = default
        if name is None:  # train_cfg: mmengine picks by by_epoch
            name = ('EpochBasedTrainLoop' if node.get('by_epoch', True)
                    else 'IterBasedTrainLoop')
            extra.add('by_epoch')
        return _lookup((registry_name, ), scope, name), extra
    registries = _REGISTRIES.get(path[0])
    if registries is None:
        return None
    target = _lookup(registries, scope, node['type'])
    if target is None:
        return None
    from .core.layers import DRConv
    if inspect.isclass(target) and issubclass(target, DRConv):
        # DRConv(...) builds the class of its generator, with its options.
        options = {k: v for k, v in node.items() if k != 'type'}
        target = type(DRConv.__new__(target, **options))
    return target, extra


def _option_problem(node: dict, path: Tuple[str, ...], new: str,
                    scope: str) -> Optional[str]:
    """Why the new option ``new`` of the dict at ``path`` would not be
    used, or None."""
    where = '.'.join(path)
    component = _component(node, path, scope)
    accepted = None
    if component is not None and component[0] is not None:
        target, extra = component
        accepted = accepted_options(target)
        if accepted is not None:
            accepted |= extra
    if accepted is None:  # a dict read by name, or **kwargs: typos only
        close = difflib.get_close_matches(new, [k for k in node if k != new],
                                          n=1, cutoff=_NEAR_MISS)
        if close:
            return (f'{where!r} has no {new!r}; did you mean '
                    f'{where + "." + close[0]!r}? (a new key there would '
                    'not be read)')
        return None
    if new in accepted:
        return None
    name = getattr(target, '__qualname__', str(target))
    close = difflib.get_close_matches(new, sorted(accepted), n=1)
    hint = (f'; did you mean {where + "." + close[0]!r}?' if close else
            f'; it takes: {", ".join(sorted(accepted))}')
    return f'{where!r} builds {name}, which takes no option {new!r}{hint}'


def check_new_options(original: Config, merged: Config,
                      cfg_options: dict) -> None:
    """Raise ConfigOptionError for a key of ``cfg_options`` whose last part
    is new in ``original`` and which the component it configures in
    ``merged`` does not take (a typo such as ``train_cfg.max_iter``): at
    load, not at the first save, evaluation or build."""
    scope = merged.get('default_scope', 'mmdet')
    for key in cfg_options:
        parts = key.split('.')
        if len(parts) < 2 or _has_key(original._cfg_dict, parts):
            continue
        node = merged._cfg_dict
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, (list, tuple)) \
                else node.get(part)
        if not isinstance(node, dict):
            continue
        try:
            problem = _option_problem(node, tuple(parts[:-1]), parts[-1],
                                      scope)
        except ValueError as error:  # the component refuses a value
            problem = f'{".".join(parts[:-1])!r}: {error}'
        if problem:
            raise ConfigOptionError(f'--cfg-options {key}: {problem}')


def _has_key(node, parts) -> bool:
    for part in parts:
        if isinstance(node, (list, tuple)) and part.isdigit() and \
                int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config and apply overrides, refusing keys that name nothing in
    it and new options that the component they configure does not take.
    Paths may be our configs or upstream ones (``mmdet::...``,
    ``mmseg::...``)."""
    cfg = Config.fromfile(resolve_config_path(path))
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
        original = copy.deepcopy(cfg)
        cfg.merge_from_dict(cfg_options)
        check_new_options(original, cfg, cfg_options)
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


def without_pretrained(model_cfg):
    """A copy of a model config with every pretrained-weights source removed:
    ``init_cfg`` entries of type 'Pretrained' and string ``pretrained``
    options (mmseg's, which its segmentors hand to the backbone)."""
    if isinstance(model_cfg, (list, tuple)):
        kept = [without_pretrained(item) for item in model_cfg
                if not _is_pretrained_init(item)]
        return type(model_cfg)(kept)
    if not isinstance(model_cfg, dict):
        return model_cfg
    out = type(model_cfg)()
    for key, value in model_cfg.items():
        if key == 'pretrained' and isinstance(value, str):
            value = None
        elif key == 'init_cfg' and _is_pretrained_init(value):
            value = None
        else:
            value = without_pretrained(value)
        out[key] = value
    return out


def _is_pretrained_init(value) -> bool:
    return isinstance(value, dict) and value.get('type') == 'Pretrained'


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
    # Trained values change neither time nor memory: no download of the
    # pretrained backbone (offline, the measurement would fail on it).
    cfg.model = without_pretrained(cfg.model)
    model = revert_sync_batchnorm(build_model(cfg))
    if init_weights:
        torch.manual_seed(seed)
        model.init_weights()
    return cfg, model.eval()
