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


def gate_failures(task, checks: dict) -> list:
    """Why ``task`` may not enter a preset, given its pilot's checks."""
    failures = []
    if len(checks['seeds']) < 2:
        failures.append(f'pilot of {len(checks["seeds"])} seed(s)')
    if checks['metric'] != task.primary_metric:
        failures.append(f'pilot judged {checks["metric"]}, not '
                        f'{task.primary_metric}')
    for control in task.controls:
        pilot = checks['controls'].get(control)
        if pilot is None:
            failures.append(f'control {control} not in the pilot')
        elif not pilot['behind_every_seed']:
            failures.append(f'control {control} not behind on every seed')
    return failures


@pytest.mark.parametrize('preset', GATED)
def test_every_task_of_the_preset_passed_its_gate(preset, monkeypatch):
    monkeypatch.chdir(REPO)
    suite = load_suite(preset)
    for task in suite.tasks:
        assert task.controls, f'{preset}: {task.name} has no control'
        assert task.admitted_by, (
            f'{preset}: {task.name} names no pilot that admitted it')
        assert gate_failures(task, _pilot_checks(task.admitted_by)) == [], \
            f'{preset}: {task.name} ({task.admitted_by})'


def test_the_gate_refuses_what_a_pilot_did_not_show(tmp_path):
    from mmdrconv.suite.spec import Task
    task = Task(name='t', dataset='d', metrics=['m'],
                variants=dict(standard='a', control_1x1='b',
                              control_skip='c'))
    behind = dict(verdict='behind', behind_every_seed=True)
    checks = dict(seeds=[0, 1], metric='m',
                  controls=dict(control_1x1=behind, control_skip=behind))
    assert gate_failures(task, checks) == []
    checks['controls']['control_1x1'] = dict(
        verdict='no difference', behind_every_seed=False)
    del checks['controls']['control_skip']
    checks['seeds'] = [0]
    assert gate_failures(task, checks) == [
        'pilot of 1 seed(s)', 'control control_1x1 not behind on every seed',
        'control control_skip not in the pilot']
    results = tmp_path / 'results.json'
    results.write_text(json.dumps(dict(checks=dict(t=checks))))
    assert _pilot_checks(f'{results}:t') == checks
    with pytest.raises(AssertionError, match='no task'):
        _pilot_checks(f'{results}:other')
