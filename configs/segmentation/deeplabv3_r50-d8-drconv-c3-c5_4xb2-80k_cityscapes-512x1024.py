# DRConv in the (dilated, in c4-c5) 3x3 convs of stages c3-c5 of ResNetV1c.
_base_ = './deeplabv3_r50-d8_4xb2-80k_cityscapes-512x1024.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DRConv', region_num=8),
        stage_with_dcn=(False, True, True, True)))
