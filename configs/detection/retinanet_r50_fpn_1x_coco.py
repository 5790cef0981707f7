# Standard-convolution twin of the retinanet DRConv configs.
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/mmdrconv.py'
]
