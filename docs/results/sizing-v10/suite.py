# Sizing pilot of suite v10 (docs/suite.md, "Sizing v10"): the small-object
# data of Sizing v9 (sides 10-30% of the image, at most 5 objects) at a
# budget between the two it measured. At 3000 iterations both controls were
# behind by 11-16% but the twin still climbed (+4% over the last quarter);
# at 6000 the twin settled and the controls were behind by only 1-5%. Is
# there a budget in between where the twin is on a plateau and both
# controls stay clearly behind? 4500 iterations, the twin, the default
# DRConv and both controls, seeds 0 and 1.
# Run: python tools/suite.py docs/results/sizing-v10/suite.py --jobs 2
_retinanet = 'configs/synthetic/retinanet_r50-w16{}_fpn_synthetic-coco.py'
_slots = dict(standard='', drconv='-drconv-c3-c5',
              control_1x1='-1x1-c3-c5', control_skip='-skip-c3-c5')

suite = dict(
    name='sizing-v10',
    seeds=[0, 1],
    datasets=dict(
        coco_small=dict(kind='coco', generate=True,
                        root='data/synthetic/coco-v9-small-128',
                        num_train=1000, num_val=300, image_size=(128, 128),
                        appearance_cue=0.0, max_objects=5,
                        object_size=(0.1, 0.3), seed=0)),
    tasks=[
        dict(name='retinanet-small-4500', dataset='coco_small',
             metrics=['coco/bbox_mAP'], max_iters=4500, evaluations=4,
             image_size=(128, 128),
             cfg_options={'optim_wrapper.optimizer.lr': 1e-3},
             variants={k: _retinanet.format(v) for k, v in _slots.items()})
    ],
    profile=dict(repeat=5))
