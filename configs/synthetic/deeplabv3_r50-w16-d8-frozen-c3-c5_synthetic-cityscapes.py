# Control: the standard twin with the 3x3 convs of stages c3-c5 frozen at
# their initialisation (FrozenConv through the dcn slot DRConv uses). Every
# parameter keeps its twin's name and shape, so within a seed it starts
# from exactly the twin's weights; it must come out behind the twin.
_base_ = './deeplabv3_r50-w16-d8_synthetic-cityscapes.py'
model = dict(
    backbone=dict(
        dcn=dict(type='FrozenConv'),
        stage_with_dcn=(False, True, True, True)))
