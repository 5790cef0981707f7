# An efficient detector: RetinaNet on a MobileNetV2 backbone (C3-C5 taken
# at strides 8/16/32). Standard-convolution twin of
# retinanet_mobilenetv2-drconv_fpn_1x_coco.py. (mmdet 3.3.0's SSDLite cannot
# run inference: SSDHead lacks the loss_cls its shared predict code reads.)
_base_ = './retinanet_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        out_indices=(2, 4, 6),
        act_cfg=dict(type='ReLU6'),
        norm_cfg=dict(type='BN', requires_grad=True)),
    neck=dict(in_channels=[32, 96, 320], start_level=0))
