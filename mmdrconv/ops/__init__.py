from .mask import straight_through_mask
from .naive import naive_region_conv
from .region_conv_op import region_conv
from .region_scale_op import region_scale

__all__ = [
    'region_conv', 'region_scale', 'naive_region_conv',
    'straight_through_mask'
]
