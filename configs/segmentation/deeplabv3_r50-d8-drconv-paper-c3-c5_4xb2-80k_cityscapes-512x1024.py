# DRConv with the paper's filter generator in the slot of the default
# generator's config (78.9 M generator parameters over c3-c5 at full width,
# against 23.5 M for the whole ResNet-50).
_base_ = './deeplabv3_r50-d8-drconv-c3-c5_4xb2-80k_cityscapes-512x1024.py'
model = dict(backbone=dict(dcn=dict(generator='paper')))
