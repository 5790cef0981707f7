# DRConv with the official code's per-region filters in MobileNetV2's 1x1
# convs; depthwise convs stay standard.
_base_ = './mobilenet-v2-d8-drconv_deeplabv3_4xb2-80k_cityscapes-512x1024.py'
model = dict(backbone=dict(drconv=dict(generator='mixture')))
