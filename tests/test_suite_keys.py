"""A suite cell's result is reused only while what produced it is unchanged
(mmdrconv.suite.keys): budget, data, config, protocol, code; stale
checkpoints are never resumed; variants that cannot train stop the run
before any cell starts. Cells run as fakes that record their command."""
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
    from mmdrconv.suite import launchers
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

    monkeypatch.setattr(launchers, 'stream', fake_cell_process)
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
    # Once: the next invocation reruns nothing and says so.
    _, results, _ = run(write_suite(tmp_path, max_iters=4), out, capsys)
    assert len(cells) == 4 and 'rerun_because' not in results[0]
    assert '- rerun' not in (out / 'results.md').read_text()
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
    from mmdrconv.suite import launchers
    fake_cell = launchers.stream
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

    monkeypatch.setattr(launchers, 'stream',
                        cell_while_another_run_regenerates)
    run(write_suite(tmp_path), tmp_path / 'out', capsys)
    assert codes == [3, 3]  # refused while the cells ran
    images = sorted(os.listdir(tmp_path / 'data' / 'train'))
    assert images == ['train_000000.png']  # the suite's num_train=1
    assert regenerate() == 0  # free after the suite


def test_variants_that_cannot_train_stop_the_run_before_any_cell(
        tmp_path, cells, capsys, monkeypatch):
    """Every variant with a cell to train is loaded, its data checked and
    its model built before the first cell starts, whatever the launcher:
    the run stops naming each failing variant, and trains nothing."""
    from mmdrconv.suite.jobs import SuiteError
    from mmdrconv.suite.launchers import LocalLauncher
    from mmdrconv.suite.run import run_suite
    path = write_suite(tmp_path, options={'optim_wraper.optimizer.lr': 0.1})
    with pytest.raises(SuiteError) as error:
        run_suite(path, str(tmp_path / 'out'), skip_profile=True)
    assert cells == []
    assert str(error.value).startswith(
        '2 variant(s) cannot train, so no cell was started:\n'
        "  - det | a: ConfigOptionError: --cfg-options "
        "optim_wraper.optimizer.lr: 'optim_wraper' is not in the config; "
        "did you mean 'optim_wrapper'?\n  - det | b: ConfigOptionError")

    # A model that does not build (b), data missing on disk (c): the others
    # are fine, yet nothing trains, and no launcher is asked to.
    broken = tmp_path / 'broken.py'
    broken.write_text(f"_base_ = '{DET}'\n"
                      'model = dict(backbone=dict(depth=7))\n')
    text = open(write_suite(tmp_path)).read().replace(
        "b='", f"b='{broken}', c='{DET}', d='").replace(
        'datasets=dict(', "datasets=dict(empty=dict(kind='coco', root="
        f"'{tmp_path}'), ")
    text += ("suite['tasks'].append(dict(suite['tasks'][0], name='empty', "
             "dataset='empty', variants=dict(c=suite['tasks'][0]"
             "['variants']['c'])))\n")
    (tmp_path / 'suite.py').write_text(text)

    class Unused(LocalLauncher):
        def run(self, suite, batch):
            raise AssertionError('no launcher may run')

    with pytest.raises(SuiteError) as error:
        run_suite(str(tmp_path / 'suite.py'), str(tmp_path / 'out'),
                  skip_profile=True, launcher=Unused())
    message = str(error.value)
    assert message.startswith('2 variant(s) cannot train')
    assert '  - det | b: KeyError: ' in message and 'depth' in message
    assert f'  - empty | c: FileNotFoundError: COCO dataset files not ' \
        f'found: {tmp_path}/annotations/instances_train.json' in message
    assert cells == []


