# Sizing pilot of suite v8 (docs/suite.md, "Sizing v8"): denser scenes for
# the detection task. At the demo's budget (3000 iterations) the RetinaNet
# twin still climbs (+0.027 over the last quarter); at 6000 it reaches a
# plateau but both controls nearly catch up (Sizing v7). Up to 12 objects
# per image instead of 5 (more occlusion, more boxes per step): does the
# task stay hard without c3-c5's 3x3 convs while the twin settles? The demo's
# task otherwise (AdamW 1e-3, 3000 iterations), the twin and both controls
# (the gate), seeds 0 and 1.
# Run: python tools/suite.py docs/results/sizing-v8/suite.py --jobs 2
_retinanet = 'configs/synthetic/retinanet_r50-w16{}_fpn_synthetic-coco.py'
_slots = dict(standard='', control_1x1='-1x1-c3-c5',
              control_skip='-skip-c3-c5')

suite = dict(
    name='sizing-v8',
    seeds=[0, 1],
    datasets=dict(
        coco=dict(kind='coco', generate=True,
                  root='data/synthetic/coco-v8-dense-128', num_train=1000,
                  num_val=300, image_size=(128, 128), appearance_cue=0.0,
                  max_objects=12, seed=0)),
    tasks=[
        dict(name='retinanet-dense-3000', dataset='coco',
             metrics=['coco/bbox_mAP'], max_iters=3000, evaluations=4,
             image_size=(128, 128),
             cfg_options={'optim_wrapper.optimizer.lr': 1e-3},
             variants={k: _retinanet.format(v) for k, v in _slots.items()})
    ],
    profile=dict(repeat=5))
