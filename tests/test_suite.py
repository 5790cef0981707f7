"""The benchmark suite: its statistics on a fabricated results table
(against hand-computed values), the smoke preset end to end, and re-runs."""
import csv
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# Student t quantiles t(0.975, df) from a printed table.
T_DF1, T_DF2 = 12.706, 4.303


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
        results.append(
            dict(status='failed', error='RuntimeError: boom') if value is None
            else dict(status='ok', metrics=dict(acc=value),
                      train_time_per_iter=0.1 * (cell.seed + 1)))
    profiles = {('toy', v): dict(params=2e6, macs=4e9, batch_size=2,
                                 latency_ms=5.0)
                for v in task.variants}
    return suite, cells, results, profiles


def test_report_of_a_fabricated_table(tmp_path):
    from mmdrconv.suite.report import write_report
    from mmdrconv.suite.stats import NO_DIFFERENCE
    suite, cells, results, profiles = _fabricated_suite(tmp_path)
    report = write_report(suite, cells, results, profiles, wall_time_s=60)
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

    text = open(report['markdown']).read()
    assert '| drconv | 0 1 2 | 0.617 [0.579, 0.655] | 0.600, 0.630, 0.620 |' \
        in text
    assert '| drconv | +0.097 [+0.059, +0.135] | ahead |' in text
    assert '- worse vs standard on acc: -0.100 [-0.125, -0.075] over ' \
        'seeds 0, 1, 2: behind.' in text
    assert f'- dcnv2 vs standard on acc: +0.040 [-0.087, +0.167] over ' \
        f'seeds 0, 1: {NO_DIFFERENCE}.' in text
    assert 'FAILED dcnv2 seed 2: `RuntimeError: boom`' in text
    assert 'GMACs / image (64x96)' in text and '| 2.000 |' in text
    with open(report['csv']) as f:
        lines = list(csv.DictReader(f))
    worse = next(line for line in lines if line['variant'] == 'worse')
    assert float(worse['diff_mean']) == pytest.approx(-0.10)
    assert worse['verdict'] == 'behind' and worse['seeds'] == '0 1 2'
    for name in ('metrics.png', 'accuracy_vs_macs.png',
                 'accuracy_vs_train_time.png', 'training_curves.png'):
        assert osp.getsize(osp.join(tmp_path, name)) > 0, name


def test_deformable_conv_multiply_adds_are_counted():
    from mmcv.ops import ModulatedDeformConv2dPack

    from mmdrconv.analysis import count_complexity
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


def test_every_variant_trains_and_is_compared(smoke):
    from mmdrconv.suite.stats import NO_DIFFERENCE
    work_dir, output, _ = smoke
    for name in ('results.json', 'results.csv', 'results.md', 'metrics.png',
                 'accuracy_vs_macs.png', 'accuracy_vs_train_time.png',
                 'training_curves.png'):
        assert osp.getsize(osp.join(work_dir, name)) > 0, name
    with open(osp.join(work_dir, 'results.json')) as f:
        results = json.load(f)
    variants = {(c['task'], c['variant']) for c in results['cells']}
    assert len(variants) == len(results['cells']) == 13
    assert {v for _, v in variants} == {
        'standard', 'drconv', 'drconv_mixture', 'drconv_paper', 'dcnv2'}
    assert all(c['status'] == 'ok' for c in results['cells'])
    ranges = {'coco/bbox_mAP': (0, 1), 'coco/segm_mAP': (0, 1),
              'mIoU': (0, 100)}
    for row in results['summary']:
        for metric, stats in row['metrics'].items():
            low, high = ranges[metric]
            assert stats['n'] == 1 and low <= stats['mean'] <= high
            assert stats['low'] is None  # one seed: no interval
        assert row['train_time_per_iter']['mean'] > 0
        if row['variant'] == 'standard':
            assert row['difference'] is None
        else:
            assert all(d['verdict'] == NO_DIFFERENCE
                       for d in row['difference'].values())
    with open(osp.join(work_dir, 'results.md')) as f:
        report = f.read()
    for task in ('coco-instance', 'cityscapes-semantic',
                 'cityscapes-mobilenetv2'):
        assert f'## {task}' in report
    assert 'seeds: [0]' in report and '2 iterations' in report
    assert 'from seed 0 alone, no interval' in report
    assert 'cells ran 2 at a time' in report
    assert '[smoke 1/13]' in output and 'Iter(train)' in output


def test_rerun_skips_finished_and_resumes_interrupted(smoke):
    work_dir, _, suite = smoke
    # Interrupt one cell after the fact: its result is gone, its last
    # checkpoint remains.
    cell = osp.join(work_dir, 'cityscapes-semantic', 'drconv', 'seed0')
    os.remove(osp.join(cell, 'cell_result.json'))
    assert osp.isfile(osp.join(cell, 'last_checkpoint'))
    output = run_suite(suite, work_dir, '--skip-profile', '--jobs', '2')[1]
    assert output.count('finished earlier, skipped') == 12
    assert 'resuming from its last checkpoint' in output
    with open(osp.join(cell, 'cell_result.json')) as f:
        assert json.load(f)['status'] == 'ok'
    log = open(osp.join(cell, 'cell.log')).read()
    assert 'resumed epoch: 0, iter: 2' in log


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
    # Every variant of the full preset has a real-data twin here.
    full = load_suite(osp.join(REPO, 'configs/suites/full.py'))
    paper_variants = {v for t in suite.tasks for v in t.variants}
    assert {v for t in full.tasks for v in t.variants} <= paper_variants


def test_jobs_must_be_a_positive_count(capsys):
    from mmdrconv.cli.suite import main
    from mmdrconv.suite.run import run_suite
    with pytest.raises(SystemExit) as exit_:
        main(['configs/suites/smoke.py', '--jobs', '0'])
    assert exit_.value.code == 2
    assert '--jobs must be at least 1, got 0' in capsys.readouterr().err
    with pytest.raises(ValueError, match='jobs must be a positive int'):
        run_suite('configs/suites/smoke.py', jobs=1.5)
