# The paper's setting for efficient networks: DRConv in the 1x1 (pointwise)
# convs of MobileNetV2; depthwise convs stay standard.
_base_ = './retinanet_mobilenetv2_fpn_1x_coco.py'
model = dict(
    backbone=dict(type='DRConvMobileNetV2', drconv=dict(region_num=8)))
