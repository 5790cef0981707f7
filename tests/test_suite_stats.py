"""The suite's statistics (mmdrconv/suite/stats.py) against hand-computed
values, and the report of a fabricated results table (report.py)."""
import csv
import json
import os.path as osp
import statistics
import sys

import pytest

from helpers import REPO, fabricated_suite

# Student t quantiles t(0.975, df) from a printed table.
T_DF1, T_DF2 = 12.706, 4.303
# ... and t(0.80, df): the power quantile of the minimum detectable
# difference.
T80_DF2 = 1.061


def test_t_interval_matches_hand_computed_values():
    from mmdrconv.suite.stats import t_interval
    s = t_interval([0.50, 0.52, 0.54])
    # mean 0.52, sample std 0.02, half-width 4.303 * 0.02 / sqrt(3)
    assert s['mean'] == pytest.approx(0.52)
    assert s['std'] == pytest.approx(0.02)
    half = T_DF2 * 0.02 / 3**0.5
    assert s['low'] == pytest.approx(0.52 - half, abs=2e-5)
    assert s['high'] == pytest.approx(0.52 + half, abs=2e-5)
    two = t_interval([0.03, 0.05])  # std 0.01 * sqrt(2): half 12.706 * 0.01
    assert two['high'] == pytest.approx(0.04 + T_DF1 * 0.01, abs=1e-4)
    one = t_interval([0.7])
    assert one['mean'] == 0.7 and one['low'] is None and one['std'] is None
    assert t_interval([])['mean'] is None
    with pytest.raises(ValueError, match='confidence'):
        t_interval([1.0, 2.0], confidence=95)


def test_paired_difference_and_verdicts():
    from mmdrconv.suite.stats import NO_DIFFERENCE, paired_difference
    base = {0: 0.50, 1: 0.52, 2: 0.54}
    ahead = paired_difference({0: 0.60, 1: 0.63, 2: 0.62}, base)
    # differences 0.10, 0.11, 0.08: mean 0.09667, std 0.015275
    assert ahead['values'] == pytest.approx([0.10, 0.11, 0.08])
    assert ahead['mean'] == pytest.approx(0.096667, abs=1e-6)
    assert ahead['low'] == pytest.approx(0.096667 - T_DF2 * 0.015275 / 3**0.5,
                                         abs=5e-5)
    assert ahead['verdict'] == 'ahead'
    behind = paired_difference({0: 0.40, 1: 0.41, 2: 0.45}, base)
    assert behind['mean'] == pytest.approx(-0.10)
    assert behind['high'] == pytest.approx(-0.10 + T_DF2 * 0.01 / 3**0.5,
                                           abs=2e-5)
    assert behind['verdict'] == 'behind'
    # differences -0.01, 0.03, -0.02: the interval straddles zero
    level = paired_difference({0: 0.49, 1: 0.55, 2: 0.52}, base)
    assert level['mean'] == pytest.approx(0.0, abs=1e-12)
    assert level['verdict'] == NO_DIFFERENCE
    # Only the seeds both finished are paired; one seed gives no interval.
    partial = paired_difference({0: 0.53, 1: 0.57}, base)
    assert partial['seeds'] == [0, 1]
    assert partial['high'] == pytest.approx(0.04 + T_DF1 * 0.01, abs=1e-4)
    assert partial['verdict'] == NO_DIFFERENCE
    single = paired_difference({2: 0.90}, base)
    assert single['n'] == 1 and single['verdict'] == NO_DIFFERENCE


