_base_ = './retinanet_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DRConv', region_num=8),
        stage_with_dcn=(False, True, True, True)))
