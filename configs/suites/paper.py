# Paper preset: the real COCO and Cityscapes configs of configs/, each DRConv
# model beside its standard-convolution twin, with every variant of the full
# preset (DRConv's 'mixture' and 'paper' generators, DCNv2 through the same
# dcn slot) on its real-data config, on multi-GPU machines through
# torchrun. Needs data/coco (COCO 2017) and data/cityscapes (with
# *_labelTrainIds.png from cityscapesscripts); missing data is reported per
# cell with the expected layout. Run: python tools/suite.py
# configs/suites/paper.py  (set distributed.gpus / task gpus to your machine).
_det = 'configs/detection/'
_seg = 'configs/segmentation/'
suite = dict(
    name='paper',
    seeds=[0],
    datasets=dict(
        coco=dict(kind='coco', root='data/coco'),
        cityscapes=dict(kind='cityscapes', root='data/cityscapes')),
    distributed=dict(type='torchrun', gpus=8),
    tasks=[
        dict(name='coco-faster-rcnn', dataset='coco',
             metrics=['coco/bbox_mAP'], image_size=(800, 1344),
             variants=dict(
                 standard=_det + 'faster-rcnn_r50_fpn_1x_coco.py',
                 drconv=_det + 'faster-rcnn_r50-drconv-c3-c5_fpn_1x_coco.py')),
        dict(name='coco-mask-rcnn', dataset='coco',
             metrics=['coco/bbox_mAP', 'coco/segm_mAP'],
             image_size=(800, 1344),
             variants=dict(
                 standard=_det + 'mask-rcnn_r50_fpn_1x_coco.py',
                 drconv=_det + 'mask-rcnn_r50-drconv-c3-c5_fpn_1x_coco.py',
                 drconv_mixture=_det + 'mask-rcnn_r50-drconv-mixture-c3-c5_fpn_1x_coco.py',  # noqa
                 drconv_paper=_det + 'mask-rcnn_r50-drconv-paper-c3-c5_fpn_1x_coco.py',  # noqa
                 dcnv2=_det + 'mask-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.py',
                 drconv_heads=_det + 'mask-rcnn_r50_fpn-drconv-heads_1x_coco.py')),  # noqa
        dict(name='coco-retinanet', dataset='coco',
             metrics=['coco/bbox_mAP'], image_size=(800, 1344),
             variants=dict(
                 standard=_det + 'retinanet_r50_fpn_1x_coco.py',
                 drconv=_det + 'retinanet_r50-drconv-c3-c5_fpn_1x_coco.py',
                 drconv_mixture=_det + 'retinanet_r50-drconv-mixture-c3-c5_fpn_1x_coco.py',  # noqa
                 drconv_paper=_det + 'retinanet_r50-drconv-paper-c3-c5_fpn_1x_coco.py',  # noqa
                 dcnv2=_det + 'retinanet_r50-mdconv-c3-c5_fpn_1x_coco.py',
                 drconv_head=_det + 'retinanet_r50_fpn-drconv-head_1x_coco.py')),  # noqa
        dict(name='coco-retinanet-mobilenetv2', dataset='coco',
             metrics=['coco/bbox_mAP'], image_size=(800, 1344),
             variants=dict(
                 standard=_det + 'retinanet_mobilenetv2_fpn_1x_coco.py',
                 drconv=_det + 'retinanet_mobilenetv2-drconv_fpn_1x_coco.py')),
        dict(name='cityscapes-deeplabv3', dataset='cityscapes',
             metrics=['mIoU'], image_size=(512, 1024), gpus=4,
             variants=dict(
                 standard=_seg + 'deeplabv3_r50-d8_4xb2-80k_cityscapes-512x1024.py',  # noqa
                 drconv=_seg + 'deeplabv3_r50-d8-drconv-c3-c5_4xb2-80k_cityscapes-512x1024.py',  # noqa
                 drconv_mixture=_seg + 'deeplabv3_r50-d8-drconv-mixture-c3-c5_4xb2-80k_cityscapes-512x1024.py',  # noqa
                 drconv_paper=_seg + 'deeplabv3_r50-d8-drconv-paper-c3-c5_4xb2-80k_cityscapes-512x1024.py',  # noqa
                 dcnv2=_seg + 'deeplabv3_r50-d8-mdconv-c3-c5_4xb2-80k_cityscapes-512x1024.py')),  # noqa
        dict(name='cityscapes-pspnet', dataset='cityscapes',
             metrics=['mIoU'], image_size=(512, 1024), gpus=4,
             variants=dict(
                 standard=_seg + 'pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py',  # noqa
                 drconv=_seg + 'pspnet_r50-d8-drconv-c3-c5_4xb2-80k_cityscapes-512x1024.py')),  # noqa
        dict(name='cityscapes-fcn', dataset='cityscapes',
             metrics=['mIoU'], image_size=(512, 1024), gpus=4,
             variants=dict(
                 standard=_seg + 'fcn_r50-d8_4xb2-80k_cityscapes-512x1024.py',
                 drconv_head=_seg + 'fcn-drconv-head_r50-d8_4xb2-80k_cityscapes-512x1024.py')),  # noqa
        dict(name='cityscapes-mobilenetv2-deeplabv3', dataset='cityscapes',
             metrics=['mIoU'], image_size=(512, 1024), gpus=4,
             variants=dict(
                 standard=_seg + 'mobilenet-v2-d8_deeplabv3_4xb2-80k_cityscapes-512x1024.py',  # noqa
                 drconv=_seg + 'mobilenet-v2-d8-drconv_deeplabv3_4xb2-80k_cityscapes-512x1024.py',  # noqa
                 drconv_mixture=_seg + 'mobilenet-v2-d8-drconv-mixture_deeplabv3_4xb2-80k_cityscapes-512x1024.py')),  # noqa
    ],
    profile=dict(repeat=3))
