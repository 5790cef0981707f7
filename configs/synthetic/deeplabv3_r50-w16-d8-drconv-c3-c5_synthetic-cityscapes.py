# DRConv in the (dilated) 3x3 convs of stages c3-c5, through the dcn slot.
_base_ = './deeplabv3_r50-w16-d8_synthetic-cityscapes.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DRConv', region_num=8),
        stage_with_dcn=(False, True, True, True)))
