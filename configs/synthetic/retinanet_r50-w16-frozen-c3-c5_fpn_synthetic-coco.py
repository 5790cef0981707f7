# Control: the standard twin with the 3x3 convs of stages c3-c5 frozen at
# their initialisation (FrozenConv through the dcn slot); every parameter
# keeps its twin's name and shape. It must come out behind the twin.
_base_ = './retinanet_r50-w16_fpn_synthetic-coco.py'
model = dict(
    backbone=dict(
        dcn=dict(type='FrozenConv'),
        stage_with_dcn=(False, True, True, True)))
