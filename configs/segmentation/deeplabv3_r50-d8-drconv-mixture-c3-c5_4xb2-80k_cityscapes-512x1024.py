# DRConv with per-region filters as the official code builds them, in the
# slot of the default generator's config (ImageNet conv2 weights of c3-c5 do
# not load into these layers).
_base_ = './deeplabv3_r50-d8-drconv-c3-c5_4xb2-80k_cityscapes-512x1024.py'
model = dict(backbone=dict(dcn=dict(generator='mixture')))
