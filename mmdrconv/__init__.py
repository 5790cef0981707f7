"""mmdrconv: Dynamic Region-Aware Convolution for PyTorch and OpenMMLab.

The core (``region_conv``, ``region_scale``, ``DRConv``,
``convert_to_drconv``) needs torch alone. When OpenMMLab is in use (mmengine
already imported, as under a config's ``custom_imports`` or any tool), this
import also loads the adapter ``mmdrconv.openmmlab``, which registers
DRConv in the OpenMMLab registries and applies the checkpoint-loading
policy; ``import mmdrconv.openmmlab`` does so explicitly in any order.
"""
import sys

from .converter import convert_to_drconv
from .layers import DRConv
from .ops import naive_region_conv, region_conv, region_scale

if 'mmengine' in sys.modules:
    from . import openmmlab  # noqa: F401

__version__ = '0.1.0'
__all__ = [
    'DRConv', 'region_conv', 'region_scale', 'naive_region_conv',
    'convert_to_drconv'
]
