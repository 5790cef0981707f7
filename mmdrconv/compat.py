"""Fixes for the pinned OpenMMLab stack on current PyTorch.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; PyTorch >= 2.6
defaults it to True, which refuses the mmengine and numpy objects a training
checkpoint holds ("Weights only load failed"), so every load and ``--resume``
breaks. We re-register mmengine's local-file checkpoint loader to load the
user's own checkpoint files as PyTorch < 2.6 did, and to name the problem when
a file is missing, truncated or not a checkpoint.
"""
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
