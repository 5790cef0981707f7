# Demo preset (make demo): both generated-data tasks (Mask R-CNN on the
# COCO-format shapes, DeepLabV3 on the Cityscapes-format scenes), the default
# DRConv and the official code's per-region filters against the standard
# twin, three seeds. Same data, models and variants' configs as the full
# preset, on a smaller budget sized for at most 20 minutes on 2 cores after
# set-up (measured per-iteration times in docs/suite.md).
_base_ = './full.py'
_variants = ('standard', 'drconv', 'drconv_mixture')
_budget = {'coco-instance': 400, 'cityscapes-semantic': 300}
suite = dict(
    name='demo',
    seeds=[0, 1, 2],
    tasks=[
        dict(task, max_iters=_budget[task['name']],
             variants={k: task['variants'][k] for k in _variants})
        for task in _base_.suite.tasks if task['name'] in _budget
    ])
