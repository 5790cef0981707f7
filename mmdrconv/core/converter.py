"""Swap chosen nn.Conv2d layers of any model for DRConv, in place.

The conversion changes the layer and nothing else: a conv registered under
several names (a shared module) becomes one DRConv under every name, and
the conv's parameters (values, ``requires_grad``, device, dtype), training
mode and hooks stay with the new layer (see :func:`convert_to_drconv`).

It runs in steps, each doing one thing, so that an error names one kind of
mistake:

1. :func:`_check_options`: the patterns, ``kernel_size`` and DRConv options
   themselves.
2. :class:`_ModuleIndex`: every module under every name it has, and which
   ones belong to a DRConv already (its guide and generator).
3. :func:`_select`: per include pattern, the names it matches, each
   converted or skipped with a reason (:func:`_skip_reason`); errors and
   warnings for patterns that are most likely mistakes.
4. :func:`_build`: one DRConv per selected conv, all built (and their
   optimizer groups found, :func:`_optimizer_groups`) before
   :func:`_replace` swaps any in, so a failing build changes nothing.
5. The DRConv's new parameters join the optimizer given
   (:func:`_join_groups`); without one, :class:`_TrainedCheck` stops a
   training whose optimizer trains the conv's parameters but not them.
"""
import difflib
import warnings
import weakref
from fnmatch import fnmatchcase
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from torch.nn.utils import parametrize
from torch.optim.optimizer import register_optimizer_step_post_hook

from .layers import DRConv, ModulatedDRConv

Patterns = Union[str, Sequence[str]]
KernelSize = Optional[Union[int, Tuple[int, int]]]

_LISTED = 10  # modules named per pattern in an error message


class DroppedWeightsWarning(UserWarning):
    """A conversion whose DRConv does not use the conv's weight."""


class UntrainedParametersError(RuntimeError):
    """An optimizer trains a converted conv's parameters, but no optimizer
    trains its DRConv's new ones."""

# DRConv arguments that each conv supplies itself.
_FROM_CONV = ('in_channels', 'out_channels', 'kernel_size', 'stride',
              'padding', 'dilation', 'groups', 'bias', 'padding_mode',
              'device', 'dtype')

# The per-module hook tables of nn.Module (torch 2.x) that the new layer
# takes over. The dicts themselves move, so the handles a caller holds still
# remove their hooks.
_HOOK_TABLES = ('_forward_pre_hooks', '_forward_pre_hooks_with_kwargs',
                '_forward_hooks', '_forward_hooks_with_kwargs',
                '_forward_hooks_always_called', '_backward_pre_hooks',
                '_backward_hooks', '_state_dict_pre_hooks',
                '_state_dict_hooks', '_load_state_dict_pre_hooks',
                '_load_state_dict_post_hooks')


# ---------------------------------------------------------- 1. the options
def _as_patterns(patterns: Patterns, what: str) -> Tuple[str, ...]:
    patterns = (patterns, ) if isinstance(patterns, str) else tuple(patterns)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f'{what} patterns must be strings (glob patterns '
                            f'over module names), got {pattern!r}')
    return patterns


def _as_kernel_size(kernel_size: KernelSize) -> Optional[Tuple[int, int]]:
    if kernel_size is None:
        return None
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size, kernel_size)
    kernel_size = tuple(kernel_size)
    if len(kernel_size) != 2 or not all(
            isinstance(k, int) and k > 0 for k in kernel_size):
        raise ValueError(f'kernel_size must be a positive int or a pair '
                         f'of them, got {kernel_size!r}')
    return kernel_size


def _check_options(include: Patterns, exclude: Patterns,
                   kernel_size: KernelSize, drconv_options: dict):
    """The arguments of a conversion, normalised; ValueError / TypeError
    for ones that cannot be meant."""
    include = _as_patterns(include, 'include')
    exclude = _as_patterns(exclude, 'exclude')
    if not include:
        raise ValueError('convert_to_drconv: include is empty, so nothing '
                         "would be converted; use include='*' for every "
                         'convertible conv')
    given = [k for k in _FROM_CONV if k in drconv_options]
    if given:
        raise TypeError(f'convert_to_drconv: {", ".join(given)} come(s) '
                        'from each converted conv; pass only DRConv '
                        'options (region_num, generator, ...)')
    return include, exclude, _as_kernel_size(kernel_size)


