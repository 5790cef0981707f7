# Control: the standard twin without the 3x3 convs of stages c3-c5
# (SkipConv through the dcn slot: each block keeps its 1x1 path and the
# shortcut), the strongest layer of known harm. It must come out behind.
_base_ = './retinanet_r50-w16_fpn_synthetic-coco.py'
model = dict(
    backbone=dict(
        dcn=dict(type='SkipConv'),
        stage_with_dcn=(False, True, True, True)))