def test_detectable_difference_matches_hand_computed_values():
    from scipy import stats

    from mmdrconv.suite.stats import detectable_difference, paired_difference
    # differences 0.10, 0.11, 0.08 (std 0.015275) over 3 seeds, twin 0.52
    d = paired_difference({0: 0.60, 1: 0.63, 2: 0.62},
                          {0: 0.50, 1: 0.52, 2: 0.54})
    mde = d['mde']
    hand = (T_DF2 + T80_DF2) * 0.015275 / 3**0.5  # 0.04731
    assert mde['absolute'] == pytest.approx(hand, abs=5e-5)
    exact = (stats.t.ppf(0.975, 2) + stats.t.ppf(0.8, 2)) * \
        0.015275252316519466 / 3**0.5
    assert mde['absolute'] == pytest.approx(exact, rel=1e-9)
    assert d['twin_mean'] == pytest.approx(0.52)
    assert mde['relative'] == pytest.approx(exact / 0.52, rel=1e-9)
    assert (mde['power'], mde['confidence'], mde['n']) == (0.8, 0.95, 3)
    assert mde['reason'] is None
    one = paired_difference({2: 0.9}, {2: 0.5})['mde']
    assert one['absolute'] is None and one['relative'] is None
    assert one['reason'] == ('1 paired seed: the spread of the differences '
                             'needs at least 2')
    zero = detectable_difference(0.1, 4, reference=0.0)
    assert zero['absolute'] == pytest.approx(
        (stats.t.ppf(0.975, 3) + stats.t.ppf(0.8, 3)) * 0.1 / 2)
    assert zero['relative'] is None and 'twin' in zero['reason']
    with pytest.raises(ValueError, match='power must be in'):
        detectable_difference(0.1, 4, power=80)


def test_seeds_needed_against_a_t_table():
    from mmdrconv.suite.stats import seeds_needed
    # std 1, difference 1: (t(.975, df) + t(.8, df)) / sqrt(n) with the
    # table's t(.975, 8) = 2.306, t(.8, 8) = 0.889 is 1.065 for n = 9,
    # with t(.975, 9) = 2.262, t(.8, 9) = 0.883 it is 0.9945 for n = 10.
    assert seeds_needed(1.0, 1.0) == 10
    assert seeds_needed(2.0, 2.0) == 10  # only the ratio counts
    assert seeds_needed(0.0, 0.01) == 2  # no spread: the minimum
    assert seeds_needed(1.0, 1e-3, max_seeds=50) is None
    with pytest.raises(ValueError, match='must be positive'):
        seeds_needed(1.0, 0.0)


def test_late_gain_interpolates_the_curve():
    from mmdrconv.suite.stats import late_gain
    curve = [dict(iter=i, metrics=dict(acc=v)) for i, v in
             [(13, 0.1), (26, 0.3), (39, 0.4), (50, 0.46)]]
    gain = late_gain(curve, 'acc')
    # last quarter from 37.5: 0.3 + 0.1 * 11.5 / 13 = 0.38846 there
    assert gain['gain'] == pytest.approx(0.46 - (0.3 + 0.1 * 11.5 / 13))
    assert (gain['from_iter'], gain['to_iter']) == (37.5, 50)
    late = late_gain(curve[2:], 'acc')
    assert late['gain'] is None
    assert late['reason'].startswith('first evaluation at iteration 39')
    assert late_gain(curve[-1:], 'acc')['reason'].startswith(
        '1 evaluation(s) of acc')
    assert late_gain(curve, 'mIoU')['gain'] is None


