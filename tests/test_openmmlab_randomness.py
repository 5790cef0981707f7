"""Random states in checkpoints (mmdrconv/openmmlab/randomness.py): a resumed
run is the run it continues, bit for bit on the CPU. (Through tools/train.py
for a segmentor and a detector: tests/test_tools.py.)"""
import json
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmdrconv.openmmlab.checkpoint import load_from_local
from mmdrconv.openmmlab.randomness import random_states, set_random_states

from helpers import DET, REPO, SEG


def draws():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(),
            [random.random() for _ in range(3)], np.random.randn(),
            random.gauss(0, 1))


def test_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    np.random.randn()  # a cached gaussian is part of numpy's state
    random.gauss(0, 1)  # and of Python's
    states = random_states()
    expected = draws()
    torch.save(dict(random_states=[states]), tmp_path / 'c.pth')
    # Loaded as every checkpoint is: weights only, the allowlist unchanged.
    loaded = load_from_local(str(tmp_path / 'c.pth'))['random_states'][0]
    draws()  # move every generator on
    set_random_states(loaded)
    assert draws() == expected


def cell(*args, interrupt_at=None):
    command = ['-m', 'mmdrconv.cli.suite_cell', *map(str, args)]
    if interrupt_at is not None:
        command = ['tests/interrupt.py', str(interrupt_at), *command]
    result = subprocess.run([sys.executable, *command], cwd=REPO,
                            capture_output=True, text=True, timeout=900)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize('config, data', [(SEG, 'cityscapes'),
                                          (DET, 'coco')])
def test_a_resumed_suite_cell_is_the_cell_uninterrupted(config, data,
                                                         tmp_path,
                                                         synthetic_data):
    # As the suite runs a cell, killed (SIGKILL) after its checkpoint of
    # iteration 2 of 4 and resumed with --resume, against the same cell
    # run through (which validates at iteration 2, after that checkpoint):
    # a segmentor (dropout, random resize / crop / flip) and a detector
    # (RPN and RoI sampling, flip).
    options = ['--seed', 3, '--max-iters', 4, '--evaluations', 2,
               '--data-root', synthetic_data / data,
               '--cfg-options', 'train_dataloader.batch_size=2']
    runs = {}
    for name in ('whole', 'resumed'):
        work_dir = tmp_path / name
        args = [config, work_dir, work_dir / 'result.json', *options]
        if name == 'resumed':
            code, log = cell(*args, interrupt_at=2)
            assert code != 0 and 'Saving checkpoint at 2 iterations' in log
            assert not (work_dir / 'result.json').exists()
            args.append('--resume')
        code, log = cell(*args)
        assert code == 0, log[-3000:]
        with open(work_dir / 'result.json') as f:
            runs[name] = json.load(f)
        runs[name]['weights'] = load_from_local(
            str(work_dir / 'iter_4.pth'))['state_dict']
    assert 'resumed epoch: 0, iter: 2' in log
    whole, resumed = runs['whole'], runs['resumed']
    assert resumed['metrics'] == whole['metrics']
    # The evaluation of iteration 2 (after its checkpoint, so killed before
    # it ran) is redone on resuming: the curve has every point.
    assert [p['iter'] for p in whole['curve']] == [2, 4]
    assert resumed['curve'] == whole['curve']
    differ = [k for k, v in whole['weights'].items()
              if not torch.equal(v, resumed['weights'][k])]
    assert not differ, f'{len(differ)} tensors differ, e.g. {differ[:3]}'


# --- the hook in a small runner: both loops, validation, load_from -------

