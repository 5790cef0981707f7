"""The benchmark suite: its statistics on a fabricated results table
(against hand-computed values), the smoke preset end to end, and re-runs."""
import csv
import json
import os
import os.path as osp
import statistics
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

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


def _fabricated_suite(work_dir):
    from mmdrconv.suite.spec import Suite, Task
    task = Task(name='toy', dataset='toy', metrics=['acc'],
                variants=dict(standard='a.py', drconv='b.py',
                              drconv_mixture='c.py', worse='d.py',
                              dcnv2='e.py'), image_size=(64, 96))
    suite = Suite(name='fabricated', seeds=[0, 1, 2], tasks=[task],
                  datasets={}, work_dir=str(work_dir), profile={},
                  launcher=None, source='fabricated.py')
    values = dict(standard=[0.50, 0.52, 0.54], drconv=[0.60, 0.63, 0.62],
                  drconv_mixture=[0.49, 0.55, 0.52],
                  worse=[0.40, 0.41, 0.45], dcnv2=[0.53, 0.57, None])
    cells = suite.cells()
    results = []
    for cell in cells:
        value = values[cell.variant][cell.seed]
        # Validation curves at 10, 20, 30, 40: the twin gains 0.04 (seed 0),
        # 0.02, 0.06 from iteration 30 on; the others end flat.
        rise = {0: 0.04, 1: 0.02, 2: 0.06}[cell.seed] \
            if cell.variant == 'standard' else 0.0
        curve = [dict(iter=i, metrics=dict(acc=value - rise * (i < 40)))
                 for i in (10, 20, 30, 40)] if value is not None else []
        results.append(
            dict(status='failed', error='RuntimeError: boom') if value is None
            else dict(status='ok', metrics=dict(acc=value), curve=curve,
                      train_time_per_iter=0.1 * (cell.seed + 1)))
    profiles = {('toy', v): dict(params=2e6, macs=4e9, batch_size=2,
                                 latency_ms=5.0)
                for v in task.variants}
    return suite, cells, results, profiles


def test_report_of_a_fabricated_table(tmp_path, monkeypatch):
    from mmdrconv.suite.report import write_report
    from mmdrconv.suite.stats import NO_DIFFERENCE
    suite, cells, results, profiles = _fabricated_suite(tmp_path)
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
    assert '- worse vs standard on acc: -0.100 [-0.125, -0.075] over ' \
        'seeds 0, 1, 2: behind.' in text
    mixture_mde = rows['drconv_mixture']['difference']['acc']['mde']
    assert f'- drconv_mixture vs standard on acc: +0.000 [-0.066, +0.066] ' \
        f'over seeds 0, 1, 2: {NO_DIFFERENCE}; differences larger than ' \
        f"{mixture_mde['absolute']:.3f} ({mixture_mde['relative']:.1%} of " \
        "the twin's 0.520) either way would have been detected with 80% " \
        'power.' in text
    assert f'- dcnv2 vs standard on acc: +0.040 [-0.087, +0.167] over ' \
        f'seeds 0, 1: {NO_DIFFERENCE}; differences larger than ' in text
    # An "ahead" verdict needs no statement of what was ruled out.
    assert 'over seeds 0, 1, 2: ahead.' in text
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
    suite, cells, results, profiles = _fabricated_suite(tmp_path)
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


SYN = osp.join(REPO, 'configs/synthetic')
# The layers each control weakens (3x3 -> 1x1): ResNet-50's c3-c5 conv2
# (4, 6 and 3 blocks), MobileNetV2's depthwise convs of layers 3-7 (3, 4,
# 3, 3 and 1 blocks).
RESNET_WEAKENED = {f'backbone.layer{stage}.{block}.conv2'
                   for stage, blocks in ((2, 4), (3, 6), (4, 3))
                   for block in range(blocks)}
MOBILENET_WEAKENED = {f'backbone.layer{stage}.{block}.conv.1.conv'
                      for stage, blocks in ((3, 3), (4, 4), (5, 3), (6, 3),
                                            (7, 1))
                      for block in range(blocks)}
