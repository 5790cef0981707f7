"""The DRConv operators; torch alone."""
from .naive import naive_region_conv
from .region_conv_op import RegionConvFunction, region_conv
from .region_scale_op import (PackedRegionScaleFunction, RegionScaleFunction,
                              packed_region_scale, region_scale)
from .regions import region_index, straight_through_mask

__all__ = [
    'region_conv', 'region_scale', 'packed_region_scale', 'naive_region_conv',
    'RegionConvFunction', 'RegionScaleFunction', 'PackedRegionScaleFunction',
    'region_index', 'straight_through_mask'
]
