# Control: the standard twin with the 3x3 convs of stages c3-c5 as 1x1
# (PointwiseConv through the dcn slot DRConv uses), a layer of known harm.
# It must come out behind the twin.
_base_ = './retinanet_r50-w16_fpn_synthetic-coco.py'
model = dict(
    backbone=dict(
        dcn=dict(type='PointwiseConv'),
        stage_with_dcn=(False, True, True, True)))
