# DRConv in the 4 stacked 3x3 convs of both RetinaNet head branches.
_base_ = './retinanet_r50_fpn_1x_coco.py'
model = dict(bbox_head=dict(conv_cfg=dict(type='DRConv', region_num=8)))
