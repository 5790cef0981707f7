# Any model, no code edits: ConvertToDRConv builds the inner model and swaps
# the convs whose module names match (here the 3x3 convs of stage c5). The
# result is the inner model itself, so unchanged layers keep their
# checkpoint keys.
_base_ = './faster-rcnn_r50_fpn_1x_coco.py'
model = dict(
    _delete_=True,
    type='ConvertToDRConv',
    model=_base_.model,
    include=['backbone.layer4.*.conv2'],
    drconv=dict(region_num=8))