def test_report_of_a_fabricated_table(tmp_path, monkeypatch):
    from mmdrconv.suite.report import write_report
    from mmdrconv.suite.stats import NO_DIFFERENCE
    suite, cells, results, profiles = fabricated_suite(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['tools/suite.py', 'my suite.py',
                                      '--jobs', '2'])
    report = write_report(suite, cells, results, profiles, wall_time_s=60)
    # The command that made it, quoted to be typed again.
    with open(report['json']) as f:
        command = json.load(f)['command']
    assert command.endswith(" tools/suite.py 'my suite.py' --jobs 2")
    assert f'- command: `{command}`' in open(report['markdown']).read()
    rows = {r['variant']: r for r in report['summary']}
    standard = rows['standard']['metrics']['acc']
    assert standard['seeds'] == [0, 1, 2]
    assert standard['values'] == pytest.approx([0.50, 0.52, 0.54])
    assert standard['high'] == pytest.approx(0.52 + T_DF2 * 0.02 / 3**0.5,
                                             abs=2e-5)
    assert rows['standard']['difference'] is None
    verdicts = {v: r['difference']['acc']['verdict']
                for v, r in rows.items() if r['difference']}
    assert verdicts == dict(drconv='ahead', drconv_mixture=NO_DIFFERENCE,
                            worse='behind', dcnv2=NO_DIFFERENCE)
    assert rows['dcnv2']['seeds'] == [0, 1]
    assert rows['dcnv2']['failed'] == [dict(seed=2,
                                            error='RuntimeError: boom')]
    # training time per iteration 0.1, 0.2, 0.3 s: mean 0.2, std 0.1
    time_summary = rows['drconv']['train_time_per_iter']
    assert time_summary['mean'] == pytest.approx(0.2)
    assert time_summary['low'] == pytest.approx(0.2 - T_DF2 * 0.1 / 3**0.5,
                                                abs=2e-4)
    # a batch of two at 4 GMACs: 2 GMACs per image
    assert rows['drconv']['gmacs_per_image'] == pytest.approx(2.0)
    # The twin's gain over the last quarter (iterations 30-40): 0.04,
    # 0.02, 0.06 by seed; beside every difference.
    twin_gain = rows['standard']['late_gain']['acc']
    assert twin_gain['values'] == pytest.approx([0.04, 0.02, 0.06])
    assert (twin_gain['from_iter'], twin_gain['to_iter']) == (30, 40)
    assert rows['drconv']['late_gain']['acc']['mean'] == pytest.approx(0)
    assert rows['worse']['difference']['acc']['twin_late_gain'] == \
        pytest.approx(0.04)
    # MDE of drconv_mixture: differences -0.01, 0.03, -0.02 (std 0.026458)
    mde = rows['drconv_mixture']['difference']['acc']['mde']
    assert mde['absolute'] == pytest.approx(
        (T_DF2 + T80_DF2) * 0.026458 / 3**0.5, abs=1e-4)
    assert mde['relative'] == pytest.approx(mde['absolute'] / 0.52)
    # dcnv2 over seeds 0 and 1 only: differences 0.03, 0.05, twin 0.51
    assert rows['dcnv2']['difference']['acc']['mde']['reference'] == \
        pytest.approx(0.51)

    text = open(report['markdown']).read()
    assert '| drconv | 0 1 2 | 0.617 [0.579, 0.655] | 0.600, 0.630, 0.620 |' \
        in text
    # MDE (4.303 + 1.061) * 0.015275 / sqrt(3) = 0.0473, 9.1% of 0.52
    assert '| drconv | +0.097 [+0.059, +0.135] | 0.047 (9.1%) | ahead |' \
        in text
    # Holm over 4 comparisons: p 0.00332 (worse) x 4, 0.00822 (drconv)
    # x 3, 0.156 (dcnv2) x 2, 1 (drconv_mixture).
    assert '- worse vs standard on acc: -0.100 [-0.125, -0.075] over ' \
        'seeds 0, 1, 2 (p 0.00332, Holm-adjusted 0.0133): behind.' in text
    assert '(p 0.156, Holm-adjusted 0.312)' in text
    mixture_mde = rows['drconv_mixture']['difference']['acc']['mde']
    assert f'- drconv_mixture vs standard on acc: +0.000 [-0.066, +0.066] ' \
        f'over seeds 0, 1, 2 (p 1, Holm-adjusted 1): {NO_DIFFERENCE}; ' \
        'differences larger than ' \
        f"{mixture_mde['absolute']:.3f} ({mixture_mde['relative']:.1%} of " \
        "the twin's 0.520) either way would have been detected with 80% " \
        'power.' in text
    assert f'- dcnv2 vs standard on acc: +0.040 [-0.087, +0.167] over ' \
        f'seeds 0, 1 (p 0.156, Holm-adjusted 0.312): {NO_DIFFERENCE}; ' \
        'differences larger than ' in text
    # An "ahead" verdict needs no statement of what was ruled out.
    assert 'over seeds 0, 1, 2 (p 0.00822, Holm-adjusted 0.0247): ahead.' \
        in text
    # The task's checks: no variant is named control*.
    assert '- no control: nothing shows that this budget detects a known ' \
        'harm' in text
    assert 'twin on a plateau (last-quarter gain +0.040 below half the ' \
        'median MDE, 0.032): NO' in text
    assert f"| drconv_mixture | +0.000 [-0.066, +0.066] | " \
        f"{mixture_mde['absolute']:.3f} ({mixture_mde['relative']:.1%}) | " \
        in text
    assert 'Gain of `standard` over the last quarter of training (from its ' \
        'validation curves; mean [interval] over seeds), beside the MDE ' \
        'above: acc +0.040 [-0.010, +0.090] (iterations 30-40).' in text
    assert 'FAILED dcnv2 seed 2: `RuntimeError: boom`' in text
    assert 'GMACs / image (64x96)' in text and '| 2.000 |' in text
    with open(report['csv']) as f:
        lines = list(csv.DictReader(f))
    worse = next(line for line in lines if line['variant'] == 'worse')
    assert float(worse['diff_mean']) == pytest.approx(-0.10)
    assert worse['verdict'] == 'behind' and worse['seeds'] == '0 1 2'
    mixture = next(line for line in lines
                   if line['variant'] == 'drconv_mixture')
    assert float(mixture['mde']) == pytest.approx(mixture_mde['absolute'])
    assert float(mixture['mde_relative']) == pytest.approx(
        mixture_mde['relative'])
    assert float(mixture['twin_late_gain']) == pytest.approx(0.04)
    for name in ('metrics.png', 'accuracy_vs_macs.png',
                 'accuracy_vs_train_time.png', 'training_curves.png',
                 'validation_curves.png'):
        assert osp.getsize(osp.join(tmp_path, name)) > 0, name


