# Sizing pilot of suite v7 (docs/suite.md, "Sizing v7"): does the RetinaNet
# twin reach a plateau by the check at twice the demo's budget? With four
# seeds the v7 demo's median MDE fell to 6.4%, and the twin's last-quarter
# gain at 3000 iterations (+0.027, 5.2% of its value) is above half of it.
# Here: the demo's task (AdamW 1e-3) over 6000 iterations, the twin and both
# controls (the gate), seeds 0 and 1.
# Run: python tools/suite.py docs/results/sizing-v7/suite.py --jobs 2
_retinanet = 'configs/synthetic/retinanet_r50-w16{}_fpn_synthetic-coco.py'
_slots = dict(standard='', control_1x1='-1x1-c3-c5',
              control_skip='-skip-c3-c5')

suite = dict(
    name='sizing-v7',
    seeds=[0, 1],
    datasets=dict(
        coco=dict(kind='coco', generate=True,
                  root='data/synthetic/coco-v4-128', num_train=1000,
                  num_val=300, image_size=(128, 128), appearance_cue=0.0,
                  seed=0)),
    tasks=[
        dict(name='retinanet-6000-lr0.001', dataset='coco',
             metrics=['coco/bbox_mAP'], max_iters=6000, evaluations=4,
             image_size=(128, 128),
             cfg_options={'optim_wrapper.optimizer.lr': 1e-3},
             variants={k: _retinanet.format(v) for k, v in _slots.items()})
    ],
    profile=dict(repeat=5))
