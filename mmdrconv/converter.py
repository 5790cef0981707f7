"""Swap chosen nn.Conv2d layers of any model for DRConv, in place."""
from fnmatch import fnmatchcase
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from .layers import DRConv, ModulatedDRConv

Patterns = Union[str, Sequence[str]]


def _as_patterns(patterns: Patterns) -> Tuple[str, ...]:
    return (patterns, ) if isinstance(patterns, str) else tuple(patterns)


def _matches(name: str, patterns: Tuple[str, ...]) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def convert_to_drconv(module: nn.Module,
                      include: Patterns = ('*', ),
                      exclude: Patterns = (),
                      kernel_size: Optional[Union[int, Tuple[int,
                                                            int]]] = None,
                      **drconv_options) -> nn.Module:
    """Replace matching ``nn.Conv2d`` layers of ``module`` by ``DRConv``.

    Like ``nn.SyncBatchNorm.convert_sync_batchnorm``: converts in place and
    returns the module (the new layer itself if ``module`` is a conv).

    Args:
        include / exclude: glob patterns over dotted module names (as in
            ``named_modules()``, e.g. ``'backbone.layer4.*.conv2'``); a conv
            is converted when it matches an include and no exclude pattern.
            The conv inside an mmcv ``ConvModule`` is named ``'...conv'``.
        kernel_size: convert only convs with this kernel size (e.g. 1 for the
            pointwise convs of efficient networks).
        **drconv_options: passed to ``DRConv`` (``region_num``,
            ``generator``, ...). With ``generator='modulated'`` the conv's
            weight and bias are copied, so the converted model computes the
            same function at start and keeps the state-dict keys.

    Returns:
        The converted module.
    """
    include, exclude = _as_patterns(include), _as_patterns(exclude)
    if kernel_size is not None and isinstance(kernel_size, int):
        kernel_size = (kernel_size, kernel_size)
    targets = []
    for name, child in module.named_modules():
        if type(child) is not nn.Conv2d or child.padding_mode != 'zeros':
            continue
        if not _matches(name, include) or _matches(name, exclude):
            continue
        if kernel_size is not None and child.kernel_size != tuple(
                kernel_size):
            continue
        targets.append((name, child))
    for name, conv in targets:
        layer = _drconv_like(conv, drconv_options)
        if not name:
            return layer
        parent_name, _, attr = name.rpartition('.')
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, layer)
    return module


def _drconv_like(conv: nn.Conv2d, options: dict) -> DRConv:
    layer = DRConv(conv.in_channels, conv.out_channels, conv.kernel_size,
                   conv.stride, conv.padding, conv.dilation, conv.groups,
                   conv.bias is not None, **options)
    if isinstance(layer, ModulatedDRConv):
        with torch.no_grad():
            layer.weight.copy_(conv.weight)
            if conv.bias is not None:
                layer.bias.copy_(conv.bias)
    return layer.to(device=conv.weight.device, dtype=conv.weight.dtype)
