"""Fixes for the pinned OpenMMLab stack on current PyTorch.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; PyTorch >= 2.6
defaults it to True, which refuses the mmengine and numpy objects a training
checkpoint holds ("Weights only load failed"), so every load and ``--resume``
breaks. We re-register mmengine's local-file checkpoint loader to load the
user's own checkpoint files as PyTorch < 2.6 did, and to name the problem when
a file is missing, truncated or not a checkpoint.
"""
import os
import os.path as osp
import pickle
import zipfile

import torch
from mmengine.runner.checkpoint import CheckpointLoader


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read."""


def load_local_checkpoint(filename: str, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    try:
        # Local checkpoints are the user's own files (as with any PyTorch
        # < 2.6 load); weights_only would reject mmengine's message hub state.
        return torch.load(filename, map_location=map_location,
                          weights_only=False)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError,
            RuntimeError, ValueError) as error:
        raise CheckpointError(
            f'cannot read checkpoint {filename}: the file is corrupt, '
            f'truncated or not a PyTorch checkpoint ({error})') from error


CheckpointLoader.register_scheme(
    prefixes='', loader=load_local_checkpoint, force=True)


# Pretrained weights on offline machines. Upstream configs name remote
# checkpoints (torchvision://resnet50, https://...). We look for the file in
# local folders first and, when it is neither there nor downloadable, say
# where to put it instead of failing deep inside a download.
PRETRAINED_DIR_ENV = 'MMDRCONV_PRETRAINED_DIR'
DEFAULT_PRETRAINED_DIRS = ('data/pretrained', '~/.cache/torch/hub/checkpoints')
REMOTE_PREFIXES = ('torchvision://', 'open-mmlab://', 'openmmlab://',
                   'modelzoo://', 'mmcls://', 'https://', 'http://')


def pretrained_dirs():
    extra = os.environ.get(PRETRAINED_DIR_ENV)
    dirs = ([extra] if extra else []) + list(DEFAULT_PRETRAINED_DIRS)
    return [osp.expanduser(d) for d in dirs]


def local_pretrained_name(filename: str) -> str:
    """'torchvision://resnet50' -> 'resnet50.pth'; URLs -> their basename."""
    name = filename.split('://', 1)[-1].rstrip('/').split('/')[-1]
    return name if name.endswith(('.pth', '.pt')) else name + '.pth'


def find_local_pretrained(filename: str):
    name = local_pretrained_name(filename)
    for folder in pretrained_dirs():
        path = osp.join(folder, name)
        if osp.isfile(path):
            return path
    return None


def _offline_aware(remote_loader):

    def load(filename, map_location=None, *args, **kwargs):
        local = find_local_pretrained(filename)
        if local is not None:
            return load_local_checkpoint(local, map_location)
        try:
            return remote_loader(filename, map_location, *args, **kwargs)
        except Exception as error:  # network, missing torchvision, ...
            folders = ', '.join(pretrained_dirs())
            raise CheckpointError(
                f'cannot load pretrained weights {filename!r}: {error!r}. '
                'This machine may be offline. Download the file elsewhere '
                f'and save it as {local_pretrained_name(filename)!r} in one '
                f'of: {folders} (or set ${PRETRAINED_DIR_ENV}); or point the '
                'config at a local file, e.g. --cfg-options '
                'model.backbone.init_cfg.checkpoint=PATH; or train from '
                'scratch with model.backbone.init_cfg=None.') from error

    load.__name__ = remote_loader.__name__  # mmengine logs it
    return load


for _prefix in REMOTE_PREFIXES:
    _loader = CheckpointLoader._schemes.get(_prefix)
    if _loader is not None and not getattr(_loader, '_mmdrconv', False):
        _wrapped = _offline_aware(_loader)
        _wrapped._mmdrconv = True
        CheckpointLoader.register_scheme(_prefix, _wrapped, force=True)
