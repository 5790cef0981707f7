"""A suite cell's result is reused only while what produced it is unchanged
(mmdrconv.suite.keys): budget, data, config, code; stale checkpoints are
never resumed. Cells run as fakes that record their command."""
import json
import os
import os.path as osp

import pytest

from helpers import DET


SUITE = """suite = dict(
    name='t', seeds=[0],
    datasets=dict(coco=dict(kind='coco', root='{root}', generate=True,
                            num_train={num_train}, num_val=1,
                            image_size=(32, 32))),
    tasks=[dict(name='det', dataset='coco', metrics=['coco/bbox_mAP'],
                max_iters={max_iters}, cfg_options={options},
                variants=dict(a='{det}', b='{det}'))])
"""


def write_suite(tmp_path, max_iters=2, num_train=1, options=None):
    path = tmp_path / 'suite.py'
    path.write_text(SUITE.format(root=tmp_path / 'data', det=DET,
                                 max_iters=max_iters, num_train=num_train,
                                 options=options or {}))
    return str(path)


@pytest.fixture
def cells(monkeypatch):
    """Fake cell processes: the 'metric' is max_iters / 10, so a result of
    another budget is told apart from the current one."""
    from mmdrconv.suite import run as suite_run
    launched = []

    def fake_cell_process(command, log_file, prefix, threads=None):
        launched.append(command)
        start = command.index('mmdrconv.cli.suite_cell')
        work_dir, result_file = command[start + 2:start + 4]
        iters = int(command[command.index('--max-iters') + 1])
        checkpoint = osp.join(work_dir, f'iter_{iters}.pth')
        open(checkpoint, 'wb').close()
        with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
            f.write(checkpoint)
        with open(result_file, 'w') as f:
            json.dump(dict(status='ok', metrics={'coco/bbox_mAP': iters / 10},
                           iters=iters, train_time_per_iter=0.1), f)
        return 0, ''

    monkeypatch.setattr(suite_run, '_stream', fake_cell_process)
    return launched


def run(path, out, capsys):
    from mmdrconv.suite.run import run_suite
    report = run_suite(path, str(out), skip_profile=True)
    cells = json.loads((out / 'results.json').read_text())['cells']
    return report, cells, capsys.readouterr().out


def test_a_changed_budget_data_or_config_reruns_and_says_why(
        tmp_path, cells, capsys):
    out = tmp_path / 'out'
    run(write_suite(tmp_path), out, capsys)
    assert len(cells) == 2
    _, results, log = run(write_suite(tmp_path), out, capsys)
    assert len(cells) == 2 and log.count('finished earlier, skipped') == 2
    stored = json.loads((out / 'det/a/seed0/cell_result.json').read_text())
    assert stored['key']['budget'] == dict(max_iters=2, processes=1)
    assert stored['key']['seed'] == 0
    assert stored['key']['dataset']['num_train'] == 1

    # Budget 2 -> 4: the old numbers (0.2) must not be reported.
    _, results, log = run(write_suite(tmp_path, max_iters=4), out, capsys)
    assert len(cells) == 4
    assert log.count('earlier run out of date, rerunning: budget changed '
                     '(max_iters 2 -> 4)') == 2
    assert [c['metrics']['coco/bbox_mAP'] for c in results] == [0.4, 0.4]
    assert [c['iters'] for c in results] == [4, 4]
    assert results[0]['rerun_because'].startswith('budget changed')
    assert '- rerun (earlier result out of date): det | a | seed 0: budget ' \
        'changed (max_iters 2 -> 4)' in (out / 'results.md').read_text()
    # The earlier run is set aside, not resumed from and not lost.
    assert '--resume' not in cells[-1]
    stale = json.loads(
        (out / 'det/a/seed0.stale/cell_result.json').read_text())
    assert stale['iters'] == 2

    _, _, log = run(write_suite(tmp_path, max_iters=4, num_train=2), out,
                    capsys)
    assert len(cells) == 6
    assert 'dataset changed (num_train 1 -> 2)' in log

    _, _, log = run(write_suite(tmp_path, max_iters=4, num_train=2,
                                options={'optim_wrapper.optimizer.lr': 0.1}),
                    out, capsys)
    assert len(cells) == 8 and "config changed (the variant's config" in log


def test_a_changed_code_version_reruns(tmp_path, cells, capsys,
                                       monkeypatch):
    from mmdrconv.suite import keys
    out = tmp_path / 'out'
    run(write_suite(tmp_path), out, capsys)
    real = keys.code_version()
    assert real['mmdrconv'] and len(real['source']) == 16
    monkeypatch.setattr(keys, 'code_version',
                        lambda: dict(real, source='0' * 16))
    _, _, log = run(write_suite(tmp_path), out, capsys)
    assert len(cells) == 4
    assert f"code changed (source {real['source']!r} -> '{'0' * 16}')" in log


