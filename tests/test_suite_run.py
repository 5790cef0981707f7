"""Suite runs (mmdrconv/suite/run.py, jobs.py, launchers.py): the smoke
preset end to end, reruns and resumes, failures, profiles, the paper
preset's commands."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from helpers import MOBILENET_WEAKENED, REPO, RESNET_WEAKENED, smoke_suite

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
    from mmdrconv.suite import load_suite
    from mmdrconv.suite.stats import NO_DIFFERENCE
    work_dir, output, _ = smoke
    for name in ('results.json', 'results.csv', 'results.md', 'metrics.png',
                 'accuracy_vs_macs.png', 'accuracy_vs_train_time.png',
                 'training_curves.png', 'validation_curves.png'):
        assert osp.getsize(osp.join(work_dir, name)) > 0, name
    with open(osp.join(work_dir, 'results.json')) as f:
        results = json.load(f)
    # Every task x variant of the preset (the full preset's, one seed).
    preset = load_suite(smoke[2])
    variants = {(c['task'], c['variant']) for c in results['cells']}
    assert len(variants) == len(results['cells']) == 18
    assert variants == {(t.name, v) for t in preset.tasks
                        for v in t.variants}
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
        if cell['variant'] in ('standard', 'control_frozen', 'control_skip'):
            # The frozen control has every parameter of its twin, the
            # skip control a subset of them.
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
    for task in (t.name for t in preset.tasks):
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
    """A cell that fails once it trains (its optimizer refuses the learning
    rate: config, data and model pass the check before training)."""
    suite = tmp_path / 'broken.py'
    suite.write_text(
        f"_base_ = '{smoke_suite(tmp_path, synthetic_data)}'\n"
        "suite = dict(name='broken', tasks=[\n"
        "    dict(task, variants=dict(standard=task['variants']['standard']),"
        " cfg_options={'optim_wrapper.optimizer.lr': -1} if i == 0 else {})"
        "\n    for i, task in enumerate(_base_.suite.tasks[:2])])\n")
    code, _ = run_suite(str(suite), str(tmp_path / 'out'), '--skip-profile',
                        '--jobs', '2', check=False)
    assert code != 0  # failures are the exit status
    with open(tmp_path / 'out' / 'results.json') as f:
        cells = json.load(f)['cells']
    assert [(c['variant'], c['status']) for c in cells] == [
        ('standard', 'failed'), ('standard', 'ok')]
    failed = [c for c in cells if c['status'] == 'failed']
    assert all('Invalid learning rate: -1' in c['error'] for c in failed)
    report = (tmp_path / 'out' / 'results.md').read_text()
    assert 'FAILED standard seed 0' in report


def test_paper_preset_declares_real_configs_under_torchrun(monkeypatch):
    from mmdrconv.suite import load_suite
    monkeypatch.chdir(REPO)  # suite files name configs relative to the repo
    from mmdrconv.suite.jobs import cell_job
    from mmdrconv.suite.launchers import LocalLauncher
    suite = load_suite(osp.join(REPO, 'configs/suites/paper.py'))
    cells = suite.cells()
    # 28: RetinaNet has every variant of the detection task since suite v4.
    assert len(cells) == 28 and suite.seeds == [0]
    by_task = {c.task.name: c for c in cells}
    local = LocalLauncher()
    det = local.command(suite, cell_job(suite, by_task['coco-mask-rcnn'], {}))
    seg = local.command(suite, cell_job(
        suite, by_task['cityscapes-deeplabv3'], {}, resume=True))
    assert det[1:3] == ['-m', 'torch.distributed.run']
    assert '--nproc_per_node=8' in det and '--nproc_per_node=4' in seg
    assert det[-2:] == ['--launcher', 'pytorch'] and '--resume' in seg
    # Its key counts the processes that share a cell's batch.
    assert local.processes(suite, by_task['coco-mask-rcnn']) == 8
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
    with pytest.raises(SystemExit) as exit_:
        main(['configs/suites/demo.py', '--fixed-seeds', '--until-mde',
              '0.05'])
    assert exit_.value.code == 2
    assert '--fixed-seeds runs the suite file\'s seeds only' in \
        capsys.readouterr().err


@pytest.mark.parametrize('signum', ['SIGINT', 'SIGTERM'])
def test_ctrl_c_stops_the_cells_running_side_by_side(tmp_path, signum):
    """LocalLauncher(jobs=2) interrupted while two cells run (Ctrl-C
    reaching the suite alone, as `kill -INT`, or `kill` within the run's
    SIGTERM handling): both cell processes end at once, nothing is
    recorded for them, no other starts. (Before, SIGTERM ended the suite
    and left its cells training as orphans.)"""
    import signal
    import threading
    import time

    from helpers import fabricated_suite
    from mmdrconv.suite.jobs import Batch, cell_job
    from mmdrconv.suite.launchers import LocalLauncher, sigterm_as_interrupt
    suite, cells, _, _ = fabricated_suite(tmp_path)
    suite.datasets = dict(toy=dict(root='data/toy'))
    batch = Batch(suite, cells[:3])
    pids = tmp_path / 'pids'
    for cell in cells[:3]:
        job = cell_job(suite, cell, {}, '[t]')
        job.command = [sys.executable, '-c', (
            'import os, time\n'
            f"open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
            'time.sleep(60)')]
        batch.jobs.append(job)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    on_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        def interrupt_when_both_run():
            while len(pids.read_text().split()
                      if pids.exists() else ()) < 2:
                time.sleep(0.05)
            os.kill(os.getpid(), getattr(signal, signum))

        threading.Thread(target=interrupt_when_both_run, daemon=True).start()
        start = time.time()
        with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
            LocalLauncher(jobs=2).run(suite, batch)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert signal.getsignal(signal.SIGTERM) is on_sigterm  # restored
    assert time.time() - start < 30
    started = [int(pid) for pid in pids.read_text().split()]
    assert len(started) == 2  # the third never started
    for pid in started:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # gone (reaped by the launcher)
    assert batch.results == [None] * 3
