"""Verdicts of a suite task: one primary metric, Holm's correction across
the task's variants, the task's checks (controls behind, twin on a
plateau, MDE) and seeds added until the run can decide (--until-mde)."""
import pytest
from scipy import stats as scipy_stats

from mmdrconv.suite.report import (SECONDARY, correct_for_multiplicity,
                                   task_checks)
from mmdrconv.suite.seeding import next_seeds, run_until_mde, stop_reason
from mmdrconv.suite.spec import Task
from mmdrconv.suite.stats import (BEHIND, NO_DIFFERENCE, holm_adjusted,
                                  p_value, paired_difference)


def test_p_value_is_the_paired_t_tests():
    diffs = [0.10, 0.11, 0.08]
    d = paired_difference(dict(enumerate(diffs)), {0: 0, 1: 0, 2: 0})
    assert p_value(d) == pytest.approx(
        scipy_stats.ttest_1samp(diffs, 0).pvalue)
    assert p_value(dict(n=1, mean=0.1, std=None)) is None
    assert p_value(dict(n=3, mean=0.1, std=0.0)) == 0.0
    assert p_value(dict(n=3, mean=0.0, std=0.0)) == 1.0


def test_holm_adjustment_against_hand_computed_values():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, made monotone
    adjusted = holm_adjusted(dict(a=0.01, b=0.04, c=0.03, d=0.005, e=None))
    assert adjusted == pytest.approx(dict(a=0.03, b=0.06, c=0.06, d=0.02,
                                          e=None))
    assert holm_adjusted(dict(a=0.6, b=0.5)) == pytest.approx(
        dict(a=1.0, b=1.0))  # 0.5 * 2 = 1, capped


def _rows(task, diffs, twin_curve_gain=0.01):
    """Summary rows of a task whose variants differ from a twin at 0.5 by
    ``diffs[variant]`` per seed (two metrics, the second a copy)."""
    seeds = range(len(next(iter(diffs.values()))))
    base = {s: 0.5 for s in seeds}
    rows = [dict(task=task.name, variant=task.baseline, seeds=list(seeds),
                 difference=None,
                 metrics={m: dict(std=0.01) for m in task.metrics},
                 late_gain={task.primary_metric: dict(mean=twin_curve_gain)},
                 evaluation_se={task.primary_metric: dict(se=0.004)})]
    for variant, values in diffs.items():
        d = {m: paired_difference({s: 0.5 + v for s, v in
                                   zip(seeds, values)}, base)
             for m in task.metrics}
        rows.append(dict(task=task.name, variant=variant, seeds=list(seeds),
                         difference=d))
    return rows


def test_verdicts_only_on_the_primary_metric_after_holm():
    task = Task(name='t', dataset='d', metrics=['map', 'segm'],
                variants=dict(standard='a', drconv='b', mixture='c',
                              control_1x1='d'))
    assert task.primary_metric == 'map' and task.controls == ['control_1x1']
    assert task.compared == ['drconv', 'mixture']
    # drconv alone would be "ahead" uncorrected (p 0.029) but not after
    # Holm over 3 comparisons (second smallest: x2); the control stays
    # "behind" (p ~0.0005, x3).
    rows = _rows(task, dict(drconv=[0.02, 0.026, 0.014],
                            mixture=[0.01, -0.01, 0.0],
                            control_1x1=[-0.10, -0.11, -0.10]))
    correct_for_multiplicity(task, rows)
    by = {r['variant']: r['difference'] for r in rows[1:]}
    assert by['drconv']['map']['verdict_uncorrected'] == 'ahead'
    assert by['drconv']['map']['holm_p'] == pytest.approx(
        2 * by['drconv']['map']['p_value'])
    assert by['drconv']['map']['verdict'] == NO_DIFFERENCE
    assert by['control_1x1']['map']['verdict'] == BEHIND
    assert all(d['segm']['verdict'] == SECONDARY for d in by.values())

    checks = task_checks(task, rows)
    assert checks['controls'] == dict(control_1x1=dict(
        verdict=BEHIND, behind_every_seed=True, seeds=3))
    assert checks['controls_behind'] is True
    mdes = sorted(by[v]['map']['mde']['relative']
                  for v in ('drconv', 'mixture'))
    assert checks['median_relative_mde'] == pytest.approx(sum(mdes) / 2)
    assert checks['max_relative_mde'] == pytest.approx(mdes[1])
    half = sum(by[v]['map']['mde']['absolute']
               for v in ('drconv', 'mixture')) / 4
    assert checks['half_mde'] == pytest.approx(half)
    assert checks['twin_plateau'] is (0.01 < half)
    assert checks['evaluation_below_seed_noise'] is True


