"""The torch-only core of mmdrconv: everything here imports and runs with
torch alone, with or without OpenMMLab installed.

- ``ops``: the ``region_conv`` / ``region_scale`` autograd ops (PyTorch and
  Triton kernels), the region rule, the naive reference, export forms;
- ``layers``: the ``DRConv`` layer and its filter generators;
- ``converter``: ``convert_to_drconv`` for any model;
- ``timing`` and ``complexity``: the measuring harness of the benchmarks
  (interleaved timing rounds, params and multiply-adds).

The rest of the package is the OpenMMLab side (configs, tools, suite); its
adapter is ``mmdrconv.openmmlab``.
"""
from .converter import convert_to_drconv
from .layers import DRConv
from .ops import naive_region_conv, region_conv, region_scale

__all__ = [
    'DRConv', 'region_conv', 'region_scale', 'naive_region_conv',
    'convert_to_drconv'
]
