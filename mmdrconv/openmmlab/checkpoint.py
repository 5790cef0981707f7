"""How checkpoint files are loaded: weights only, never code from the file.

Patch of mmengine 0.10.7 (``mmengine.runner.checkpoint``), needed with
torch >= 2.6. mmengine calls ``torch.load`` without ``weights_only``. Since
torch 2.6 that means ``weights_only=True`` with torch's default allowlist,
which refuses the numpy and mmengine objects every Runner checkpoint holds
(so ``--resume`` and ``load_from`` fail), while its URL loader passes
through ``torch.hub.load_state_dict_from_url``. Here every scheme of
``CheckpointLoader`` (local files, http(s), torchvision://, open-mmlab://,
mmcls://, pavi://, s3://) is replaced by a loader that reads the bytes the
same way and unpickles them with ``torch.load(weights_only=True)`` and
exactly the globals that real OpenMMLab checkpoints hold
(:data:`CHECKPOINT_GLOBALS`, found by saving and resuming mmdet and mmseg
runs). Anything else is refused before any of it runs, naming the file and
the global. A user who trusts a file opts in with ``--trust-checkpoint`` on
the tools or ``MMDRCONV_TRUST_CHECKPOINTS=1``; nothing shipped here does.

Remote names (``torchvision://resnet50``, URLs) are first looked up in local
folders (:func:`find_local_pretrained`), since training machines are often
offline; when neither works the error says where to put the file.
"""
import hashlib
import inspect
import io
import os
import os.path as osp
import pickle
import re
import zipfile
from tempfile import TemporaryDirectory
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.logging import HistoryBuffer
from mmengine.runner import checkpoint as upstream
from mmengine.runner.checkpoint import CheckpointLoader

