# Demo preset (make demo): both ResNet tasks of the full preset (Mask R-CNN on
# the generated COCO-format shapes, DeepLabV3 on the Cityscapes-format
# scenes), the default DRConv and the official code's per-region filters
# ('mixture') against the standard twin, with each task's controls, three
# seeds, the full preset's data and budgets (400 / 600 iterations, sized
# from measured learning curves). Mask R-CNN has two controls: c3-c5's 3x3
# convs as 1x1, and frozen at their initialisation (every weight shared
# with the twin); DeepLabV3 the 1x1 one. Cells run two at a time, one
# thread each (`make demo` passes --jobs $(nproc)), measured 1.2-1.6x
# faster than one cell on two threads. Measured wall time and what the run
# can detect: docs/suite.md.
_base_ = './full.py'
_variants = {
    'coco-instance': ('standard', 'drconv', 'drconv_mixture', 'control_1x1',
                      'control_frozen'),
    'cityscapes-semantic': ('standard', 'drconv', 'drconv_mixture',
                            'control_1x1'),
}
suite = dict(
    name='demo',
    seeds=[0, 1, 2],
    tasks=[
        dict(task, variants={k: task['variants'][k]
                             for k in _variants[task['name']]})
        for task in _base_.suite.tasks if task['name'] in _variants
    ])
