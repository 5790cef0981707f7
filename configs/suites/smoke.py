# Smoke preset (what the tests run): every task and variant of the full
# preset, one seed, a few iterations on tiny generated data. Checks the
# machinery, not accuracy.
_base_ = './full.py'
suite = dict(
    name='smoke',
    seeds=[0],
    datasets=dict(
        coco=dict(root='data/synthetic/coco-smoke', num_train=8, num_val=4),
        cityscapes=dict(root='data/synthetic/cityscapes-smoke', num_train=8,
                        num_val=4)),
    tasks=[dict(task, max_iters=2) for task in _base_.suite.tasks],
    profile=dict(repeat=1))
