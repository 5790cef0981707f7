"""Registration in OpenMMLab 2.x's root MODELS registry.

mmdet's and mmseg's registries are children of mmengine's root, so one
registration serves every default scope (mmdet, mmseg, or none).
``force=True`` makes re-registration (e.g. importing the package through
custom_imports after a direct import, or a reload) harmless.
"""
import warnings

from mmengine.registry import MODELS

from ..core.converter import DroppedWeightsWarning, convert_to_drconv
from ..core.layers import DRConv
from ..core.layers.controls import (FrozenConv, PointwiseConv, SkipConv,
                                    convs_as_pointwise)

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
    with warnings.catch_warnings():
        # A model just built has no trained weights to drop (pretrained ones
        # load later, and mmengine's loader names the keys it cannot use).
        warnings.simplefilter('ignore', DroppedWeightsWarning)
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


for _control in (PointwiseConv, FrozenConv, SkipConv):
    MODELS.register_module(_control.__name__, module=_control, force=True)


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