def test_seed_plan_of_a_finished_run(tmp_path, capsys, monkeypatch):
    """--plan-seeds: from the fabricated run's results.json, the seeds that
    would detect a 3% difference, against scipy's quantiles directly."""
    from scipy import stats

    from mmdrconv.suite.report import write_report
    from mmdrconv.cli.suite import main
    suite, cells, results, profiles = fabricated_suite(tmp_path)
    write_report(suite, cells, results, profiles, wall_time_s=60)
    monkeypatch.chdir(REPO)  # the suite file names configs from here
    main(['configs/suites/smoke.py', '--work-dir', str(tmp_path),
          '--plan-seeds', '0.03'])
    text = capsys.readouterr().out

    def needed(std, target):
        return next(n for n in range(2, 10000)
                    if (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1))
                    * std / n**0.5 <= target)

    # drconv_mixture: std 0.026458 of the differences, twin 0.52: 3% is
    # 0.0156; dcnv2: differences 0.03 and 0.05 (std 0.014142), twin 0.51.
    mixture = needed(statistics.stdev([0.49 - 0.50, 0.55 - 0.52,
                                       0.52 - 0.54]), 0.03 * 0.52)
    dcnv2 = needed(statistics.stdev([0.53 - 0.50, 0.57 - 0.52]), 0.03 * 0.51)
    assert mixture == 25  # computed independently with scipy as above
    assert f'| toy | drconv_mixture | acc | 0.5200 | 0.0156 | 0.0265 (3) ' \
        f'| {mixture} |  |' in text
    assert f'| toy | dcnv2 | acc | 0.5100 | 0.0153 | 0.0141 (2) | {dcnv2} ' \
        '| spread from 2 seeds only: a rough estimate |' in text
    assert "paired difference of 3.0% of the twin's mean" in text

    with pytest.raises(SystemExit) as exit_:
        main(['configs/suites/smoke.py', '--work-dir',
              str(tmp_path / 'nothing'), '--plan-seeds', '0.03'])
    assert 'it plans from a finished run' in str(exit_.value.code)
    with pytest.raises(SystemExit):
        main(['configs/suites/smoke.py', '--plan-seeds', '-1'])
    assert '--plan-seeds must be positive' in capsys.readouterr().err


def test_report_lists_only_the_datasets_its_tasks_use(tmp_path):
    from mmdrconv.suite.report import write_report
    suite, cells, results, profiles = fabricated_suite(tmp_path)
    suite.datasets = dict(
        toy=dict(kind='coco', root='data/toy', generate=True, num_train=4,
                 num_val=2),
        unused=dict(kind='coco', root='data/unused', generate=True,
                    num_train=8, num_val=2))
    report = write_report(suite, cells, results, profiles, wall_time_s=60)
    text = open(report['markdown']).read()
    assert '- dataset `toy`: generated at `data/toy` (4 train / 2 val ' \
        'images, seed 0)' in text
    assert 'unused' not in text
