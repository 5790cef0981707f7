# DRConv with per-region filters as the official code builds them (each
# region's kernel a routed mixture of shared bases), same slot as the
# default generator's config.
_base_ = './retinanet_r50-w16-drconv-c3-c5_fpn_synthetic-coco.py'
model = dict(backbone=dict(dcn=dict(generator='mixture')))
