"""Swap chosen nn.Conv2d layers of any model for DRConv, in place."""
import difflib
import warnings
from fnmatch import fnmatchcase
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from .layers import DRConv, ModulatedDRConv

Patterns = Union[str, Sequence[str]]
KernelSize = Optional[Union[int, Tuple[int, int]]]

_LISTED = 10  # modules named per pattern in an error message


def _as_patterns(patterns: Patterns, what: str) -> Tuple[str, ...]:
    patterns = (patterns, ) if isinstance(patterns, str) else tuple(patterns)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f'{what} patterns must be strings (glob patterns '
                            f'over module names), got {pattern!r}')
    return patterns


def _is_wildcard(pattern: str) -> bool:
    return any(c in pattern for c in '*?[')


def _skip_reason(conv: nn.Module) -> Optional[str]:
    """Why ``conv`` cannot be converted, or None when it can."""
    kind = type(conv).__name__
    if isinstance(conv, DRConv):
        return 'already a DRConv'
    if isinstance(conv, nn.ConvTranspose2d):
        return (f'{kind}: a transposed convolution; DRConv replaces forward '
                'convolutions only')
    if isinstance(conv, nn.modules.conv._ConvNd) and \
            not isinstance(conv, nn.Conv2d):
        return f'{kind}: DRConv replaces 2-d convolutions only'
    if not isinstance(conv, nn.Conv2d):
        return f'{kind}: not a convolution'
    if type(conv) is not nn.Conv2d:
        return (f'{kind}: a subclass of nn.Conv2d whose forward may do more '
                'than a convolution; DRConv would drop it')
    if conv.padding_mode != 'zeros':
        return (f'padding_mode={conv.padding_mode!r}; DRConv pads with '
                'zeros only')
    return None


def _listing(entries: List[Tuple[str, str]]) -> str:
    lines = [f'  {name or "<the module itself>"}: {reason}'
             for name, reason in entries[:_LISTED]]
    if len(entries) > _LISTED:
        lines.append(f'  ... ({len(entries)} in all)')
    return '\n'.join(lines)


