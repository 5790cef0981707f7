# DRConv in the decode head's 3x3 convs (and its concat-input conv).
_base_ = './fcn_r50-d8_4xb2-80k_cityscapes-512x1024.py'
model = dict(decode_head=dict(conv_cfg=dict(type='DRConv', region_num=8)))
