"""The smoke preset of the benchmark suite, end to end, and its re-runs."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


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


def run_suite(suite, work_dir, *options, check=True):
    result = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/suite.py'), suite,
         '--work-dir', work_dir, *options], cwd=osp.dirname(work_dir),
        capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    if check:
        assert result.returncode == 0, output[-4000:]
    return result.returncode, output


@pytest.fixture(scope='module')
def smoke(tmp_path_factory, synthetic_data):
    folder = tmp_path_factory.mktemp('suite')
    suite = smoke_suite(folder, synthetic_data)
    work_dir = str(folder / 'smoke')
    return work_dir, run_suite(suite, work_dir)[1], suite


def test_outputs_exist_and_metrics_are_in_range(smoke):
    work_dir, output, _ = smoke
    for name in ('results.json', 'results.csv', 'results.md', 'metrics.png',
                 'accuracy_vs_macs.png', 'training_curves.png'):
        assert osp.getsize(osp.join(work_dir, name)) > 0, name
    with open(osp.join(work_dir, 'results.json')) as f:
        results = json.load(f)
    assert len(results['cells']) == 4
    assert all(c['status'] == 'ok' for c in results['cells'])
    ranges = {'coco/bbox_mAP': (0, 1), 'coco/segm_mAP': (0, 1),
              'mIoU': (0, 100)}
    for row in results['summary']:
        for metric, stats in row['metrics'].items():
            low, high = ranges[metric]
            assert stats['n'] == 1 and low <= stats['mean'] <= high
        profile = row['profile']
        assert profile['params'] > 1e6 and profile['macs'] > 1e8
        assert profile['latency_ms'] > 0 and row['train_time_per_iter'] > 0
    drconv = [r for r in results['summary'] if r['variant'] == 'drconv']
    standard = [r for r in results['summary'] if r['variant'] == 'standard']
    # DRConv adds its guide and generator: more params, at least the MACs.
    for d, s in zip(drconv, standard):
        assert d['profile']['params'] > s['profile']['params']
        assert d['profile']['macs'] >= s['profile']['macs']
    with open(osp.join(work_dir, 'results.md')) as f:
        report = f.read()
    assert 'coco-instance' in report and 'cityscapes-semantic' in report
    assert 'seeds: [0]' in report and '4 iterations' in report
    assert '[smoke 1/4]' in output and 'Iter(train)' in output


def test_rerun_skips_finished_and_resumes_interrupted(smoke):
    work_dir, _, suite = smoke
    # Interrupt one cell after the fact: its result is gone, its last
    # checkpoint remains.
    cell = osp.join(work_dir, 'cityscapes-semantic', 'drconv', 'seed0')
    os.remove(osp.join(cell, 'cell_result.json'))
    assert osp.isfile(osp.join(cell, 'last_checkpoint'))
    output = run_suite(suite, work_dir)[1]
    assert output.count('finished earlier, skipped') == 3
    assert 'resuming from its last checkpoint' in output
    with open(osp.join(cell, 'cell_result.json')) as f:
        assert json.load(f)['status'] == 'ok'
    log = open(osp.join(cell, 'cell.log')).read()
    assert 'resumed epoch: 0, iter: 4' in log


def test_a_failing_cell_is_reported_and_the_others_run(tmp_path,
                                                       synthetic_data):
    suite = tmp_path / 'broken.py'
    suite.write_text(
        f"_base_ = '{smoke_suite(tmp_path, synthetic_data)}'\n"
        "suite = dict(name='broken', tasks=[\n"
        "    dict(task, max_iters=2, cfg_options={'model.backbone.depth': 7}"
        " if task['name'] == 'coco-instance' else {})\n"
        "    for task in _base_.suite.tasks])\n")
    code, _ = run_suite(str(suite), str(tmp_path / 'out'), '--skip-profile',
                        check=False)
    assert code != 0  # failures are the exit status
    with open(tmp_path / 'out' / 'results.json') as f:
        cells = json.load(f)['cells']
    status = {(c['task'], c['variant']): c['status'] for c in cells}
    assert status[('coco-instance', 'standard')] == 'failed'
    assert status[('cityscapes-semantic', 'standard')] == 'ok'
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
    assert len(cells) == 18 and suite.seeds == [0]
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
