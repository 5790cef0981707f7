"""The presets' tasks passed the gate: each task of `demo` and `full` names
the committed pilot that admitted it (``admitted_by``), and in that pilot,
of at least two seeds, every control of the preset's task came out behind
its twin on every seed (docs/suite.md, "The gate")."""
import json
import os.path as osp

import pytest

from helpers import REPO
from mmdrconv.suite.spec import load_suite

GATED = ('configs/suites/demo.py', 'configs/suites/full.py')


def _pilot_checks(admitted_by: str) -> dict:
    path, _, task = admitted_by.rpartition(':')
    with open(osp.join(REPO, path)) as f:
        checks = json.load(f)['checks']
    assert task in checks, f'{path} has no task {task!r}: {sorted(checks)}'
    return checks[task]


@pytest.mark.parametrize('preset', GATED)
def test_every_task_of_the_preset_passed_its_gate(preset, monkeypatch):
    monkeypatch.chdir(REPO)
    suite = load_suite(preset)
    for task in suite.tasks:
        assert task.controls, f'{preset}: {task.name} has no control'
        assert task.admitted_by, (
            f'{preset}: {task.name} names no pilot that admitted it')
        checks = _pilot_checks(task.admitted_by)
        assert len(checks['seeds']) >= 2, task.admitted_by
        assert checks['metric'] == task.primary_metric
        for control in task.controls:
            pilot = checks['controls'].get(control)
            assert pilot is not None, (
                f'{task.name}: control {control} was not in the pilot '
                f'{task.admitted_by}')
            assert pilot['behind_every_seed'], (
                f'{task.name}: control {control} was not behind on every '
                f'seed of {task.admitted_by}')


def test_the_gate_refuses_a_control_ahead_on_a_seed(tmp_path):
    results = tmp_path / 'results.json'
    results.write_text(json.dumps(dict(checks=dict(t=dict(
        seeds=[0, 1], metric='m', controls=dict(control_1x1=dict(
            verdict='no difference', behind_every_seed=False)))))))
    checks = _pilot_checks(f'{results}:t')
    assert not checks['controls']['control_1x1']['behind_every_seed']
    with pytest.raises(AssertionError, match='no task'):
        _pilot_checks(f'{results}:other')
