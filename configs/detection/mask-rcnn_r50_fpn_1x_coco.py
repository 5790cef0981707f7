# Standard-convolution twin of the mask-rcnn DRConv configs.
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/mmdrconv.py'
]
