# DRConv with the paper's filter generator in the slot of the default
# generator's config. Heavy at full width: m^2 x C x O parameters per layer
# (16.8 M for each 512-channel c5 conv; 78.9 M over c3-c5 against 23.5 M for
# the whole ResNet-50, counted by building the backbone).
_base_ = './mask-rcnn_r50-drconv-c3-c5_fpn_1x_coco.py'
model = dict(backbone=dict(dcn=dict(generator='paper')))
