# DRConv (default generator) in the 3x3 convs of stages c3-c5, through
# ResNet's dcn slot.
_base_ = './retinanet_r50-w16_fpn_synthetic-coco.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DRConv', region_num=8),
        stage_with_dcn=(False, True, True, True)))
