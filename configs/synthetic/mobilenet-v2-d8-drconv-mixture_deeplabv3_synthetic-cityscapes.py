# DRConv with the official code's per-region filters in MobileNetV2's 1x1
# convs.
_base_ = './mobilenet-v2-d8-drconv_deeplabv3_synthetic-cityscapes.py'
model = dict(backbone=dict(drconv=dict(generator='mixture')))