def test_profiles_are_redone_when_their_key_changes(tmp_path, monkeypatch):
    from mmdrconv.suite import launchers, load_suite, run as suite_run
    profiled = []

    def fake_profile(command, log_file, prefix, threads=None):
        profiled.append(command)
        out = command[command.index('--out') + 1]
        with open(out, 'w') as f:
            json.dump(dict(params=1.0, macs=2.0, batch_size=2), f)
        return 0, ''

    monkeypatch.setattr(launchers, 'stream', fake_profile)
    suite = load_suite(write_suite(tmp_path), str(tmp_path / 'out'))
    suite_run.profile_variants(suite)
    suite_run.profile_variants(suite)
    assert len(profiled) == 2  # one per variant, once
    suite.tasks[0].image_size = (64, 64)
    suite_run.profile_variants(suite)
    assert len(profiled) == 4


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """The key's code version read from a copy of the package, to edit."""
    import shutil

    from mmdrconv.suite import keys
    copy = tmp_path / 'mmdrconv'
    shutil.copytree(keys.PACKAGE, copy,
                    ignore=shutil.ignore_patterns('__pycache__'))
    monkeypatch.setattr(keys, 'PACKAGE', str(copy))
    keys.code_version.cache_clear()
    yield copy
    keys.code_version.cache_clear()


def _edit(path):
    with open(path, 'a') as f:
        f.write('# edited\n')
    from mmdrconv.suite import keys
    keys.code_version.cache_clear()  # as a new suite process would


def test_editing_the_report_or_launchers_keeps_finished_cells(
        tmp_path, cells, capsys, package_copy):
    """A cell's key covers the code that runs in a cell (keys.py): an edit
    of the report, the statistics, the launchers or a tool leaves finished
    cells finished; an edit of the layer or the data generator reruns them,
    saying so (the cell's other modules: the test below)."""
    out = tmp_path / 'out'
    run(write_suite(tmp_path), out, capsys)
    assert len(cells) == 2
    for part in ('suite/report.py', 'suite/stats.py', 'suite/plots.py',
                 'suite/slurm.py', 'suite/launchers.py', 'suite/jobs.py',
                 'suite/run.py', 'suite/spec.py', 'cli/suite.py',
                 'cli/train.py', 'analysis/profile.py', 'deploy.py'):
        _edit(package_copy / part)
    _, _, log = run(write_suite(tmp_path), out, capsys)
    assert len(cells) == 2 and log.count('finished earlier, skipped') == 2
    for part, reruns in (('core/layers/drconv.py', 4),
                         ('datasets/synthetic/coco.py', 6)):
        _edit(package_copy / part)
        _, results, log = run(write_suite(tmp_path), out, capsys)
        assert len(cells) == reruns, part
        assert log.count('earlier run out of date, rerunning: code changed '
                         '(source ') == 2, part
        assert results[0]['rerun_because'].startswith('code changed')


def _imported_modules(*entry_points):
    """Every module of mmdrconv that importing ``entry_points`` may import,
    at module level or inside a function (read from the source, so an
    import reached only when a cell trains counts too), with the packages
    that hold them."""
    import ast

    from mmdrconv.suite import keys
    package = osp.dirname(keys.PACKAGE)

    def source(name):
        path = osp.join(package, *name.split('.'))
        for candidate in (path + '.py', osp.join(path, '__init__.py')):
            if osp.isfile(candidate):
                return candidate
        return None

    found, todo = set(), list(entry_points)
    while todo:
        name = todo.pop()
        path = source(name)
        if name in found or path is None:
            continue
        found.add(name)
        parts = name.split('.')
        todo += ['.'.join(parts[:i]) for i in range(1, len(parts))]
        here = name if path.endswith('__init__.py') else \
            name.rpartition('.')[0]
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here
                for _ in range(node.level - 1):
                    base = base.rpartition('.')[0]
                module = '.'.join(filter(None, (
                    base if node.level else '', node.module or '')))
                todo += [module] + [f'{module}.{a.name}' for a in node.names]
    return {osp.relpath(source(name), keys.PACKAGE).replace(os.sep, '/')
            for name in found if name.split('.')[0] == 'mmdrconv'}


