"""Refuse checkpoints that do not fit the model they are evaluated with.

mmengine loads checkpoints non-strictly and only logs missing keys, so
``tools/test.py`` with the wrong checkpoint (the standard-conv twin's, another
task's, another width's) would report the metrics of a partly random model.
Evaluation and visualisation check the fit first and stop with the keys that
differ. Fine-tuning from pretrained weights (``load_from``, ``init_cfg``)
stays lenient, as upstream: there missing DRConv parts are expected.
"""
from typing import Dict, List, Optional

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import CheckpointLoader

from .compat import CheckpointError

_SHOWN = 5  # keys listed per kind of difference


def checkpoint_mismatch(model: nn.Module,
                        state_dict: Dict[str, object]) -> Optional[str]:
    """What differs between ``model``'s state dict and ``state_dict``, or
    None when every key is present with the same shape."""
    if is_model_wrapper(model):
        model = model.module
    expected = model.state_dict()
    # DDP-saved checkpoints prefix every key; mmengine strips it on load too.
    given = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state_dict.items()}
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    reshaped = [
        f'{k} {tuple(given[k].shape)} vs model {tuple(v.shape)}'
        for k, v in expected.items()
        if k in given and hasattr(given[k], 'shape')
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


def verify_checkpoint(model: nn.Module, filename: str) -> dict:
    """Load ``filename`` and raise CheckpointError unless its weights fit
    ``model`` exactly. Returns the loaded checkpoint."""
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
