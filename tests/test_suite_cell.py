"""A suite cell (mmdrconv/suite/cell.py, hooks.py, pairing.py): paired
cells start from the twin's weights and data; evaluations along training
give the validation curve."""
import json
import os.path as osp
import statistics

import pytest
import torch

from helpers import RESNET_WEAKENED, SYN

def _first_step(monkeypatch, config, work_dir, data_root, seed, twin=None):
    """A suite cell (``mmdrconv.cli.suite_cell.main``) stopped at its first
    training step: the model's state then, the batch's inputs, and the
    pairing report."""
    from mmengine.hooks import Hook

    from mmdrconv.runner import build_runner
    from mmdrconv.cli import suite_cell
    from mmdrconv.suite import cell as cell_module
    from mmdrconv.suite.hooks import PAIRING_INFO
    seen = {}

    class Stop(Exception):
        pass

    class Capture(Hook):
        priority = 'LOWEST'

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            seen.update(state={k: v.clone()
                               for k, v in runner.model.state_dict().items()},
                        inputs=[x.clone() for x in data_batch['inputs']],
                        pairing=runner.message_hub.get_info(PAIRING_INFO))
            raise Stop

    def train(cfg):
        runner = build_runner(cfg)
        runner.register_hook(Capture())
        runner.train()

    monkeypatch.setattr(cell_module, 'train_and_evaluate', train)
    args = [config, work_dir, osp.join(work_dir, 'cell_result.json'),
            '--seed', str(seed), '--max-iters', '2', '--data-root',
            data_root] + (['--paired-with', twin] if twin else [])
    with pytest.raises(Stop):
        suite_cell.main(args)
    return seen


def test_paired_cells_start_from_the_twins_weights_and_data(
        tmp_path, monkeypatch, synthetic_data):
    from mmdrconv.suite.pairing import twin_initial_state
    standard = osp.join(SYN, 'mask-rcnn_r50-w16_fpn_synthetic-coco.py')
    drconv = osp.join(SYN, 'mask-rcnn_r50-w16-drconv-c3-c5_fpn_synthetic-'
                      'coco.py')
    data = str(synthetic_data / 'coco')
    twin = _first_step(monkeypatch, standard, str(tmp_path / 'standard'),
                       data, 3, standard)
    variant = _first_step(monkeypatch, drconv, str(tmp_path / 'drconv'), data,
                          3, standard)
    mine, theirs = variant['state'], twin['state']
    shared = [k for k in mine
              if k in theirs and mine[k].shape == theirs[k].shape]
    for key in shared:
        assert torch.equal(mine[key], theirs[key]), key
    for part in ('backbone.conv1.', 'backbone.layer1.', 'backbone.layer4.',
                 'neck.', 'rpn_head.', 'roi_head.bbox_head.',
                 'roi_head.mask_head.'):
        assert any(k.startswith(part) for k in shared), part
    # DRConv's modulated kernel has the conv's name and shape: shared too.
    assert 'backbone.layer3.0.conv2.weight' in shared
    # What is not shared is DRConv's own (guides, scales) in c3-c5's conv2.
    not_shared = set(mine) - set(shared)
    assert not_shared and {k.rsplit('.', 1)[0].split('.conv2')[0] + '.conv2'
                           for k in not_shared} == RESNET_WEAKENED
    pairing = variant['pairing']
    assert (pairing['shared'], pairing['not_shared']) == (len(shared),
                                                          len(not_shared))
    assert pairing['twin'] == standard and pairing['seed'] == 3
    assert twin['pairing']['not_shared'] == 0
    assert twin['pairing']['shared'] == len(theirs)
    # Common random numbers: the same images, in the same order, with the
    # same augmentation (flips), in both cells.
    assert len(twin['pairing']['first_batch']) == 4
    assert variant['pairing']['first_batch'] == \
        twin['pairing']['first_batch']
    assert all(torch.equal(a, b)
               for a, b in zip(variant['inputs'], twin['inputs']))
    # Without the pairing the layers after c3-c5 would start elsewhere: the
    # extra DRConv parameters shift the random stream of the neck's init.
    key = 'neck.fpn_convs.0.conv.weight'
    alone = twin_initial_state(drconv, 3)
    assert not torch.equal(alone[key], theirs[key])


def test_evaluations_give_a_curve_ending_at_the_last_iteration(tmp_path):
    """set_evaluations on mmengine's own loop: 4 evaluations over 10
    iterations at 3, 6, 9 and 10, each recorded with its metrics."""
    from mmengine.config import Config
    from mmengine.evaluator import BaseMetric
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    from mmdrconv.suite.cell import set_evaluations
    from mmdrconv.suite.hooks import SuiteResultHook

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, inputs, mode='tensor'):
            x = torch.stack(inputs)
            if mode == 'loss':
                return dict(loss=((x - self.w)**2).mean())
            return [self.w.detach().clone() for _ in inputs]

    class Distance(BaseMetric):
        def process(self, data_batch, data_samples):
            self.results += [float(w) for w in data_samples]

        def compute_metrics(self, results):
            return dict(w=statistics.fmean(results))

    data = [dict(inputs=torch.ones(1))] * 4
    cfg = Config(dict(train_cfg=dict(type='IterBasedTrainLoop', max_iters=10,
                                     val_interval=10)))
    set_evaluations(cfg, 4)
    assert cfg.train_cfg.val_interval == 3
    loader = dict(dataset=data, batch_size=2, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=False))
    out = str(tmp_path / 'cell_result.json')
    runner = Runner(
        model=Toy(), work_dir=str(tmp_path), train_dataloader=loader,
        val_dataloader=loader, val_cfg=dict(), val_evaluator=[Distance()],
        train_cfg=cfg.train_cfg,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        custom_hooks=[SuiteResultHook(out)], default_hooks=dict(
            checkpoint=None), default_scope=None)
    runner.train()
    with open(out) as f:
        result = json.load(f)
    curve = result['curve']
    assert [p['iter'] for p in curve] == [3, 6, 9, 10]
    # w after k SGD steps towards 1 at lr 0.1: 1 - 0.8 ** k
    for point in curve:
        assert point['metrics']['w'] == pytest.approx(
            1 - 0.8**point['iter'], rel=1e-5)
    assert result['metrics'] == curve[-1]['metrics']
    with pytest.raises(ValueError, match='evaluations must be a positive'):
        set_evaluations(cfg, 0)
    with pytest.raises(ValueError, match='IterBasedTrainLoop or '
                       'EpochBasedTrainLoop'):
        set_evaluations(Config(dict(train_cfg=dict(type='X'))), 4)
    from mmdrconv.suite.spec import Task
    with pytest.raises(ValueError, match='task toy: evaluations must be a '
                       'positive int'):
        Task(name='toy', dataset='d', metrics=['acc'],
             variants=dict(standard='a.py'), evaluations=0)