# ------------------------------------------------------- 2. the candidates
class _ModuleIndex:
    """Every module of ``root`` under every name it is registered under
    (``named_modules(remove_duplicate=False)``), in model order."""

    def __init__(self, root: nn.Module):
        self.modules: Dict[str, nn.Module] = dict(
            root.named_modules(remove_duplicate=False))
        self._names: Dict[int, List[str]] = {}
        for name, child in self.modules.items():
            self._names.setdefault(id(child), []).append(name)
        # The guide and generator convs of DRConv layers are theirs, not the
        # model's: converting twice must leave them alone.
        self._owner: Dict[str, str] = {}
        for name, child in self.modules.items():
            if isinstance(child, DRConv):
                for sub_name, _ in child.named_modules(
                        prefix=name, remove_duplicate=False):
                    if sub_name != name:
                        self._owner.setdefault(sub_name, name)

    def names_of(self, name: str) -> List[str]:
        """Every name of the module called ``name`` (itself included)."""
        return self._names[id(self.modules[name])]

    def owner(self, name: str) -> Optional[str]:
        """The DRConv that the module called ``name`` belongs to, if any
        (under any of its names)."""
        return next((self._owner[n] for n in self.names_of(name)
                     if n in self._owner), None)

    def distinct(self, names: List[str]) -> int:
        return len({id(self.modules[n]) for n in names})


# ----------------------------------------------------------- 3. selection
def _unconvertible(conv: nn.Module) -> Optional[str]:
    """Why ``conv`` as a module cannot become a DRConv, or None."""
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
    if parametrize.is_parametrized(conv):
        names = ', '.join(conv.parametrizations.keys())
        return (f'parametrized ({names}, torch.nn.utils.parametrize); '
                'DRConv would drop the parametrization')
    if type(conv) is not nn.Conv2d:
        return (f'{kind}: a subclass of nn.Conv2d whose forward may do more '
                'than a convolution; DRConv would drop it')
    extra = [n for n, _ in conv.named_parameters(recurse=False)
             if n not in ('weight', 'bias')]
    extra += [n for n, _ in conv.named_buffers(recurse=False)]
    extra += [n for n, _ in conv.named_children()]
    if extra or not isinstance(conv.weight, nn.Parameter):
        return (f'holds {", ".join(extra) or "a computed weight"} besides '
                'its weight and bias (a reparametrisation such as '
                'weight_norm or spectral_norm?); DRConv would drop it')
    return None


def _skip_reason(name: str, index: _ModuleIndex, exclude: Tuple[str, ...],
                 kernel_size: Optional[Tuple[int, int]]) -> Optional[str]:
    """Why the module called ``name`` is not converted, or None when it is.
    A shared module is one module: an exclude pattern matching any of its
    names keeps it under all of them."""
    for alias in index.names_of(name):
        pattern = next((p for p in exclude if fnmatchcase(alias, p)), None)
        if pattern is not None:
            same = f' (as {alias!r}, the same module)' if alias != name \
                else ''
            return f'excluded by {pattern!r}{same}'
    owner = index.owner(name)
    if owner is not None:
        return f'part of the DRConv {owner or "<the module itself>"!r}'
    conv = index.modules[name]
    reason = _unconvertible(conv)
    if reason is None and kernel_size is not None and \
            conv.kernel_size != kernel_size:
        reason = (f'kernel_size {conv.kernel_size} is not the requested '
                  f'kernel_size={kernel_size}')
    return reason


def _is_wildcard(pattern: str) -> bool:
    return any(c in pattern for c in '*?[')


def _listing(entries: List[Tuple[str, str]]) -> str:
    lines = [f'  {name or "<the module itself>"}: {reason}'
             for name, reason in entries[:_LISTED]]
    if len(entries) > _LISTED:
        lines.append(f'  ... ({len(entries)} in all)')
    return '\n'.join(lines)