def test_a_control_ahead_on_one_seed_fails_the_check():
    task = Task(name='t', dataset='d', metrics=['map'],
                variants=dict(standard='a', drconv='b', control_skip='c'))
    rows = _rows(task, dict(drconv=[0.0, 0.01, -0.01],
                            control_skip=[-0.2, -0.2, 0.01]))
    correct_for_multiplicity(task, rows)
    checks = task_checks(task, rows)
    assert checks['controls']['control_skip']['behind_every_seed'] is False
    assert checks['controls_behind'] is False


def test_task_names_its_primary_metric_and_controls():
    with pytest.raises(ValueError, match='primary_metric'):
        Task(name='t', dataset='d', metrics=['a'], variants=dict(s='x'),
             primary_metric='b')
    with pytest.raises(ValueError, match='controls'):
        Task(name='t', dataset='d', metrics=['a'], variants=dict(s='x'),
             controls=['nope'])
    task = Task(name='t', dataset='d', metrics=['a'],
                variants=dict(s='x', weak='y'), controls=['weak'])
    assert task.compared == [] and task.controls == ['weak']


def test_seeds_are_added_from_the_spread_alone():
    checks = dict(a=dict(median_relative_mde=0.09),
                  b=dict(median_relative_mde=0.04),
                  c=dict(median_relative_mde=None),
                  d=dict(median_relative_mde=0.2))
    seeds = dict(a=[0, 1, 2], b=[0, 1, 2], c=[0, 1], d=[0, 1, 2, 3, 4])
    assert next_seeds(checks, seeds, 0.05, max_seeds=5) == dict(
        a=[0, 1, 2, 3], c=[0, 1, 2])
    assert 'cap of 5' in stop_reason(checks['d'], 5, 0.05, 5)
    assert '4.0% <= 5.0%' in stop_reason(checks['b'], 3, 0.05, 5)


def test_run_until_mde_grows_each_task_until_it_meets_the_target(
        monkeypatch):
    """The suite runner is replaced by a fake whose MDE falls as seeds are
    added: task 'fast' stops at 3 seeds, 'slow' at the cap."""
    import mmdrconv.suite.seeding as seeding
    tasks = [Task(name=n, dataset='d', metrics=['m'], variants=dict(s='x'))
             for n in ('fast', 'slow')]

    class FakeSuite:
        name = 'fake'
        seeds = [0, 1]

        def __init__(self):
            self.tasks = tasks

        def seeds_of(self, task):
            return list(self.seeds)

    monkeypatch.setattr(seeding, 'load_suite', lambda *a, **k: FakeSuite())
    calls = []

    def fake_run(path, work_dir=None, task_seeds=None, **options):
        calls.append({k: list(v) for k, v in task_seeds.items()})
        mde = dict(fast=0.12 / len(task_seeds['fast']),
                   slow=0.5 / len(task_seeds['slow']))
        return dict(checks={t: dict(median_relative_mde=v)
                            for t, v in mde.items()})

    report = run_until_mde('suite.py', 0.05, 4, fake_run, jobs=2)
    assert calls == [dict(fast=[0, 1], slow=[0, 1]),
                     dict(fast=[0, 1, 2], slow=[0, 1, 2]),
                     dict(fast=[0, 1, 2], slow=[0, 1, 2, 3])]
    assert report['seeding']['fast']['seeds'] == [0, 1, 2]
    assert report['seeding']['slow']['reason'].startswith(
        'stopped at the cap of 4 seeds')
    with pytest.raises(ValueError, match='until-mde'):
        run_until_mde('suite.py', 5, 4, fake_run)
