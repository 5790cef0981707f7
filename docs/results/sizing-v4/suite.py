# Sizing pilots of suite v4 (docs/suite.md, "Suite v4"): the RetinaNet
# detection task at two image sizes, and DeepLabV3 with the new control
# (c3-c5 without their 3x3 convs), two seeds each: the gate a task passes
# before its seeds are spent is each control behind on every seed.
# Run: python tools/suite.py docs/results/sizing-v4/suite.py --jobs 2
_syn = 'configs/synthetic/'
_retinanet = _syn + 'retinanet_r50-w16{}_fpn_synthetic-coco.py'
_deeplab = _syn + 'deeplabv3_r50-w16-d8{}_synthetic-cityscapes.py'
_slots = dict(standard='', control_1x1='-1x1-c3-c5',
              control_skip='-skip-c3-c5')
suite = dict(
    name='sizing-v4',
    seeds=[0, 1],
    datasets=dict(
        coco128=dict(kind='coco', generate=True,
                     root='data/synthetic/coco-v4-128', num_train=1000,
                     num_val=300, image_size=(128, 128), appearance_cue=0.0,
                     seed=0),
        coco96=dict(kind='coco', generate=True,
                    root='data/synthetic/coco-v4-96', num_train=1000,
                    num_val=300, image_size=(96, 96), appearance_cue=0.0,
                    seed=0),
        cityscapes=dict(kind='cityscapes', generate=True,
                        root='data/synthetic/cityscapes-v3', num_train=600,
                        num_val=150, image_size=(64, 128),
                        appearance_cue=0.0, seed=0)),
    tasks=[
        dict(name='retinanet-128', dataset='coco128',
             metrics=['coco/bbox_mAP'], max_iters=1600, evaluations=4,
             image_size=(128, 128),
             variants={k: _retinanet.format(v) for k, v in _slots.items()}),
        # Anchors scaled with the image: octave base 3 (24-38 px on P3).
        dict(name='retinanet-96', dataset='coco96',
             metrics=['coco/bbox_mAP'], max_iters=1600, evaluations=4,
             image_size=(96, 96),
             cfg_options={
                 'model.bbox_head.anchor_generator.octave_base_scale': 3},
             variants={k: _retinanet.format(v) for k, v in _slots.items()}),
        dict(name='deeplabv3', dataset='cityscapes', metrics=['mIoU'],
             max_iters=600, evaluations=4, image_size=(64, 128),
             variants={k: _deeplab.format(v) for k, v in _slots.items()}),
    ],
    profile=dict(repeat=5))
