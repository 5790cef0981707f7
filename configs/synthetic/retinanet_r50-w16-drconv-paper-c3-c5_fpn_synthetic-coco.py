# DRConv with the paper's filter generator (pooled input -> per-region
# filters), same slot as the default generator's config.
_base_ = './retinanet_r50-w16-drconv-c3-c5_fpn_synthetic-coco.py'
model = dict(backbone=dict(dcn=dict(generator='paper')))