def plan_conversion(module: nn.Module,
                    include: Patterns = ('*', ),
                    exclude: Patterns = (),
                    kernel_size: KernelSize = None) -> List[str]:
    """Names of the convs of ``module`` that ``convert_to_drconv`` would
    replace; raises ValueError for patterns that are most likely mistakes.

    Rules: every include and exclude pattern must match some module name;
    every include pattern must select at least one convertible conv; a
    pattern without wildcards must name a convertible conv. A wildcard
    pattern skips what it cannot convert: other module types silently (a
    pattern like ``'backbone.*'`` matches norms and activations too),
    convolutions that cannot be converted with a warning. The convs inside
    DRConv layers (guides, generators) are never converted, so converting
    twice leaves the first conversion alone.
    """
    include = _as_patterns(include, 'include')
    exclude = _as_patterns(exclude, 'exclude')
    if not include:
        raise ValueError('convert_to_drconv: include is empty, so nothing '
                         "would be converted; use include='*' for every "
                         'convertible conv')
    if kernel_size is not None:
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size, kernel_size)
        kernel_size = tuple(kernel_size)
        if len(kernel_size) != 2 or not all(
                isinstance(k, int) and k > 0 for k in kernel_size):
            raise ValueError(f'kernel_size must be a positive int or a pair '
                             f'of them, got {kernel_size!r}')
    modules = dict(module.named_modules())
    # The guide and generator convs of DRConv layers are theirs, not the
    # model's: converting twice must leave them alone.
    inside_drconv: Dict[str, str] = {}
    for name, child in modules.items():
        if isinstance(child, DRConv):
            for sub_name, _ in child.named_modules(prefix=name):
                if sub_name != name:
                    inside_drconv[sub_name] = name

    for pattern in exclude:
        if not any(fnmatchcase(n, pattern) for n in modules):
            raise ValueError(
                f'convert_to_drconv: exclude pattern {pattern!r} matches no '
                f'module name{_suggestion(pattern, modules)}')

    targets: List[str] = []
    for pattern in include:
        matched = [n for n in modules if fnmatchcase(n, pattern)]
        if not matched:
            raise ValueError(
                f'convert_to_drconv: include pattern {pattern!r} matches no '
                f'module name{_suggestion(pattern, modules)}')
        converted, skipped, unconvertible_convs = [], [], []
        for name in matched:
            excluded_by = next(
                (p for p in exclude if fnmatchcase(name, p)), None)
            if excluded_by is not None:
                skipped.append((name, f'excluded by {excluded_by!r}'))
                continue
            if name in inside_drconv:
                owner = inside_drconv[name] or '<the module itself>'
                skipped.append((name, f'part of the DRConv {owner!r}'))
                continue
            reason = _skip_reason(modules[name])
            if reason is not None:
                skipped.append((name, reason))
                if isinstance(modules[name], nn.modules.conv._ConvNd):
                    unconvertible_convs.append((name, reason))
            elif kernel_size is not None and \
                    modules[name].kernel_size != kernel_size:
                skipped.append((name, f'kernel_size '
                                f'{modules[name].kernel_size} is not the '
                                f'requested kernel_size={kernel_size}'))
            else:
                converted.append(name)
        # Convolutions first: they are what the pattern most likely meant.
        skipped.sort(key=lambda entry: entry[1].endswith('not a convolution'))
        if not converted and _is_wildcard(pattern):
            raise ValueError(
                f'convert_to_drconv: include pattern {pattern!r} converts '
                f'nothing; it matches {len(matched)} module(s), none '
                f'convertible:\n{_listing(skipped)}')
        if not converted:
            hint = ''
            if any(isinstance(m, nn.Conv2d) for m in
                   modules[pattern].modules()) and \
                    not isinstance(modules[pattern], nn.Conv2d):
                hint = (f'\nTo convert the convolutions inside it, use '
                        f'{pattern + ".*"!r} (patterns match module names, '
                        'not their children).')
            raise ValueError(
                f'convert_to_drconv: include pattern {pattern!r} names a '
                f'module that cannot be converted:\n{_listing(skipped)}'
                f'{hint}')
        if unconvertible_convs:
            warnings.warn(
                f'convert_to_drconv: include pattern {pattern!r} leaves '
                f'{len(unconvertible_convs)} convolution(s) unconverted:\n'
                f'{_listing(unconvertible_convs)}', stacklevel=3)
        targets += [n for n in converted if n not in targets]
    return targets


def _suggestion(pattern: str, modules) -> str:
    names = [n for n in modules if n]
    close = difflib.get_close_matches(pattern, names, n=3, cutoff=0.6)
    if close:
        return f'; did you mean {", ".join(map(repr, close))}?'
    return (f'; names look like {", ".join(map(repr, names[:3]))} (dotted '
            'paths as in named_modules(); globs: *, ?, [seq])')


def convert_to_drconv(module: nn.Module,
                      include: Patterns = ('*', ),
                      exclude: Patterns = (),
                      kernel_size: KernelSize = None,
                      **drconv_options) -> nn.Module:
    """Replace matching ``nn.Conv2d`` layers of ``module`` by ``DRConv``.

    Like ``nn.SyncBatchNorm.convert_sync_batchnorm``: converts in place and
    returns the module (the new layer itself if ``module`` is a conv).

    Args:
        include / exclude: glob patterns over dotted module names (as in
            ``named_modules()``, e.g. ``'backbone.layer4.*.conv2'``); a conv
            is converted when it matches an include and no exclude pattern.
            The conv inside an mmcv ``ConvModule`` is named ``'...conv'``.
            A pattern that matches nothing, converts nothing, or names
            (without wildcards) a module that is not a convertible conv
            raises ValueError listing what it matched and why each was
            skipped; see :func:`plan_conversion`.
        kernel_size: convert only convs with this kernel size (e.g. 1 for the
            pointwise convs of efficient networks).
        **drconv_options: passed to ``DRConv`` (``region_num``,
            ``generator``, ...). With ``generator='modulated'`` the conv's
            weight and bias are copied, so the converted model computes the
            same function at start and keeps the state-dict keys.

    Returns:
        The converted module.
    """
    targets = plan_conversion(module, include, exclude, kernel_size)
    for name in targets:
        layer = _drconv_like(module.get_submodule(name), drconv_options)
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
