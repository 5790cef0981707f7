# Standard-convolution twin of the deeplabv3 DRConv config.
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    '../_base_/mmdrconv.py'
]
