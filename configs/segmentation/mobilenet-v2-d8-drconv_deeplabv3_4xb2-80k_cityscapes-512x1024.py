# DRConv in the pointwise convs of MobileNetV2, as the paper does for
# efficient networks; depthwise convs stay standard.
_base_ = './mobilenet-v2-d8_deeplabv3_4xb2-80k_cityscapes-512x1024.py'
model = dict(
    backbone=dict(type='DRConvMobileNetV2', drconv=dict(region_num=8)))