def _suggestion(pattern: str, names) -> str:
    names = [n for n in names if n]
    close = difflib.get_close_matches(pattern, names, n=3, cutoff=0.6)
    if close:
        return f'; did you mean {", ".join(map(repr, close))}?'
    return (f'; names look like {", ".join(map(repr, names[:3]))} (dotted '
            'paths as in named_modules(); globs: *, ?, [seq])')


def _check_excludes_match(exclude: Tuple[str, ...],
                          index: _ModuleIndex) -> None:
    for pattern in exclude:
        if not any(fnmatchcase(n, pattern) for n in index.modules):
            raise ValueError(
                f'convert_to_drconv: exclude pattern {pattern!r} matches no '
                f'module name{_suggestion(pattern, index.modules)}')


def _select(pattern: str, index: _ModuleIndex, exclude: Tuple[str, ...],
            kernel_size: Optional[Tuple[int, int]]) -> List[str]:
    """The names of the convs that include ``pattern`` converts.

    Raises ValueError when it matches no name, converts nothing, or names
    (without wildcards) a module that is not a convertible conv; warns
    about convolutions a wildcard leaves unconverted.
    """
    matched = [n for n in index.modules if fnmatchcase(n, pattern)]
    if not matched:
        raise ValueError(
            f'convert_to_drconv: include pattern {pattern!r} matches no '
            f'module name{_suggestion(pattern, index.modules)}')
    converted, skipped, unconvertible_convs = [], [], []
    already_converted = False
    for name in matched:
        reason = _skip_reason(name, index, exclude, kernel_size)
        if reason is None:
            converted.append(name)
            continue
        skipped.append((name, reason))
        module = index.modules[name]
        already_converted |= isinstance(module, DRConv) or \
            index.owner(name) is not None
        if isinstance(module, nn.modules.conv._ConvNd) and \
                reason == _unconvertible(module):
            unconvertible_convs.append((name, reason))
    # Converting twice is harmless: a pattern whose convs are DRConv layers
    # already has nothing left to do.
    if converted or already_converted:
        if unconvertible_convs:
            warnings.warn(
                f'convert_to_drconv: include pattern {pattern!r} leaves '
                f'{len(unconvertible_convs)} convolution(s) unconverted:\n'
                f'{_listing(unconvertible_convs)}', stacklevel=4)
        return converted
    # Convolutions first: they are what the pattern most likely meant.
    skipped.sort(key=lambda entry: entry[1].endswith('not a convolution'))
    if _is_wildcard(pattern):
        raise ValueError(
            f'convert_to_drconv: include pattern {pattern!r} converts '
            f'nothing; it matches {index.distinct(matched)} module(s), none '
            f'convertible:\n{_listing(skipped)}')
    named = index.modules[pattern]
    hint = ''
    if not isinstance(named, nn.Conv2d) and any(
            isinstance(m, nn.Conv2d) for m in named.modules()):
        hint = (f'\nTo convert the convolutions inside it, use '
                f'{pattern + ".*"!r} (patterns match module names, not '
                'their children).')
    raise ValueError(
        f'convert_to_drconv: include pattern {pattern!r} names a module '
        f'that cannot be converted:\n{_listing(skipped)}{hint}')


def _plan(index: _ModuleIndex, include: Tuple[str, ...],
          exclude: Tuple[str, ...],
          kernel_size: Optional[Tuple[int, int]]) -> List[str]:
    _check_excludes_match(exclude, index)
    targets: List[str] = []
    for pattern in include:
        for name in _select(pattern, index, exclude, kernel_size):
            targets += [n for n in index.names_of(name) if n not in targets]
    return targets


def plan_conversion(module: nn.Module,
                    include: Patterns = ('*', ),
                    exclude: Patterns = (),
                    kernel_size: KernelSize = None) -> List[str]:
    """Names of the convs of ``module`` that ``convert_to_drconv`` would
    replace (every name of a shared conv); raises ValueError for patterns
    that are most likely mistakes.

    Rules: every include and exclude pattern must match some module name;
    every include pattern must select at least one convertible conv; a
    pattern without wildcards must name a convertible conv. A wildcard
    pattern skips what it cannot convert: other module types silently (a
    pattern like ``'backbone.*'`` matches norms and activations too),
    convolutions that cannot be converted with a warning. A conv registered
    under several names is matched by any of them and excluded by any of
    them. DRConv layers and the convs inside them (guides, generators) are
    never converted, so converting twice leaves the first conversion alone
    (a pattern matching only those converts nothing, without an error).
    """
    include, exclude, kernel_size = _check_options(include, exclude,
                                                   kernel_size, {})
    return _plan(_ModuleIndex(module), include, exclude, kernel_size)


