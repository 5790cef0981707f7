# DRConv with per-region filters as the official code builds them (routed
# mixtures of shared bases), in the slot of the default generator's config.
# Its layers have no `weight`, so the ImageNet conv2 weights of c3-c5 do not
# load into them (they start from their own initialisation).
_base_ = './retinanet_r50-drconv-c3-c5_fpn_1x_coco.py'
model = dict(backbone=dict(dcn=dict(generator='mixture')))
