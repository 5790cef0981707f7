# Control: the standard twin without the (dilated) 3x3 convs of stages
# c3-c5 (SkipConv through the dcn slot: each block keeps its 1x1 path and
# the shortcut), the strongest layer of known harm. It must come out behind.
_base_ = './deeplabv3_r50-w16-d8_synthetic-cityscapes.py'
model = dict(
    backbone=dict(
        dcn=dict(type='SkipConv'),
        stage_with_dcn=(False, True, True, True)))