def toy_runner(work_dir, by_epoch, max_length, resume_from=None,
               load_from=None):
    """A Runner whose every step draws random numbers: augmentation in the
    dataset (numpy, random, torch; main process), dropout in the model; a
    validation every 2 iterations / epochs."""
    from mmengine.evaluator import BaseMetric
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from torch.utils.data import Dataset

    from mmdrconv.openmmlab.randomness import RandomStateHook

    class Augmented(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            noise = np.random.rand() + random.random() + torch.rand(1)
            return dict(inputs=torch.full((4, ), float(index)) + noise)

    class Model(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 4)
            self.dropout = torch.nn.Dropout(0.5)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            y = self.linear(self.dropout(inputs))
            if mode == 'loss':
                return dict(loss=y.pow(2).mean())
            return [dict(value=v) for v in y.sum(1)]

    class Mean(BaseMetric):
        def process(self, data_batch, data_samples):
            self.results += [float(s['value']) for s in data_samples]

        def compute_metrics(self, results):
            return dict(mean=sum(results) / len(results))

    torch.manual_seed(0)  # the model's initial weights
    loader = dict(dataset=Augmented(), batch_size=2,
                  sampler=dict(type='DefaultSampler', shuffle=True),
                  collate_fn=dict(type='default_collate'))
    loop = dict(by_epoch=True, max_epochs=max_length, val_interval=2) \
        if by_epoch else dict(by_epoch=False, max_iters=max_length,
                              val_interval=2)
    return Runner(
        model=Model(), work_dir=str(work_dir), train_dataloader=loader,
        val_dataloader=dict(loader, sampler=dict(type='DefaultSampler',
                                                 shuffle=False)),
        val_evaluator=[Mean()], val_cfg=dict(), train_cfg=loop,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=by_epoch, interval=1)),
        custom_hooks=[RandomStateHook()], randomness=dict(seed=5),
        resume=resume_from is not None,
        load_from=resume_from or load_from)


def test_resume_equals_the_uninterrupted_run_in_both_loops(tmp_path):
    for by_epoch, unit in ((False, 'iter'), (True, 'epoch')):
        whole = toy_runner(tmp_path / f'{unit}_whole', by_epoch, 5)
        whole.train()
        # "Interrupted" after 2 (an evaluation follows that checkpoint in
        # the run through, not in the resumed one), resumed to 5.
        toy_runner(tmp_path / f'{unit}_part', by_epoch, 2).train()
        resumed = toy_runner(tmp_path / f'{unit}_resumed', by_epoch, 5,
                             resume_from=str(tmp_path / f'{unit}_part' /
                                             f'{unit}_2.pth'))
        resumed.train()
        for name, value in whole.model.state_dict().items():
            assert torch.equal(value, resumed.model.state_dict()[name]), \
                (unit, name)


def test_load_from_starts_a_new_run_with_the_seed(tmp_path):
    # Weights from a checkpoint (load_from, no resume): a new run, whose
    # random numbers come from its own seed, not from the checkpoint.
    toy_runner(tmp_path / 'first', False, 2).train()
    weights = str(tmp_path / 'first' / 'iter_2.pth')
    runs = []
    for i in range(2):  # (a Runner seeds when built: build, then train)
        runs.append(toy_runner(tmp_path / f'new{i}', False, 1,
                               load_from=weights))
        runs[-1].train()
    fresh = toy_runner(tmp_path / 'fresh', False, 1)
    fresh.load_checkpoint(weights)  # same weights, the seed's numbers
    fresh.train()
    for name, value in runs[0].model.state_dict().items():
        assert torch.equal(value, runs[1].model.state_dict()[name])
        assert torch.equal(value, fresh.model.state_dict()[name])


def test_resuming_a_checkpoint_without_random_states_says_so(
        tmp_path, monkeypatch):
    from mmdrconv.openmmlab import randomness
    toy_runner(tmp_path / 'part', False, 2).train()
    old = tmp_path / 'old.pth'
    checkpoint = load_from_local(str(tmp_path / 'part' / 'iter_2.pth'))
    del checkpoint['random_states']  # as saved before they were kept
    torch.save(checkpoint, old)
    logged = []
    monkeypatch.setattr(randomness, 'print_log',
                        lambda message, **kwargs: logged.append(message))
    toy_runner(tmp_path / 'resumed', False, 3, resume_from=str(old)).train()
    assert any(m.startswith('The checkpoint holds no random states')
               for m in logged)
