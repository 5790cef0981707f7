# Demo preset (make demo): the detection task (RetinaNet, FPN from C3) and
# DeepLabV3 of the full preset, the default DRConv and the official code's
# per-region filters ('mixture') against the standard twin, with both
# controls (c3-c5's 3x3 convs as 1x1, and removed), three seeds, the full
# preset's data and budgets. Cells run two at a time, one thread each
# (`make demo` passes --jobs $(nproc)), measured 1.2-1.6x faster than one
# cell on two threads. Measured wall time and what the run can detect:
# docs/suite.md ("The v6 demo").
_base_ = './full.py'
_variants = ('standard', 'drconv', 'drconv_mixture', 'control_1x1',
             'control_skip')
suite = dict(
    name='demo',
    seeds=[0, 1, 2],
    tasks=[
        dict(task, variants={k: task['variants'][k] for k in _variants})
        for task in _base_.suite.tasks
        if task['name'] in ('coco-detection', 'cityscapes-semantic')
    ])
