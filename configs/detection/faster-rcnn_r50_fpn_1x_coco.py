# Standard-convolution twin of faster-rcnn_r50-drconv-c3-c5_fpn_1x_coco.py.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    '../_base_/mmdrconv.py'
]
