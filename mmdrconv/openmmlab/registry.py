"""Registration in OpenMMLab 2.x's root MODELS registry.

mmdet's and mmseg's registries are children of mmengine's root, so one
registration serves every default scope (mmdet, mmseg, or none).
``force=True`` makes re-registration (e.g. importing the package through
custom_imports after a direct import, or a reload) harmless.
"""
from fnmatch import fnmatchcase

import torch
from mmengine.registry import MODELS

from ..core.converter import convert_to_drconv
from ..core.layers import DRConv

MODELS.register_module('DRConv', module=DRConv, force=True)
MODELS.register_module('DRConv2d', module=DRConv, force=True)


def build_converted(model: dict,
                    include=('*', ),
                    exclude=(),
                    kernel_size=None,
                    drconv: dict = None):
    """Config-level converter: build ``model`` and convert its convs.

    Returns the built model itself (not a wrapper), so state-dict keys of
    unchanged layers match the unconverted model's checkpoints::

        model = dict(type='ConvertToDRConv', model=_base_.model,
                     include=['backbone.layer4.*.conv2'],
                     drconv=dict(region_num=8))
    """
    built = MODELS.build(model)
    return convert_to_drconv(built, include, exclude, kernel_size,
                             **(drconv or {}))


MODELS.register_module('ConvertToDRConv', module=build_converted, force=True)


def build_drconv_mobilenet_v2(**kwargs):
    """MobileNetV2 of the current scope with DRConv in its 1x1 convs.

    The paper puts DRConv in the pointwise convs of efficient networks;
    depthwise convs stay standard. ``drconv`` holds DRConv options.
    """
    drconv = kwargs.pop('drconv', None) or dict(region_num=8)
    return build_converted(dict(type='MobileNetV2', **kwargs),
                           kernel_size=1, drconv=drconv)


MODELS.register_module('DRConvMobileNetV2', module=build_drconv_mobilenet_v2,
                       force=True)


class PointwiseConv(torch.nn.Conv2d):
    """A 1x1 convolution built where a k x k one is asked for: the suite's
    control, a layer of known harm (it sees no neighbours). Channels,
    groups and stride are kept, so the output has the requested shape
    (padding and dilation only served the k x k window) and the state-dict
    keys stay those of the conv it replaces; only the weight's shape
    changes. Through ResNet's ``dcn`` slot:
    ``dcn=dict(type='PointwiseConv')``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size=1,
                 stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, 1, stride, 0, 1, groups,
                         bias)

    @classmethod
    def like(cls, conv: torch.nn.Conv2d) -> 'PointwiseConv':
        return cls(conv.in_channels, conv.out_channels, stride=conv.stride,
                   groups=conv.groups, bias=conv.bias is not None)


MODELS.register_module('PointwiseConv', module=PointwiseConv, force=True)


class FrozenConv(torch.nn.Conv2d):
    """A convolution whose weight stays at its initialisation: the suite's
    control of known harm whose every parameter has its twin's name and
    shape, so it starts from exactly the twin's weights (common random
    numbers) and a paired difference measures the lost learning alone.
    The weight stays a parameter (state-dict key and init unchanged) that
    asks for no gradient; optimizers skip it. Through ResNet's ``dcn``
    slot: ``dcn=dict(type='FrozenConv')``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight.requires_grad_(False)

    def _apply(self, fn, *args, **kwargs):
        # .to() / .cuda() / .half() rebuild parameters; keep them frozen.
        out = super()._apply(fn, *args, **kwargs)
        self.weight.requires_grad_(False)
        return out


MODELS.register_module('FrozenConv', module=FrozenConv, force=True)


def convs_as_pointwise(module: torch.nn.Module, include) -> torch.nn.Module:
    """Replace every k x k (k > 1) ``nn.Conv2d`` of ``module`` whose name
    matches a glob pattern of ``include`` by a :class:`PointwiseConv`, in
    place. A pattern that replaces nothing raises ValueError."""
    include = (include, ) if isinstance(include, str) else tuple(include)
    if not include:
        raise ValueError('convs_as_pointwise: include is empty')
    named = dict(module.named_modules())
    for pattern in include:
        names = [n for n, m in named.items() if fnmatchcase(n, pattern)
                 and type(m) is torch.nn.Conv2d and m.kernel_size != (1, 1)]
        if not names:
            raise ValueError(
                f'convs_as_pointwise: pattern {pattern!r} matches no k x k '
                f'nn.Conv2d (k > 1); names look like '
                f'{[n for n in named if n][:3]}')
        for name in names:
            parent, _, attr = name.rpartition('.')
            setattr(module.get_submodule(parent), attr,
                    PointwiseConv.like(named[name]))
    return module


def build_with_pointwise_convs(module: dict, include):
    """Config-level :func:`convs_as_pointwise`: build ``module`` (e.g. a
    backbone) and make the matching k x k convs 1x1; the built module
    itself is returned, so its state-dict keys are the original's::

        backbone=dict(type='WithPointwiseConvs', module=<backbone cfg>,
                      include=['layer3.*.conv.1.conv'])
    """
    return convs_as_pointwise(MODELS.build(module), include)


MODELS.register_module('WithPointwiseConvs',
                       module=build_with_pointwise_convs, force=True)