CONTROLS = [
    ('mask-rcnn_r50-w16_fpn_synthetic-coco.py',
     'mask-rcnn_r50-w16-1x1-c3-c5_fpn_synthetic-coco.py', RESNET_WEAKENED),
    ('deeplabv3_r50-w16-d8_synthetic-cityscapes.py',
     'deeplabv3_r50-w16-d8-1x1-c3-c5_synthetic-cityscapes.py',
     RESNET_WEAKENED),
    ('mobilenet-v2-d8_deeplabv3_synthetic-cityscapes.py',
     'mobilenet-v2-d8-1x1_deeplabv3_synthetic-cityscapes.py',
     MOBILENET_WEAKENED),
]


@pytest.mark.parametrize('twin, control, weakened', CONTROLS,
                         ids=['mask-rcnn', 'deeplabv3', 'mobilenetv2'])
def test_control_differs_from_its_twin_exactly_in_the_weakened_layers(
        twin, control, weakened):
    from mmdrconv.apis import build_model, load_config
    from mmdrconv.openmmlab.registry import PointwiseConv
    models = [build_model(load_config(osp.join(SYN, c)))
              for c in (twin, control)]
    states = [m.state_dict() for m in models]
    assert list(states[0]) == list(states[1])  # same names, same order
    differ = {k for k in states[0] if states[0][k].shape != states[1][k].shape}
    assert differ == {f'{name}.weight' for name in weakened}
    for key in differ:
        assert states[1][key].shape == states[0][key].shape[:2] + (1, 1)
        assert states[0][key].shape[2:] == (3, 3)
    modules = dict(models[1].named_modules())
    assert {n for n, m in modules.items()
            if isinstance(m, PointwiseConv)} == weakened
    # Same feature maps out of the backbone: only the kernels changed.
    x = torch.randn(1, 3, 64, 64)
    shapes = []
    for model in models:
        model.eval()  # mmdet's ResNet.train returns None: no chaining
        with torch.no_grad():
            shapes.append([f.shape for f in model.backbone(x)])
    assert shapes[0] == shapes[1]


def test_frozen_control_shares_every_weight_and_trains_all_but_c3_c5():
    from mmdrconv.apis import build_model, load_config
    from mmdrconv.openmmlab.registry import FrozenConv
    twin, control = (build_model(load_config(osp.join(SYN, c))) for c in (
        'mask-rcnn_r50-w16_fpn_synthetic-coco.py',
        'mask-rcnn_r50-w16-frozen-c3-c5_fpn_synthetic-coco.py'))
    states = [m.state_dict() for m in (twin, control)]
    assert [(k, v.shape) for k, v in states[0].items()] == \
        [(k, v.shape) for k, v in states[1].items()]
    assert {n for n, m in control.named_modules()
            if isinstance(m, FrozenConv)} == RESNET_WEAKENED
    frozen = {n for n, p in control.named_parameters() if not p.requires_grad}
    assert frozen == {f'{name}.weight' for name in RESNET_WEAKENED}
    # The same function as the twin once it holds the twin's weights.
    control.load_state_dict(states[0])
    x = torch.randn(1, 3, 64, 64)
    twin.eval(), control.eval()
    with torch.no_grad():
        for a, b in zip(twin.backbone(x), control.backbone(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_frozen_conv_keeps_its_weight_through_an_optimizer_step():
    from mmdrconv.openmmlab.registry import FrozenConv
    torch.manual_seed(0)
    model = torch.nn.Sequential(FrozenConv(3, 4, 3, padding=1),
                                torch.nn.Conv2d(4, 2, 3))
    model.to(torch.float64)  # _apply rebuilds parameters: still frozen
    before = [p.detach().clone() for p in model.parameters()]
    optim = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    model(torch.randn(2, 3, 6, 6, dtype=torch.float64)).square().sum() \
        .backward()
    optim.step()
    after = list(model.parameters())
    assert not after[0].requires_grad and after[0].grad is None
    assert torch.equal(after[0], before[0])  # no update, no weight decay
    assert all(not torch.equal(a, b) for a, b in zip(after[1:], before[1:]))
    with pytest.raises(TypeError):
        FrozenConv(3, 4)  # kernel_size is required, as for nn.Conv2d


def test_pointwise_control_names_a_pattern_that_weakens_nothing():
    from mmdrconv.openmmlab.registry import convs_as_pointwise
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                                torch.nn.Conv2d(4, 4, 1))
    with pytest.raises(ValueError, match=r"pattern '1' matches no k x k"):
        convs_as_pointwise(model, ['1'])  # already 1x1
    convs_as_pointwise(model, ['0'])
    assert model[0].kernel_size == (1, 1) and model[0].in_channels == 3
    assert model(torch.randn(1, 3, 5, 5)).shape == (1, 4, 5, 5)


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


def test_deformable_conv_multiply_adds_are_counted():
    from mmcv.ops import ModulatedDeformConv2dPack

    from mmdrconv.core.complexity import count_complexity
    layer = ModulatedDeformConv2dPack(8, 16, 3, padding=1).eval()
    assert not isinstance(layer, torch.nn.Conv2d)  # no Conv2d hook for it
    x = torch.randn(1, 8, 10, 10)
    counts = count_complexity(layer, lambda: layer(x))
    pixels, taps = 10 * 10, 9
    offsets = pixels * 27 * 8 * taps  # conv_offset: 8 -> 3 x 9 channels
    conv = pixels * 16 * 8 * taps
    sampling = pixels * 8 * taps * 5  # bilinear (4) + modulation (1)
    assert counts['macs'] == offsets + conv + sampling


def smoke_suite(folder, synthetic_data) -> str:
    """The smoke preset on the session's generated data, with absolute
    config paths: nothing is written into the repository."""
    path = folder / 'smoke.py'
    path.write_text(
        f"_base_ = '{REPO}/configs/suites/smoke.py'\n"
        "suite = dict(\n"
        "    datasets=dict(\n"
        f"        coco=dict(_delete_=True, root='{synthetic_data}/coco'),\n"
        "        cityscapes=dict(_delete_=True,\n"
        f"                        root='{synthetic_data}/cityscapes')),\n"
        "    tasks=[dict(task, variants={k: '" + REPO + "/' + v for k, v in"
        " task['variants'].items()})\n"
        "           for task in _base_.suite.tasks])\n")
    return str(path)


def run_suite(suite, work_dir, *extra, check=True):
    result = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/suite.py'), suite,
         '--work-dir', work_dir, *extra], cwd=osp.dirname(work_dir),
        capture_output=True, text=True, timeout=2400)
    output = result.stdout + result.stderr
    if check:
        assert result.returncode == 0, output[-4000:]
    return result.returncode, output


