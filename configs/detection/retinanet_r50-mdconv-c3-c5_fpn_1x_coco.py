# DCNv2 (mmcv's ModulatedDeformConv2dPack) in the 3x3 convs of stages c3-c5,
# as mmdet's dcnv2 configs put it in Faster / Mask R-CNN: the established
# dynamic-convolution peer of the RetinaNet DRConv configs.
_base_ = './retinanet_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)))
