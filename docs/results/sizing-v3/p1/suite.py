# Sizing pilot p1 of suite v3 (docs/suite.md, "Sizing v3"): the standard
# twin and the control, one seed, 8 evaluations. Run as
#   .venv/bin/python tools/suite.py docs/results/sizing-v3/p1/suite.py \
#       --work-dir work_dirs/p1 --jobs 2 --skip-profile
# (then from /tmp/sz/p1.py, with the same contents over the full preset of
# that time; every option that differs from today's full preset is set here).
_base_ = '../../../../configs/suites/full.py'
_keep = ('standard', 'control_1x1')
suite = dict(
    name='p1', seeds=[0],
    datasets=dict(
        coco=dict(root='data/synthetic/coco-p1', num_train=1000, num_val=150,
                  appearance_cue=1.0),
        cityscapes=dict(root='data/synthetic/cityscapes-p1', num_train=600,
                        num_val=150, image_size=(64, 128),
                        appearance_cue=1.0)),
    tasks=[dict(t, max_iters=400 if t['name'].startswith('coco') else 400,
                evaluations=8, image_size=t['image_size'],
                variants={k: t['variants'][k] for k in _keep})
           for t in _base_.suite.tasks
           if t['name'] != 'cityscapes-mobilenetv2'],
    profile=dict(repeat=1))
