# DCNv2 (mmcv's ModulatedDeformConv2dPack) in the 3x3 convs of stages c3-c5:
# mmdet's dcnv2/mask-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.py on this project's
# stack, the established dynamic-convolution peer of the DRConv configs.
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)))