# --------------------------------------------------------------- 4. build
def _keep_parameters(conv: nn.Conv2d, layer: DRConv, name: str) -> None:
    """The conv's own Parameter objects become the layer's (as
    ``nn.SyncBatchNorm.convert_sync_batchnorm`` does), so values,
    ``requires_grad`` and tensor hooks stay, and an optimizer that held
    them holds them still. The layer's new parameters are in no optimizer
    (see ``optimizer=`` of :func:`convert_to_drconv`).

    Rule for the new parameters (guide, generator; the weight too where the
    generator has none to share): frozen if every parameter of the conv
    was frozen, trainable otherwise.
    """
    frozen = not any(p.requires_grad for p in conv.parameters())
    for param in layer.parameters():
        param.requires_grad_(not frozen)
    if isinstance(layer, ModulatedDRConv):
        layer.weight = conv.weight
    elif frozen:
        warnings.warn(
            f'convert_to_drconv: {name or "the module"!r} was frozen; its '
            f'DRConv (generator={layer.generator!r}) has newly initialised '
            'filters, frozen too', stacklevel=4)
    if conv.bias is not None:
        layer.bias = conv.bias


def _carry_hooks(conv: nn.Module, layer: nn.Module) -> None:
    """The conv's hooks run on the layer, after the layer's own."""
    for table in _HOOK_TABLES:
        hooks = getattr(conv, table, None)
        if not hooks:
            continue
        entries = list(getattr(layer, table).items()) + list(hooks.items())
        hooks.clear()
        hooks.update(entries)
        setattr(layer, table, hooks)
    for hook in layer._load_state_dict_pre_hooks.values():
        # register_load_state_dict_pre_hook keeps a weak reference to its
        # module (torch 2.x's private _WrappedHook): point it at the layer.
        if getattr(hook, 'with_module', False) and \
                isinstance(getattr(hook, 'module', None), weakref.ref) and \
                hook.module() is conv:
            hook.module = weakref.ref(layer)
    if conv._is_full_backward_hook is not None:
        layer._is_full_backward_hook = conv._is_full_backward_hook


def _build(conv: nn.Conv2d, name: str, options: dict) -> DRConv:
    """A DRConv of ``conv``'s geometry that keeps the conv's parameters,
    device, dtype, training mode and hooks."""
    layer = DRConv(conv.in_channels, conv.out_channels, conv.kernel_size,
                   conv.stride, conv.padding, conv.dilation, conv.groups,
                   conv.bias is not None, padding_mode=conv.padding_mode,
                   device=conv.weight.device, dtype=conv.weight.dtype,
                   **options)
    _keep_parameters(conv, layer, name)
    layer.train(conv.training)
    _carry_hooks(conv, layer)
    return layer


def _replace(index: _ModuleIndex, name: str, layer: nn.Module) -> None:
    parent_name, _, attr = name.rpartition('.')
    setattr(index.modules[parent_name], attr, layer)


def _new_parameters(conv: nn.Conv2d, layer: DRConv) -> List[nn.Parameter]:
    kept = {id(p) for p in conv.parameters()}
    return [p for p in layer.parameters() if id(p) not in kept]


def _warn_dropped_weights(names: List[str], generator: str) -> None:
    if not names:
        return
    listed = ', '.join(map(repr, names[:_LISTED]))
    more = f', ... ({len(names)} in all)' if len(names) > _LISTED else ''
    warnings.warn(
        f'convert_to_drconv: generator={generator!r} makes new filters, so '
        f'the weights of {len(names)} converted conv(s) are not used and '
        f'their values (pretrained or trained) are dropped: {listed}{more}. '
        "generator='modulated' (the default) keeps them.",
        DroppedWeightsWarning, stacklevel=3)


