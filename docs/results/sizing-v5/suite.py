# Sizing pilots of suite v5 (docs/suite.md, "Sizing v5"): can the RetinaNet
# detection task reach a plateau, and a small MDE, at a budget a 30-minute
# demo affords? The demo at AdamW 2e-3 / 1000 iterations left the twin
# climbing (+0.019 over the last quarter) with a median MDE of 21% of the
# twin (docs/results/demo-v4). Here, on the demo's data and seeds: twice and
# half its learning rate at its budget (twice: the twin alone, which fell
# far behind), and twice its budget at its learning rate and at half; the
# twin, the default DRConv and the 1x1 control (the gate).
# Run: python tools/suite.py docs/results/sizing-v5/suite.py --jobs 2
_retinanet = 'configs/synthetic/retinanet_r50-w16{}_fpn_synthetic-coco.py'
_slots = dict(standard='', drconv='-drconv-c3-c5', control_1x1='-1x1-c3-c5')
_variants = {k: _retinanet.format(v) for k, v in _slots.items()}
_all = tuple(_slots)
_budgets = [(1000, 4e-3, ('standard', )), (1000, 1e-3, _all),
            (2000, 2e-3, _all), (2000, 1e-3, _all)]


suite = dict(
    name='sizing-v5',
    seeds=[0, 1, 2],
    datasets=dict(
        coco=dict(kind='coco', generate=True,
                  root='data/synthetic/coco-v4-128', num_train=1000,
                  num_val=300, image_size=(128, 128), appearance_cue=0.0,
                  seed=0)),
    tasks=[
        dict(name=f'retinanet-{iters}-lr{lr:g}', dataset='coco',
             metrics=['coco/bbox_mAP'], max_iters=iters, evaluations=4,
             image_size=(128, 128),
             cfg_options={'optim_wrapper.optimizer.lr': lr},
             variants={k: _variants[k] for k in names})
        for iters, lr, names in _budgets
    ],
    profile=dict(repeat=5))
