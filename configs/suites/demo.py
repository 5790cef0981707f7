# Demo preset (make demo): the detection task (RetinaNet, FPN from C3) and
# DeepLabV3 of the full preset, the default DRConv and the official code's
# per-region filters ('mixture') against the standard twin, with both
# controls (c3-c5's 3x3 convs as 1x1, and removed), the full preset's data
# and budgets. Three seeds, then one more per round to a task whose median
# relative MDE is above 8%, up to 5 (until_mde: what --until-mde 0.08
# --max-seeds 5 does; --fixed-seeds runs the three alone). Cells run two at
# a time, one thread each (`make demo` passes --jobs $(nproc)), measured
# 1.2-1.6x faster than one cell on two threads. Measured wall time and what
# the run can detect: docs/suite.md ("The v7 demo").
_base_ = './full.py'
_variants = ('standard', 'drconv', 'drconv_mixture', 'control_1x1',
             'control_skip')
suite = dict(
    name='demo',
    seeds=[0, 1, 2],
    until_mde=dict(target=0.08, max_seeds=5),
    tasks=[
        dict(task, variants={k: task['variants'][k] for k in _variants})
        for task in _base_.suite.tasks
        if task['name'] in ('coco-detection', 'cityscapes-semantic')
    ])
