# DRConv (default generator) in every 1x1 conv of MobileNetV2's blocks, as
# the official ShuffleNetV2 code puts it in the 1x1 convs; the depthwise 3x3
# convs stay standard.
_base_ = './mobilenet-v2-d8_deeplabv3_synthetic-cityscapes.py'
model = dict(
    backbone=dict(type='DRConvMobileNetV2', drconv=dict(region_num=8)))
