# DCNv2 (mmcv's ModulatedDeformConv2dPack) in the 3x3 convs of stages c3-c5,
# as mmdet's dcnv2/mask-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.py: the established
# dynamic convolution, in the slot the DRConv configs use.
_base_ = './mask-rcnn_r50-w16_fpn_synthetic-coco.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)))