TRUST_ENV = 'MMDRCONV_TRUST_CHECKPOINTS'
PRETRAINED_DIR_ENV = 'MMDRCONV_PRETRAINED_DIR'
DEFAULT_PRETRAINED_DIRS = ('data/pretrained', '~/.cache/torch/hub/checkpoints')


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be used."""


class UntrustedCheckpointError(CheckpointError):
    """A checkpoint holds objects that a weights-only load refuses."""


# HistoryBuffer pickles its statistics methods (HistoryBuffer.min, ...) as
# getattr(HistoryBuffer, 'min'). The real builtins.getattr would let a file
# walk from any allowed object to arbitrary attributes, so the unpickler gets
# this one, which resolves exactly those names.
_HISTORY_STATISTICS = frozenset(('min', 'max', 'current', 'mean'))


def _history_buffer_getattr(obj, name):
    if obj is HistoryBuffer and name in _HISTORY_STATISTICS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed: only '
        f'HistoryBuffer.{{{", ".join(sorted(_HISTORY_STATISTICS))}}}')


def _numpy_globals() -> List:
    multiarray = np._core.multiarray
    dtype_classes = [
        getattr(np.dtypes, name) for name in dir(np.dtypes)
        if name.endswith('DType') and name != 'StringDType'
    ]
    return [
        np.dtype, np.ndarray, multiarray._reconstruct, multiarray.scalar,
        # numpy 1.x wrote these module paths; numpy 2 reads them as aliases.
        (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
        (multiarray.scalar, 'numpy.core.multiarray.scalar'),
        *dtype_classes,
    ]


# What mmengine 0.10.7 / mmdet 3.3.0 / mmseg 1.2.2 checkpoints pickle beyond
# torch's own allowlist (tensors, OrderedDict, builtin containers, the
# _codecs.encode of pickled bytes): the message hub's HistoryBuffers and
# their statistics methods, and numpy arrays, scalars and dtypes (logged
# values, dataset_meta).
CHECKPOINT_GLOBALS: List = [
    HistoryBuffer,
    (_history_buffer_getattr, 'builtins.getattr'),
    *_numpy_globals(),
]


def _allowed_names() -> set:
    names = set()
    for entry in CHECKPOINT_GLOBALS:
        if isinstance(entry, tuple):
            names.add(entry[1])
        else:
            names.add(f'{entry.__module__}.{entry.__qualname__}')
    return names


def trust_requested() -> bool:
    """Whether the user opted in to loading checkpoints as trusted code."""
    return os.environ.get(TRUST_ENV, '').lower() in ('1', 'true', 'yes')


def trust_checkpoints() -> None:
    """Opt in for this process and its children (``--trust-checkpoint``)."""
    os.environ[TRUST_ENV] = '1'


_GLOBAL_IN_MESSAGE = re.compile(r'GLOBAL ([\w.]+)')


def _unsafe_globals(source, error: Exception) -> List[str]:
    """The globals of ``source`` that the policy refuses (best effort)."""
    found: List[str] = []
    if isinstance(source, (str, os.PathLike)):
        try:
            found = torch.serialization.get_unsafe_globals_in_checkpoint(
                source)
        except Exception:  # legacy formats: fall back to torch's message
            found = []
    allowed = _allowed_names()
    found = [name for name in found if name not in allowed]
    if not found:
        found = _GLOBAL_IN_MESSAGE.findall(str(error))
    return sorted(set(found))


def load_checkpoint_file(source, map_location=None, name: str = None):
    """``torch.load`` under the policy above. ``source``: a path or a
    binary file object; ``name`` names it in errors."""
    name = name or str(source)
    if trust_requested():
        try:
            return torch.load(source, map_location=map_location,
                              weights_only=False)
        except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError,
                RuntimeError, ValueError) as error:
            raise CheckpointError(_corrupt(name, error)) from error
    try:
        with torch.serialization.safe_globals(CHECKPOINT_GLOBALS):
            return torch.load(source, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as error:
        refused = _unsafe_globals(source, error)
        if not refused and 'getattr' not in str(error):
            raise CheckpointError(_corrupt(name, error)) from error
        what = ', '.join(refused) if refused else str(error).splitlines()[-1]
        raise UntrustedCheckpointError(
            f'refusing to load checkpoint {name}: it holds {what}, which a '
            'weights-only load does not allow (unpickling it could run code '
            'from the file). Only if you trust this file, load it with '
            f'--trust-checkpoint or the environment variable {TRUST_ENV}=1.'
        ) from None
    except (zipfile.BadZipFile, EOFError, RuntimeError, ValueError) as error:
        raise CheckpointError(_corrupt(name, error)) from error


def _corrupt(name: str, error: Exception) -> str:
    # torch's weights-only message suggests weights_only=False, which is
    # no remedy for a broken file: keep only what it found.
    detail = str(error)
    if 'WeightsUnpickler error:' in detail:
        detail = detail.split('WeightsUnpickler error:')[1]
        detail = detail.split('Check the documentation')[0]
    detail = ' '.join(detail.split())
    return (f'cannot read checkpoint {name}: the file is corrupt, truncated '
            f'or not a PyTorch checkpoint ({detail})')


# Offline pretrained weights. Upstream configs name remote checkpoints
# (torchvision://resnet50, https://...); we look for the file locally first.
def pretrained_dirs() -> List[str]:
    extra = os.environ.get(PRETRAINED_DIR_ENV)
    dirs = ([extra] if extra else []) + list(DEFAULT_PRETRAINED_DIRS)
    return [osp.expanduser(d) for d in dirs]


def local_pretrained_name(filename: str) -> str:
    """'torchvision://resnet50' -> 'resnet50.pth'; URLs -> their basename."""
    name = filename.split('://', 1)[-1].rstrip('/').split('/')[-1]
    return name if name.endswith(('.pth', '.pt')) else name + '.pth'


def find_local_pretrained(filename: str) -> Optional[str]:
    name = local_pretrained_name(filename)
    for folder in pretrained_dirs():
        path = osp.join(folder, name)
        if osp.isfile(path):
            return path
    return None


def _offline_error(filename: str, error: Exception) -> CheckpointError:
    folders = ', '.join(pretrained_dirs())
    return CheckpointError(
        f'cannot load pretrained weights {filename!r}: {error!r}. This '
        'machine may be offline. Download the file elsewhere and save it as '
        f'{local_pretrained_name(filename)!r} in one of: {folders} (or set '
        f'${PRETRAINED_DIR_ENV}); or point the config at a local file, e.g. '
        '--cfg-options model.backbone.init_cfg.checkpoint=PATH; or train '
        'from scratch with model.backbone.init_cfg=None.')


# The scheme loaders. Each reads the bytes as mmengine 0.10.7 does and
# unpickles them with load_checkpoint_file.
def load_from_local(filename, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    return load_checkpoint_file(filename, map_location)


def _download(url: str) -> str:
    """Download ``url`` into torch's hub cache (rank 0 first, as mmengine
    does) and return the local path."""
    folder = osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(folder, osp.basename(urlparse(url).path))
    rank, world_size = get_dist_info()
    if rank == 0 and not osp.isfile(cached):
        os.makedirs(folder, exist_ok=True)
        torch.hub.download_url_to_file(url, cached, progress=False)
    if world_size > 1:
        torch.distributed.barrier()
    return cached


def _remote(resolve: Callable[[str], str]):
    """A loader for a remote scheme: the local copy if there is one, else
    the download of ``resolve(filename)`` (a URL or a local path)."""

    def load(filename, map_location=None):
        local = find_local_pretrained(filename)
        if local is not None:
            return load_checkpoint_file(local, map_location)
        try:
            target = resolve(filename)
            if target.startswith(('http://', 'https://')):
                target = _download(target)
        except Exception as error:  # offline, no torchvision, unknown name
            raise _offline_error(filename, error) from error
        return load_from_local(target, map_location)

    load.__name__ = f'load_from_{resolve.__name__}'  # mmengine logs it
    return load


def http(filename: str) -> str:
    return filename


def torchvision(filename: str) -> str:
    name = filename.split('://', 1)[1]
    return upstream.get_torchvision_models()[name]


def openmmlab(filename: str) -> str:
    name = filename.split('://', 1)[1]
    name = upstream.get_deprecated_model_names().get(name, name)
    url = upstream.get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return url
    return osp.join(upstream._get_mmengine_home(), url)


def mmcls(filename: str) -> str:
    return upstream.get_mmcls_models()[filename.split('://', 1)[1]]


def _load_from_mmcls(filename, map_location=None):
    checkpoint = _remote(mmcls)(filename, map_location)
    return upstream._process_mmcls_checkpoint(checkpoint)


def load_from_ceph(filename, map_location=None, backend='petrel'):
    backend = upstream.get_file_backend(filename,
                                        backend_args={'backend': backend})
    with io.BytesIO(backend.get(filename)) as buffer:
        return load_checkpoint_file(buffer, map_location, name=filename)


def load_from_pavi(filename, map_location=None):
    from pavi import modelcloud
    model = modelcloud.get(filename[len('pavi://'):])
    with TemporaryDirectory() as folder:
        path = osp.join(folder, model.name)
        model.download(path)
        return load_checkpoint_file(path, map_location, name=filename)


_load_from_mmcls.__name__ = 'load_from_mmcls'

# prefix -> (our loader, the mmengine 0.10.7 function it replaces).
# tests/test_checkpoint_safety.py fails, naming the prefix, if the pinned
# mmengine changes one of those functions or registers another scheme.
SCHEMES: Dict[str, Tuple[Callable, str]] = {
    '': (load_from_local, 'load_from_local'),
    'http://': (_remote(http), 'load_from_http'),
    'https://': (_remote(http), 'load_from_http'),
    'torchvision://': (_remote(torchvision), 'load_from_torchvision'),
    'modelzoo://': (_remote(torchvision), 'load_from_torchvision'),
    'open-mmlab://': (_remote(openmmlab), 'load_from_openmmlab'),
    'openmmlab://': (_remote(openmmlab), 'load_from_openmmlab'),
    'mmcls://': (_load_from_mmcls, 'load_from_mmcls'),
    'pavi://': (load_from_pavi, 'load_from_pavi'),
    r'(\S+\:)?s3://': (load_from_ceph, 'load_from_ceph'),
    r'(\S+\:)?petrel://': (load_from_ceph, 'load_from_ceph'),
}


def source_digest(function: Callable) -> str:
    return hashlib.sha256(
        inspect.getsource(function).encode()).hexdigest()[:16]


# The schemes mmengine registered before install() replaced them.
UPSTREAM_PREFIXES = frozenset(CheckpointLoader._schemes)


def install() -> None:
    """Replace every scheme of mmengine's CheckpointLoader (idempotent)."""
    for prefix, (loader, _) in SCHEMES.items():
        CheckpointLoader.register_scheme(prefix, loader, force=True)