@pytest.fixture(scope='module')
def smoke(tmp_path_factory, synthetic_data):
    # Every cell of the smoke preset, two at a time (a cell is mostly
    # single-threaded start-up); profiling (one process per variant) is
    # covered on a few variants below, to keep this test short.
    folder = tmp_path_factory.mktemp('suite')
    suite = smoke_suite(folder, synthetic_data)
    work_dir = str(folder / 'smoke')
    output = run_suite(suite, work_dir, '--skip-profile', '--jobs', '2')[1]
    return work_dir, output, suite


@pytest.mark.xdist_group('smoke')  # one worker: the module fixture runs once
def test_every_variant_trains_and_is_compared(smoke):
    from mmdrconv.suite.stats import NO_DIFFERENCE
    work_dir, output, _ = smoke
    for name in ('results.json', 'results.csv', 'results.md', 'metrics.png',
                 'accuracy_vs_macs.png', 'accuracy_vs_train_time.png',
                 'training_curves.png', 'validation_curves.png'):
        assert osp.getsize(osp.join(work_dir, name)) > 0, name
    with open(osp.join(work_dir, 'results.json')) as f:
        results = json.load(f)
    variants = {(c['task'], c['variant']) for c in results['cells']}
    assert len(variants) == len(results['cells']) == 18
    assert {v for _, v in variants} == {
        'standard', 'drconv', 'drconv_mixture', 'drconv_paper', 'dcnv2',
        'control_1x1', 'control_frozen'}
    assert all(c['status'] == 'ok' for c in results['cells'])
    for cell in results['cells']:
        # evaluations=4 on a 2-iteration budget: one per iteration
        assert [p['iter'] for p in cell['curve']] == [1, 2]
        assert cell['curve'][-1]['metrics'] == cell['metrics']
        if cell['task'].startswith('cityscapes'):
            # Evaluation noise: mIoU on each half of the val set as well.
            assert {'mIoU@half0', 'mIoU@half1'} <= set(cell['metrics'])
        pairing = cell['pairing']
        twin = next(c for c in results['cells'] if c['task'] == cell['task']
                    and c['variant'] == 'standard')
        assert pairing['first_batch'] == twin['pairing']['first_batch']
        assert pairing['shared'] > 0 and pairing['seed'] == 0
        if cell['variant'] in ('standard', 'control_frozen'):
            # The frozen control has every parameter of its twin.
            assert pairing['not_shared'] == 0
        elif cell['variant'] == 'control_1x1':
            assert set(pairing['not_shared_modules']) == (
                MOBILENET_WEAKENED if 'mobilenet' in cell['task']
                else RESNET_WEAKENED)
        else:
            assert pairing['not_shared'] > 0
    ranges = {'coco/bbox_mAP': (0, 1), 'coco/segm_mAP': (0, 1),
              'mIoU': (0, 100)}
    for row in results['summary']:
        for metric, stats in row['metrics'].items():
            low, high = ranges[metric]
            assert stats['n'] == 1 and low <= stats['mean'] <= high
            assert stats['low'] is None  # one seed: no interval
        assert row['train_time_per_iter']['mean'] > 0
        for gain in row['late_gain'].values():
            assert (gain['from_iter'], gain['to_iter']) == (1.5, 2)
        if row['task'].startswith('cityscapes'):
            assert row['evaluation_se']['mIoU']['n'] == 1
            assert row['evaluation_se']['mIoU']['se'] >= 0
        if row['variant'] == 'standard':
            assert row['difference'] is None
        else:
            assert all(d['verdict'] == NO_DIFFERENCE
                       for d in row['difference'].values())
            assert all(d['mde']['absolute'] is None and 'at least 2' in
                       d['mde']['reason'] for d in row['difference'].values())
    with open(osp.join(work_dir, 'results.md')) as f:
        report = f.read()
    for task in ('coco-instance', 'cityscapes-semantic',
                 'cityscapes-mobilenetv2'):
        assert f'## {task}' in report
    assert 'seeds: [0]' in report and '2 iterations' in report
    assert 'from seed 0 alone, no interval' in report
    assert 'cells ran 2 at a time' in report
    assert 'MDE coco/bbox_mAP (% of twin)' in report
    assert '[smoke 1/18]' in output and 'Iter(train)' in output


