# DRConv with the paper's filter generator, same slot as the default
# generator's config.
_base_ = './deeplabv3_r50-w16-d8-drconv-c3-c5_synthetic-cityscapes.py'
model = dict(backbone=dict(dcn=dict(generator='paper')))