def test_no_module_a_cell_or_profile_imports_is_left_out_of_its_key():
    from mmdrconv.suite.cell import SUITE_MODULES
    from mmdrconv.suite.keys import source_files
    cell = _imported_modules('mmdrconv', 'mmdrconv.openmmlab',
                             'mmdrconv.cli.suite_cell', *SUITE_MODULES)
    assert {'core/layers/drconv.py', 'suite/hooks.py', 'suite/cell.py',
            'runner.py', 'datasets/synthetic/coco.py'} <= cell
    assert cell <= set(source_files('cell')), \
        sorted(cell - set(source_files('cell')))
    # What the key leaves out is indeed not imported by a cell.
    assert not {'suite/report.py', 'suite/spec.py', 'suite/slurm.py',
                'suite/launchers.py', 'suite/jobs.py'} & cell
    profile = _imported_modules('mmdrconv', 'mmdrconv.openmmlab',
                                'mmdrconv.cli.benchmark')
    assert 'analysis/profile.py' in profile
    assert profile <= set(source_files('profile')), \
        sorted(profile - set(source_files('profile')))


def test_a_changed_protocol_reruns(tmp_path, cells, capsys):
    """The evaluations along training and the metrics evaluated on each
    half of the val set are part of a cell's key (its 'protocol')."""
    out = tmp_path / 'out'
    run(write_suite(tmp_path), out, capsys)
    path = write_suite(tmp_path)
    with open(path) as f:
        text = f.read()
    with open(path, 'w') as f:
        f.write(text.replace('max_iters=', 'evaluations=2, max_iters='))
    _, _, log = run(path, out, capsys)
    assert len(cells) == 4
    assert log.count('protocol changed (evaluations None -> 2)') == 2
    assert '--evaluations' in cells[-1]


def test_a_rerun_that_trains_nothing_keeps_the_runs_wall_time(
        tmp_path, cells, capsys):
    """results.json keeps the time of the invocations that produced its
    results; one that trains nothing adds nothing, and the report says
    which invocation measured what."""
    out = tmp_path / 'out'
    run(write_suite(tmp_path), out, capsys)
    first = json.loads((out / 'results.json').read_text())
    started = first['timing']['this_invocation']['started']
    assert first['timing']['invocations'] == [
        dict(first['timing']['this_invocation'], produced=2)]
    assert first['wall_time_s'] == \
        first['timing']['this_invocation']['wall_time_s'] > 0
    assert {c['invocation'] for c in first['cells']} == {started}

    run(write_suite(tmp_path), out, capsys)  # trains nothing
    second = json.loads((out / 'results.json').read_text())
    assert len(cells) == 2
    assert second['wall_time_s'] == first['wall_time_s']
    assert second['timing']['invocations'] == first['timing']['invocations']
    assert second['timing']['this_invocation']['cells_run'] == 0
    report = (out / 'results.md').read_text()
    assert 'ran 0 cell(s) and 0 profile(s)' in report
    assert f'- results from {started}: ' in report
    assert '2 cell result(s) and profile(s)' in report

    (out / 'det/b/seed0/cell_result.json').unlink()  # interrupted
    run(write_suite(tmp_path), out, capsys)  # resumes it
    third = json.loads((out / 'results.json').read_text())
    assert len(cells) == 3
    earlier, now = third['timing']['invocations']
    assert (earlier['started'], earlier['produced']) == (started, 1)
    assert now['produced'] == 1 and now['cells_run'] == 1
    assert third['wall_time_s'] == pytest.approx(
        earlier['wall_time_s'] + now['wall_time_s'])
    assert third['timing']['cells_wall_time_s'] == pytest.approx(
        sum(c['wall_time_s'] for c in third['cells']))


def test_timing_of_results_from_before_invocations_were_recorded():
    from mmdrconv.suite.invocations import invocation_record, timing
    this = invocation_record('2026-12-04 10:00:00', 'suite.py s.py', 3.0,
                             0, 0)
    old = dict(command='suite.py s.py', wall_time_s=600.0)
    results = [dict(status='ok', wall_time_s=250.0)] * 2
    times = timing(old, results, {}, this)
    assert times['run_wall_time_s'] == 600.0  # not the rerun's 3 s
    assert times['cells_wall_time_s'] == 500.0
    assert times['invocations'] == [dict(
        started=None, command='suite.py s.py', wall_time_s=600.0,
        cells_run=None, profiles_run=None, produced=2)]
    # Once every result is newer, the old invocation is no part of it.
    stamped = [dict(r, invocation=this['started']) for r in results]
    assert timing(old, stamped, {}, this)['run_wall_time_s'] == 3.0


