# Sizing pilot p2 of suite v3 (docs/suite.md, "Sizing v3"): pilot p1 with
# the class told by shape or layout alone (appearance_cue=0) and DeepLabV3
# at 600 iterations. Run as
#   .venv/bin/python tools/suite.py docs/results/sizing-v3/p2/suite.py \
#       --work-dir work_dirs/p2 --jobs 2 --skip-profile
# (then from a copy in /tmp with the same contents).
_base_ = '../p1/suite.py'
suite = dict(
    name='p2',
    datasets=dict(
        coco=dict(root='data/synthetic/coco-p2', num_val=100,
                  appearance_cue=0.0),
        cityscapes=dict(root='data/synthetic/cityscapes-p2',
                        appearance_cue=0.0)),
    tasks=[dict(t, max_iters=600) if t['name'].startswith('cityscapes')
           else t for t in _base_.suite.tasks])
