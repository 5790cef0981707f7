_base_ = './pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DRConv', region_num=8),
        stage_with_dcn=(False, True, True, True)))