def _held(optimizer) -> set:
    """The ids of the parameters ``optimizer`` holds."""
    return {id(p) for group in optimizer.param_groups
            for p in group['params']}


def _optimizer_groups(optimizer, convs: Dict[str, nn.Conv2d]
                      ) -> Dict[str, Optional[dict]]:
    """The param group of each conv's weight (else bias) in ``optimizer``,
    by conv name; None for a frozen conv in none. ValueError for a
    trainable conv in none (checked before anything is replaced)."""
    groups, untrained = {}, []
    for name, conv in convs.items():
        group = next((g for p in (conv.weight, conv.bias) if p is not None
                      for g in optimizer.param_groups
                      if any(q is p for q in g['params'])), None)
        if group is None and any(p.requires_grad for p in conv.parameters()):
            untrained.append(name or '<the module itself>')
        groups[name] = group
    if untrained:
        raise ValueError(
            f'convert_to_drconv: optimizer= holds no parameter of '
            f'{", ".join(map(repr, untrained[:_LISTED]))}, so there is no '
            'param group to add the new DRConv parameters to; pass the '
            'optimizer that trains these convs, or build the optimizer after '
            'converting')
    return groups


def _join_groups(optimizer, groups: Dict[str, Optional[dict]],
                 new: Dict[str, List[nn.Parameter]]) -> None:
    """Each layer's new parameters join the param group of its conv: they
    train with the conv's settings (lr, weight decay, ...), and learning
    rate schedulers made before the conversion set them too."""
    for name, group in groups.items():
        if group is None:  # a frozen conv: its new parameters are frozen
            continue
        held = _held(optimizer)
        group['params'].extend(p for p in new[name] if id(p) not in held)


class _TrainedCheck:
    """Stops a training that would silently not train converted layers.

    A post-step hook of every optimizer (torch's global one): when an
    optimizer that holds a converted conv's parameters steps twice, with
    no optimizer holding the layer's new parameters stepping in between,
    and those have gradients, it raises UntrainedParametersError naming the
    layers (an optimizer built before the conversion, without
    ``optimizer=``). It does nothing more once every layer's new parameters
    are held by an optimizer that stepped, and is removed when the model is
    gone; it holds the parameters by weak reference only.
    """

    def __init__(self, model: nn.Module,
                 layers: Dict[str, Tuple[list, list]]):
        # name -> (the conv's parameters, the layer's new ones), weakly;
        # frozen new parameters need no optimizer.
        self.pending = {
            name: ([weakref.ref(p) for p in old],
                   [weakref.ref(p) for p in new])
            for name, (old, new) in layers.items()
            if any(p.requires_grad for p in new)
        }
        self.suspect: Dict[str, weakref.ref] = {}
        if not self.pending:
            return
        self.handle = register_optimizer_step_post_hook(self)
        weakref.finalize(model, self.handle.remove)

    def __call__(self, optimizer, args, kwargs) -> None:
        if not self.pending:
            return
        untrained, held = [], _held(optimizer)
        for name, (old_refs, new_refs) in list(self.pending.items()):
            old = [p for p in (r() for r in old_refs) if p is not None]
            new = [p for p in (r() for r in new_refs) if p is not None]
            if not new or any(id(p) in held for p in new):
                del self.pending[name]  # trained (or gone)
                self.suspect.pop(name, None)
            elif any(id(p) in held for p in old) and \
                    any(p.grad is not None for p in new):
                previous = self.suspect.get(name)
                if previous is not None and previous() is optimizer:
                    untrained.append(name or '<the module itself>')
                self.suspect[name] = weakref.ref(optimizer)
        # Once every layer is trained the hook stays, inert, until the model
        # is gone: removing it here would change torch's dict of global hooks
        # while torch iterates over it ("OrderedDict mutated during
        # iteration" when another model's check comes next).
        if untrained:
            self.handle.remove()
            listed = ', '.join(map(repr, untrained[:_LISTED]))
            raise UntrainedParametersError(
                f'{type(optimizer).__name__} trains the parameters of the '
                f'convs converted to DRConv ({listed}), but no optimizer '
                "holds the DRConv layers' new parameters (guide, generator): "
                'they get gradients and never change. The optimizer was '
                'built before convert_to_drconv: pass it as '
                'convert_to_drconv(..., optimizer=optimizer), or build the '
                'optimizer after converting.')


