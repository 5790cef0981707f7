# The efficient-network task: DeepLabV3 on a MobileNetV2-D8 backbone (as
# mmseg's mobilenet_v2/mobilenet-v2-d8_deeplabv3 config) for the generated
# Cityscapes-format scenes, trained from scratch with the same head, data
# and schedule as the ResNet twin beside it. Standard-convolution twin of the
# -drconv configs.
_base_ = './deeplabv3_r50-w16-d8_synthetic-cityscapes.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        widen_factor=1.,
        strides=(1, 2, 2, 1, 1, 1, 1),
        dilations=(1, 1, 1, 2, 2, 4, 4),
        out_indices=(1, 2, 4, 6),
        norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(in_channels=320),
    auxiliary_head=dict(in_channels=96))
