"""mmdrconv: Dynamic Region-Aware Convolution for PyTorch and OpenMMLab.

The core (``region_conv``, ``region_scale``, ``DRConv``,
``convert_to_drconv``: the subpackage ``core``) needs torch alone, and
importing it loads nothing of OpenMMLab. Wherever OpenMMLab is installed,
``import mmdrconv`` also registers DRConv with it in any import order, as
importing an mmdet project does: at once if mmengine is already imported, otherwise the moment anything
imports mmengine later (mmcv, mmdet, mmseg, a tool, a config's
``custom_imports``). Registration is ``mmdrconv.openmmlab``: DRConv in
mmengine's root registry, so in every scope (none, mmdet, mmseg), and the
checkpoint-loading policy.
"""
from .core import (DRConv, convert_to_drconv, naive_region_conv, region_conv,
                   region_scale)
from ._openmmlab_hook import register_when_openmmlab_loads

__version__ = '0.1.0'
__all__ = [
    'DRConv', 'region_conv', 'region_scale', 'naive_region_conv',
    'convert_to_drconv'
]

register_when_openmmlab_loads()
