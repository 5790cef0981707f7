# Sizing pilot p3 of suite v3 (docs/suite.md, "Sizing v3"): Mask R-CNN only,
# the twin and the control on the demo's COCO data (appearance_cue=0.5) with
# 3x the validation images (300) and 1.5x the demo's budget (600
# iterations), three seeds, 6 evaluations. Run as
#   .venv/bin/python tools/suite.py docs/results/sizing-v3/p3/suite.py \
#       --work-dir work_dirs/p3 --jobs 2 --skip-profile
_base_ = '../../../../configs/suites/full.py'
_keep = ('standard', 'control_1x1')
suite = dict(
    name='p3', seeds=[0, 1, 2],
    datasets=dict(coco=dict(root='data/synthetic/coco-p3', num_val=300)),
    tasks=[dict(t, max_iters=600, evaluations=6,
                variants={k: t['variants'][k] for k in _keep})
           for t in _base_.suite.tasks if t['name'] == 'coco-instance'],
    profile=dict(repeat=1))
