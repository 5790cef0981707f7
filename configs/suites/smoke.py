# Smoke preset (what the tests run): every task and variant of the full
# preset and the MobileNetV2 task it holds out, one seed, a few iterations
# on tiny generated data. Checks the machinery, not accuracy.
_base_ = './full.py'
# After 2 iterations RetinaNet's scores are still at their prior (0.01),
# under the 0.05 threshold: keep every box so that COCO evaluation has
# detections to score (it reports no metric at all for none).
_keep_every_box = {'model.test_cfg.score_thr': 0.0}
suite = dict(
    name='smoke',
    seeds=[0],
    datasets=dict(
        coco=dict(root='data/synthetic/coco-smoke', num_train=8, num_val=4),
        cityscapes=dict(root='data/synthetic/cityscapes-smoke', num_train=8,
                        num_val=4)),
    tasks=[
        dict(task, max_iters=2,
             cfg_options=_keep_every_box if task['name'] == 'coco-detection'
             else {})
        for task in _base_.suite.tasks + [_base_.mobilenetv2_task]
    ],
    profile=dict(repeat=1))