def test_an_interrupted_cell_resumes_only_under_its_own_key(
        tmp_path, cells, capsys):
    out = tmp_path / 'out'
    run(write_suite(tmp_path), out, capsys)
    # Interrupted after its last checkpoint: the result is gone.
    (out / 'det/a/seed0/cell_result.json').unlink()
    run(write_suite(tmp_path), out, capsys)
    assert len(cells) == 3 and '--resume' in cells[-1]
    # Interrupted, then the budget changed: the checkpoint is stale.
    (out / 'det/a/seed0/cell_result.json').unlink()
    _, _, log = run(write_suite(tmp_path, max_iters=3), out, capsys)
    resumed = [c for c in cells[3:] if '--resume' in c]
    assert len(cells) == 5 and resumed == []
    assert 'budget changed (max_iters 2 -> 3)' in log
    assert osp.isfile(out / 'det/a/seed0.stale/last_checkpoint')
    # Interrupted, and its checkpoint deleted since: trained afresh, not
    # failed on a last_checkpoint naming nothing.
    (out / 'det/a/seed0/cell_result.json').unlink()
    (out / 'det/a/seed0/iter_3.pth').unlink()
    _, results, log = run(write_suite(tmp_path, max_iters=3), out, capsys)
    assert len(cells) == 6 and '--resume' not in cells[-1]
    assert 'which does not exist' in log and 'training from scratch' in log
    assert results[0]['status'] == 'ok'


def test_a_result_without_its_key(tmp_path, cells, capsys):
    out = tmp_path / 'out'
    run(write_suite(tmp_path), out, capsys)
    result_file = out / 'det/a/seed0/cell_result.json'
    # The suite stopped after the cell wrote its result but before adding
    # the key: the key it was started under (cell_key.json) vouches for it.
    result = json.loads(result_file.read_text())
    del result['key']
    result_file.write_text(json.dumps(result))
    _, _, log = run(write_suite(tmp_path), out, capsys)
    assert len(cells) == 2 and log.count('finished earlier, skipped') == 2
    # Nothing says what produced it (an older suite): redone.
    result_file.write_text(json.dumps(result))
    (out / 'det/a/seed0/cell_key.json').unlink()
    _, _, log = run(write_suite(tmp_path), out, capsys)
    assert len(cells) == 3
    assert 'no record of what produced it' in log


def _regenerate(root):
    """In a forked process: generate other data into the suite's folder;
    exit code 3 when refused."""
    from mmdrconv.datasets import generate
    from mmdrconv.runlock import FolderInUseError
    try:
        generate('coco', root, num_train=3, num_val=1, image_size=(32, 32))
    except FolderInUseError:
        os._exit(3)
    os._exit(0)


def test_generated_data_is_not_regenerated_while_the_suite_trains(
        tmp_path, cells, capsys, monkeypatch):
    import multiprocessing
    from mmdrconv.suite import run as suite_run
    fake_cell = suite_run._stream
    codes = []

    def regenerate():
        child = multiprocessing.get_context('fork').Process(
            target=_regenerate, args=(str(tmp_path / 'data'), ))
        child.start()
        child.join()
        return child.exitcode

    def cell_while_another_run_regenerates(command, *args, **kwargs):
        codes.append(regenerate())
        return fake_cell(command, *args, **kwargs)

    monkeypatch.setattr(suite_run, '_stream',
                        cell_while_another_run_regenerates)
    run(write_suite(tmp_path), tmp_path / 'out', capsys)
    assert codes == [3, 3]  # refused while the cells ran
    images = sorted(os.listdir(tmp_path / 'data' / 'train'))
    assert images == ['train_000000.png']  # the suite's num_train=1
    assert regenerate() == 0  # free after the suite


def test_a_config_that_does_not_load_fails_its_cells_only(
        tmp_path, cells, capsys):
    path = write_suite(tmp_path, options={'optim_wraper.optimizer.lr': 0.1})
    report, results, _ = run(path, tmp_path / 'out', capsys)
    assert report['failed'] == 2 and cells == []
    assert results[0]['error'] == (
        "ConfigOptionError: --cfg-options optim_wraper.optimizer.lr: "
        "'optim_wraper' is not in the config; did you mean 'optim_wrapper'?")


def test_profiles_are_redone_when_their_key_changes(tmp_path, monkeypatch):
    from mmdrconv.suite import load_suite, run as suite_run
    profiled = []

    def fake_profile(command, log_file, prefix, threads=None):
        profiled.append(command)
        out = command[command.index('--out') + 1]
        with open(out, 'w') as f:
            json.dump(dict(params=1.0, macs=2.0, batch_size=2), f)
        return 0, ''

    monkeypatch.setattr(suite_run, '_stream', fake_profile)
    suite = load_suite(write_suite(tmp_path), str(tmp_path / 'out'))
    suite_run.profile_variants(suite)
    suite_run.profile_variants(suite)
    assert len(profiled) == 2  # one per variant, once
    suite.tasks[0].image_size = (64, 64)
    suite_run.profile_variants(suite)
    assert len(profiled) == 4
