"""Registration in OpenMMLab 2.x's root MODELS registry.

mmdet's and mmseg's registries are children of mmengine's root, so one
registration serves every default scope (mmdet, mmseg, or none).
``force=True`` makes re-registration (e.g. importing the package through
custom_imports after a direct import, or a reload) harmless.
"""
from mmengine.registry import MODELS

from ..converter import convert_to_drconv
from ..layers import DRConv

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