def test_ctrl_c_ends_the_run_with_a_message_not_a_traceback(
        tmp_path, cells, capsys, monkeypatch):
    from mmdrconv.suite import launchers
    from mmdrconv.suite.run import run_suite

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(launchers, 'stream', interrupted)
    with pytest.raises(SystemExit) as exit_:
        run_suite(write_suite(tmp_path), str(tmp_path / 'out'),
                  skip_profile=True)
    assert exit_.value.code == 130
    assert capsys.readouterr().err == (
        '\n[t] interrupted: finished cells are kept; run the same command '
        'again to skip them and resume the others from their last '
        'checkpoints\n')


def test_an_interrupted_invocation_counts_in_the_run_wall_time(
        tmp_path, cells, capsys, monkeypatch):
    """Ctrl-C after one of two cells: no report then, but the cell it
    finished is reused, so the next report lists that invocation and adds
    its time to the run's."""
    from mmdrconv.suite import launchers
    from mmdrconv.suite.invocations import INTERRUPTED_FILE
    from mmdrconv.suite.run import run_suite
    finish_cell = launchers.stream

    def interrupt_the_second(command, *args, **kwargs):
        if cells:
            raise KeyboardInterrupt
        return finish_cell(command, *args, **kwargs)

    out = tmp_path / 'out'
    monkeypatch.setattr(launchers, 'stream', interrupt_the_second)
    with pytest.raises(SystemExit):
        run_suite(write_suite(tmp_path), str(out), skip_profile=True)
    assert len(cells) == 1 and not (out / 'results.json').exists()
    stopped, = json.loads((out / INTERRUPTED_FILE).read_text())
    assert stopped['interrupted'] and stopped['cells_run'] == 1
    assert stopped['wall_time_s'] > 0

    monkeypatch.setattr(launchers, 'stream', finish_cell)
    run(write_suite(tmp_path), out, capsys)
    assert len(cells) == 2
    times = json.loads((out / 'results.json').read_text())['timing']
    earlier, now = times['invocations']
    assert earlier == dict(stopped, produced=1)
    assert now['produced'] == 1
    assert times['run_wall_time_s'] == pytest.approx(
        stopped['wall_time_s'] + now['wall_time_s'])
    report = (out / 'results.md').read_text()
    assert f"- results from {stopped['started']} (interrupted): " in report


def test_a_launcher_is_one_class_sharing_keys_and_results(
        tmp_path, cells, capsys):
    """A launcher that runs each job in this process (the interface of
    launchers.py, nothing else): its cells are recorded as a local run
    records them, so the local launcher then finds them finished."""
    from mmdrconv.suite.jobs import Outcome
    from mmdrconv.suite.launchers import Launcher
    from mmdrconv.suite.run import run_suite

    class Inline(Launcher):
        name = 'inline'

        def processes(self, suite, cell):
            return 1

        def run(self, suite, batch):
            for job in batch.jobs:
                if batch.may_start(job):
                    with open(job.output, 'w') as f:
                        json.dump(dict(status='ok', iters=2, metrics={
                            'coco/bbox_mAP': 0.3}), f)
                    batch.finish(job, Outcome(True, '', 1.5,
                                              record=dict(host='here')))

    out = tmp_path / 'out'
    report = run_suite(write_suite(tmp_path), str(out), skip_profile=True,
                       launcher=Inline())
    assert report['failed'] == 0 and cells == []
    stored = json.loads((out / 'det/a/seed0/cell_result.json').read_text())
    assert stored['host'] == 'here' and stored['wall_time_s'] == 1.5
    assert stored['key']['budget'] == dict(max_iters=2, processes=1)
    _, results, log = run(write_suite(tmp_path), out, capsys)
    assert cells == [] and log.count('finished earlier, skipped') == 2
    assert [r['metrics']['coco/bbox_mAP'] for r in results] == [0.3, 0.3]
