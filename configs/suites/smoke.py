# Smoke preset (what the tests run): the demo's tasks and models with one
# seed, a few iterations on tiny generated data. Checks the machinery, not
# accuracy. About a minute on 2 cores.
_base_ = './demo.py'
suite = dict(
    name='smoke',
    seeds=[0],
    datasets=dict(
        coco=dict(root='data/synthetic/coco-smoke', num_train=16, num_val=8),
        cityscapes=dict(root='data/synthetic/cityscapes-smoke', num_train=8,
                        num_val=4)),
    tasks=[dict(task, max_iters=4) for task in _base_.suite.tasks],
    profile=dict(repeat=2))
