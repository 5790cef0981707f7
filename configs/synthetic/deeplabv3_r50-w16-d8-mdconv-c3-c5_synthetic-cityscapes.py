# DCNv2 (mmcv's ModulatedDeformConv2dPack) in the (dilated) 3x3 convs of
# stages c3-c5, in the slot the DRConv configs use.
_base_ = './deeplabv3_r50-w16-d8_synthetic-cityscapes.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)))
