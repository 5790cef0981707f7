# Demo preset (make demo): both tasks, standard vs DRConv, two seeds, a budget
# that reaches clearly non-trivial accuracy on the generated val splits.
# About 15 minutes on 2 cores after install (see README for measured numbers).
suite = dict(
    name='demo',
    seeds=[0, 1],
    datasets=dict(
        coco=dict(kind='coco', generate=True,
                  root='data/synthetic/coco', num_train=300, num_val=60,
                  seed=0),
        cityscapes=dict(kind='cityscapes', generate=True,
                        root='data/synthetic/cityscapes', num_train=150,
                        num_val=40, seed=0)),
    tasks=[
        dict(name='coco-instance', dataset='coco',
             metrics=['coco/bbox_mAP', 'coco/segm_mAP'], max_iters=400,
             image_size=(128, 128),
             variants=dict(
                 standard='configs/synthetic/mask-rcnn_r50-w16_fpn_synthetic-coco.py',  # noqa
                 drconv='configs/synthetic/mask-rcnn_r50-w16-drconv-c3-c5_fpn_synthetic-coco.py')),  # noqa
        dict(name='cityscapes-semantic', dataset='cityscapes',
             metrics=['mIoU'], max_iters=300, image_size=(128, 256),
             variants=dict(
                 standard='configs/synthetic/deeplabv3_r50-w16-d8_synthetic-cityscapes.py',  # noqa
                 drconv='configs/synthetic/deeplabv3_r50-w16-d8-drconv-c3-c5_synthetic-cityscapes.py')),  # noqa
    ],
    profile=dict(repeat=10))
