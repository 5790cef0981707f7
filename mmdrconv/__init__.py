"""mmdrconv: Dynamic Region-Aware Convolution for OpenMMLab.

Importing the package registers everything it provides (layers, the
config-level converter, backbones) and applies the compatibility fixes in
``mmdrconv.compat``.
"""
from . import compat  # noqa: F401  (patches before anything loads weights)
from .atomic_save import patch_atomic_checkpoint_saving
from .converter import convert_to_drconv
from .layers import DRConv
from .ops import naive_region_conv, region_conv
from . import registry  # noqa: F401

patch_atomic_checkpoint_saving()

__version__ = '0.1.0'
__all__ = ['DRConv', 'region_conv', 'naive_region_conv', 'convert_to_drconv']
