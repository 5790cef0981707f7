# DCNv2 (mmcv's ModulatedDeformConv2dPack) in the 3x3 convs of c3-c5, as
# mmdet's *_r50-mdconv-c3-c5_* configs.
_base_ = './retinanet_r50-w16_fpn_synthetic-coco.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)))
