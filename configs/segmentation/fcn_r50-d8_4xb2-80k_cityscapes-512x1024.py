# Standard-convolution twin of the FCN DRConv-head config.
_base_ = [
    'mmseg::fcn/fcn_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    '../_base_/mmdrconv.py'
]
