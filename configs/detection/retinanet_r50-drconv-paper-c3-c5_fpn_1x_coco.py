# DRConv with the paper's filter generator (pooled input -> per-region
# filters) in the slot of the default generator's config. Its layers have
# no `weight`, so the ImageNet conv2 weights of c3-c5 do not load into them.
_base_ = './retinanet_r50-drconv-c3-c5_fpn_1x_coco.py'
model = dict(backbone=dict(dcn=dict(generator='paper')))
