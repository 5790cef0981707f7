# DRConv with the paper's filter generator in the slot of the default
# generator's config. Heavy at full width: m^2 x C x O parameters per layer
# (16.8 M for each 512-channel c5 conv, ~80 M over c3-c5).
_base_ = './mask-rcnn_r50-drconv-c3-c5_fpn_1x_coco.py'
model = dict(backbone=dict(dcn=dict(generator='paper')))
