# Standard-convolution twin of the pspnet DRConv config.
_base_ = [
    'mmseg::pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    '../_base_/mmdrconv.py'
]
