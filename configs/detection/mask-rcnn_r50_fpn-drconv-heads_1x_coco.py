# DRConv in the neck and the mask head (through conv_cfg): the FPN's lateral
# and output convs and the FCN mask head's four 3x3 convs. The mask head
# sees per-RoI batches, including empty ones.
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'
drconv = dict(type='DRConv', region_num=8)
model = dict(
    neck=dict(conv_cfg=drconv),
    roi_head=dict(mask_head=dict(conv_cfg=drconv)))