# The refusal of checkpoints that do not fit the model they evaluate.
_SHOWN = 5  # keys listed per kind of difference


def checkpoint_mismatch(model: torch.nn.Module,
                        state_dict: Dict[str, object]) -> Optional[str]:
    """What differs between ``model``'s state dict and ``state_dict``, or
    None when every key is present with the same shape."""
    from mmengine.model import is_model_wrapper
    if is_model_wrapper(model):
        model = model.module
    expected = model.state_dict()
    # DDP-saved checkpoints prefix every key; mmengine strips it on load too.
    given = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state_dict.items()}
    adopted = set()  # shapes the layer takes from the file as it loads
    for name, module in model.named_modules():  # keys of older versions
        prefix = f'{name}.' if name else ''
        upgrade = getattr(module, 'upgrade_state_dict', None)
        if upgrade is not None:
            upgrade(given, prefix)
        stored_width = getattr(module, 'stored_hidden_width', None)
        if stored_width is not None and \
                stored_width(given, prefix) is not None:
            adopted.update(prefix + k for k in module.SCALE_MLP_KEYS)
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    reshaped = [
        f'{k} {tuple(given[k].shape)} vs model {tuple(v.shape)}'
        for k, v in expected.items()
        if k in given and hasattr(given[k], 'shape') and k not in adopted
        and tuple(given[k].shape) != tuple(v.shape)
    ]
    parts: List[str] = []
    for label, keys in (('missing from the checkpoint', missing),
                        ('not in the model', unexpected),
                        ('with other shapes', reshaped)):
        if keys:
            more = f', ... ({len(keys)} in all)' if len(keys) > _SHOWN else ''
            parts.append(f'{len(keys)} keys {label}: '
                         f'{", ".join(keys[:_SHOWN])}{more}')
    return '; '.join(parts) or None


def verify_checkpoint(model: torch.nn.Module, filename: str) -> dict:
    """Load ``filename`` and raise CheckpointError unless its weights fit
    ``model`` exactly (evaluation and visualisation: mmengine's non-strict
    load would otherwise evaluate a partly random model). Returns the
    loaded checkpoint."""
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    state_dict = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise CheckpointError(f'{filename} holds no state dict')
    problem = checkpoint_mismatch(model, state_dict)
    if problem:
        raise CheckpointError(
            f'checkpoint {filename} does not match the model of this config '
            f'(trained with another config?): {problem}')
    return checkpoint