def convert_to_drconv(module: nn.Module,
                      include: Patterns = ('*', ),
                      exclude: Patterns = (),
                      kernel_size: KernelSize = None,
                      *,
                      optimizer=None,
                      **drconv_options) -> nn.Module:
    """Replace matching ``nn.Conv2d`` layers of ``module`` by ``DRConv``.

    Like ``nn.SyncBatchNorm.convert_sync_batchnorm``: converts in place and
    returns the module (the new layer itself if ``module`` is a conv).
    Everything but the layer is kept: a conv registered under several names
    becomes one DRConv under all of them; the conv's own ``weight`` (with
    ``generator='modulated'``) and ``bias`` Parameters move to the DRConv
    (values, ``requires_grad``, device, dtype); the DRConv's new parameters
    are frozen exactly when the whole conv was; the conv's training mode and
    its forward (pre-)hooks, backward hooks and state-dict hooks carry over.
    Converting twice is harmless: DRConv layers are left as they are.

    The DRConv's new parameters (guide, generator) exist only from now on:
    an optimizer built before does not hold them. Convert before building
    the optimizer, or pass it as ``optimizer=``; otherwise the first
    optimizer steps that train the converted convs raise
    :class:`UntrainedParametersError` (new parameters with gradients that
    no optimizer changes).

    Args:
        include / exclude: glob patterns over dotted module names (as in
            ``named_modules()``, e.g. ``'backbone.layer4.*.conv2'``); a conv
            is converted when one of its names matches an include and none
            matches an exclude pattern. The conv inside an mmcv
            ``ConvModule`` is named ``'...conv'``. A pattern that matches
            nothing, converts nothing, or names (without wildcards) a module
            that is not a convertible conv raises ValueError listing what it
            matched and why each was skipped; see :func:`plan_conversion`.
        kernel_size: convert only convs with this kernel size (e.g. 1 for the
            pointwise convs of efficient networks).
        optimizer: a ``torch.optim.Optimizer`` (or an mmengine OptimWrapper)
            built over ``module`` already: each DRConv's new parameters join
            the param group of its conv's weight (else bias), so they train
            with its settings (lr, weight decay, ...), also under learning
            rate schedulers built before. A trainable conv that is in none
            of its groups is an error (nothing changes).
        **drconv_options: passed to ``DRConv`` (``region_num``,
            ``generator``, ...). With ``generator='modulated'`` the DRConv
            uses the conv's weight and bias, so the converted model computes
            the same function at start and keeps the state-dict keys. With
            ``'mixture'`` or ``'paper'`` the filters are new and the conv's
            weight is dropped (a :class:`DroppedWeightsWarning` names the
            convs).

    Returns:
        The converted module.
    """
    include, exclude, kernel_size = _check_options(include, exclude,
                                                   kernel_size,
                                                   drconv_options)
    index = _ModuleIndex(module)
    targets = _plan(index, include, exclude, kernel_size)
    convs: Dict[str, nn.Conv2d] = {}  # first name -> conv
    for name in targets:
        if index.names_of(name)[0] == name:  # once per shared conv
            convs[name] = index.modules[name]
    groups = _optimizer_groups(optimizer, convs) \
        if optimizer is not None else None
    layers: Dict[str, DRConv] = {}
    for name, conv in convs.items():  # (a loop: warnings' stacklevel)
        layers[name] = _build(conv, name, drconv_options)
    new = {name: _new_parameters(convs[name], layer)
           for name, layer in layers.items()}
    if drconv_options.get('generator', 'modulated') != 'modulated':
        _warn_dropped_weights(list(convs), drconv_options['generator'])
    if '' in targets:  # module is the conv itself
        root = layers['']
    else:
        root = module
        by_conv = {id(conv): layers[name] for name, conv in convs.items()}
        for name in targets:
            _replace(index, name, by_conv[id(index.modules[name])])
    if groups is not None:
        _join_groups(optimizer, groups, new)
    if layers:
        _TrainedCheck(root, {name: (list(conv.parameters()), new[name])
                             for name, conv in convs.items()})
    return root
