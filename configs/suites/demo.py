# Demo preset (make demo): both ResNet tasks of the full preset (Mask R-CNN on
# the generated COCO-format shapes, DeepLabV3 on the Cityscapes-format
# scenes), the default DRConv, the official code's per-region filters
# ('mixture') and the control (c3-c5's 3x3 convs as 1x1) against the
# standard twin, three seeds. Same data, configs and seeds 0-2 as the full
# preset, on a smaller budget (40 iterations): sized
# from the per-cell times measured on an idle 2-core machine for at most
# 20 minutes after set-up (docs/suite.md).
_base_ = './full.py'
_tasks = ('coco-instance', 'cityscapes-semantic')
_variants = ('standard', 'drconv', 'drconv_mixture', 'control_1x1')
suite = dict(
    name='demo',
    seeds=[0, 1, 2],
    tasks=[
        dict(task, max_iters=40,
             variants={k: task['variants'][k] for k in _variants})
        for task in _base_.suite.tasks if task['name'] in _tasks
    ])
