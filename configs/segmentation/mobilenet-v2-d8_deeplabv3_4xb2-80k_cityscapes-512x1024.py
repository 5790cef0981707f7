# Standard-convolution twin of the MobileNetV2 DRConv config.
_base_ = [
    'mmseg::mobilenet_v2/mobilenet-v2-d8_deeplabv3_4xb2-80k_cityscapes-512x1024.py',  # noqa
    '../_base_/mmdrconv.py'
]
