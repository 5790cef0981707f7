# DRConv in the 3x3 conv of every bottleneck of stages c3-c5, through
# ResNet's dcn slot (as mmdet's faster-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py
# does for DCN). The default 'modulated' generator keeps nn.Conv2d's weight
# key, so the ImageNet-pretrained conv2 weights load into the DRConv layers.
_base_ = './faster-rcnn_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DRConv', region_num=8),
        stage_with_dcn=(False, True, True, True)))