@pytest.mark.xdist_group('smoke')
def test_rerun_skips_finished_and_resumes_interrupted(smoke):
    work_dir, _, suite = smoke
    # Interrupt one cell after the fact: its result is gone, its last
    # checkpoint remains.
    cell = osp.join(work_dir, 'cityscapes-semantic', 'drconv', 'seed0')
    os.remove(osp.join(cell, 'cell_result.json'))
    assert osp.isfile(osp.join(cell, 'last_checkpoint'))
    output = run_suite(suite, work_dir, '--skip-profile', '--jobs', '2')[1]
    assert output.count('finished earlier, skipped') == 17
    assert 'resuming from its last checkpoint' in output
    with open(osp.join(cell, 'cell_result.json')) as f:
        result = json.load(f)
    assert result['status'] == 'ok'
    # The curve and the pairing survive the resume (the last evaluation is
    # redone).
    assert [p['iter'] for p in result['curve']] == [1, 2]
    assert result['pairing']['shared'] > 0
    log = open(osp.join(cell, 'cell.log')).read()
    assert 'resumed epoch: 0, iter: 2' in log


@pytest.mark.xdist_group('smoke')
def test_a_cells_saved_config_tests_its_checkpoint(smoke, tmp_path):
    """What a user tries on a finished cell: tools/test.py with the config
    saved in its work dir and its checkpoint. The config names the
    modules of the suite's hooks and metric (custom_imports), so it loads
    on its own."""
    work_dir = smoke[0]
    cell = osp.join(work_dir, 'cityscapes-semantic', 'drconv', 'seed0')
    config = osp.join(cell, 'deeplabv3_r50-w16-d8-drconv-c3-c5_'
                      'synthetic-cityscapes.py')
    result = subprocess.run(
        [sys.executable, 'tools/test.py', config,
         osp.join(cell, 'iter_2.pth'), '--work-dir', str(tmp_path)],
        cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'mIoU:' in result.stdout + result.stderr


def test_profiles_count_the_deformable_conv(tmp_path, monkeypatch):
    """Each variant profiled in its own process; DCNv2's offset conv and
    sampling add multiply-adds (DRConv's count: test_drconv_layer.py)."""
    from mmdrconv.suite import load_suite
    from mmdrconv.suite.run import profile_variants
    monkeypatch.chdir(REPO)
    suite = load_suite('configs/suites/smoke.py', str(tmp_path))
    task = suite.tasks[0]
    task.variants = {k: task.variants[k] for k in ('standard', 'dcnv2')}
    task.image_size = (64, 64)
    suite.tasks = [task]
    profiles = profile_variants(suite)
    standard, dcnv2 = (profiles[(task.name, v)] for v in task.variants)
    for profile in (standard, dcnv2):
        assert profile['params'] > 1e6 and profile['latency_ms'] > 0
        assert profile['batch_size'] == 2
    assert dcnv2['params'] > standard['params']
    assert dcnv2['macs'] > standard['macs']


def test_a_failing_cell_is_reported_and_the_others_run(tmp_path,
                                                       synthetic_data):
    suite = tmp_path / 'broken.py'
    suite.write_text(
        f"_base_ = '{smoke_suite(tmp_path, synthetic_data)}'\n"
        "suite = dict(name='broken', tasks=[\n"
        "    dict(task, variants=dict(standard=task['variants']['standard']),"
        " cfg_options={'model.backbone.depth': 7}"
        " if task['name'] == 'coco-instance' else {})\n"
        "    for task in _base_.suite.tasks[:2]])\n")
    code, _ = run_suite(str(suite), str(tmp_path / 'out'), '--skip-profile',
                        '--jobs', '2', check=False)
    assert code != 0  # failures are the exit status
    with open(tmp_path / 'out' / 'results.json') as f:
        cells = json.load(f)['cells']
    status = {(c['task'], c['variant']): c['status'] for c in cells}
    assert status == {('coco-instance', 'standard'): 'failed',
                      ('cityscapes-semantic', 'standard'): 'ok'}
    failed = [c for c in cells if c['status'] == 'failed']
    assert all('depth' in c['error'] or 'KeyError' in c['error']
               for c in failed)
    report = (tmp_path / 'out' / 'results.md').read_text()
    assert 'FAILED standard seed 0' in report


def test_paper_preset_declares_real_configs_under_torchrun(monkeypatch):
    from mmdrconv.suite import load_suite
    monkeypatch.chdir(REPO)  # suite files name configs relative to the repo
    from mmdrconv.suite.run import _cell_command
    suite = load_suite(osp.join(REPO, 'configs/suites/paper.py'))
    cells = suite.cells()
    assert len(cells) == 25 and suite.seeds == [0]
    by_task = {c.task.name: c for c in cells}
    det = _cell_command(suite, by_task['coco-mask-rcnn'], resume=False)
    seg = _cell_command(suite, by_task['cityscapes-deeplabv3'], resume=True)
    assert det[1:3] == ['-m', 'torch.distributed.run']
    assert '--nproc_per_node=8' in det and '--nproc_per_node=4' in seg
    assert det[-2:] == ['--launcher', 'pytorch'] and '--resume' in seg
    # The suite's dataset root is where every cell reads its data.
    assert det[det.index('--data-root') + 1] == 'data/coco'
    assert seg[seg.index('--data-root') + 1] == 'data/cityscapes'
    assert all(osp.isfile(osp.join(REPO, c.config)) for c in cells)
    # Every variant of the full preset but the controls has a real-data
    # twin here.
    full = load_suite(osp.join(REPO, 'configs/suites/full.py'))
    paper_variants = {v for t in suite.tasks for v in t.variants}
    assert {v for t in full.tasks for v in t.variants
            if not v.startswith('control_')} <= paper_variants


def test_jobs_must_be_a_positive_count(capsys):
    from mmdrconv.cli.suite import main
    from mmdrconv.suite.run import run_suite
    with pytest.raises(SystemExit) as exit_:
        main(['configs/suites/smoke.py', '--jobs', '0'])
    assert exit_.value.code == 2
    assert '--jobs must be at least 1, got 0' in capsys.readouterr().err
    with pytest.raises(ValueError, match='jobs must be a positive int'):
        run_suite('configs/suites/smoke.py', jobs=1.5)
