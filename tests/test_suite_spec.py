"""Suite files (mmdrconv/suite/spec.py): mistakes are named when the file
loads; data roots, metric names and cut-short results handled by the run."""
import json

import pytest

from helpers import DET


def _suite_file(tmp_path, text):
    path = tmp_path / 'suite.py'
    path.write_text(text)
    return str(path)


SUITE = """suite = dict(
    name='t', seeds=[0, 1],
    datasets=dict(coco=dict(kind='coco', root='{root}')),
    tasks=[dict(name='det', dataset='{dataset}', metrics={metrics},
                max_iters=2, variants=dict(a='{det}', b='{det}'))])
"""


def _suite(tmp_path, root='data/coco', dataset='coco',
           metrics="['coco/bbox_mAP']"):
    return _suite_file(tmp_path, SUITE.format(
        root=root, dataset=dataset, metrics=metrics, det=DET))


@pytest.mark.parametrize('kwargs, error', [
    (dict(dataset='cocoo'), "task 'det': dataset 'cocoo' is not one of the "
     "suite's datasets ['coco']"),
    (dict(metrics="'coco/bbox_mAP'"), "task 'det': metrics must be a "
     'non-empty list of evaluator keys'),
    (dict(metrics='[]'), "task 'det': metrics must be a non-empty list"),
])
def test_suite_file_mistakes_are_named(tmp_path, kwargs, error):
    from mmdrconv.suite import load_suite
    with pytest.raises(ValueError) as raised:
        load_suite(_suite(tmp_path, **kwargs))
    assert error in str(raised.value)


def test_suite_unknown_keys_and_variants_are_named(tmp_path):
    from mmdrconv.suite import load_suite
    with pytest.raises(ValueError, match=r"task 'det': unknown key\(s\) "
                       r"\['variant'\]; allowed: \["):
        load_suite(_suite_file(tmp_path, SUITE.replace(
            'variants=', 'variant=').format(
                root='r', dataset='coco', metrics="['m']", det=DET)))
    with pytest.raises(FileNotFoundError, match='config of det/b not found: '
                       'configs/nope.py'):
        load_suite(_suite_file(tmp_path, SUITE.replace(
            "b='{det}'", "b='configs/nope.py'").format(
                root='r', dataset='coco', metrics="['m']", det=DET)))


def test_suite_passes_its_data_root_to_every_cell(tmp_path):
    from mmdrconv.suite import load_suite
    from mmdrconv.suite.jobs import cell_command
    suite = load_suite(_suite(tmp_path, root='/data/my-coco'))
    for cell in suite.cells():
        command = cell_command(suite, cell)
        assert command[command.index('--data-root') + 1] == '/data/my-coco'
        # the task's metrics, also on each half of the val set
        start = command.index('--split-half') + 1
        metrics = list(cell.task.metrics)
        assert command[start:start + len(metrics)] == metrics


def test_suite_names_a_missing_dataset_root(tmp_path):
    from mmdrconv.suite import load_suite
    from mmdrconv.suite.run import prepare_data
    suite = load_suite(_suite(tmp_path, root=str(tmp_path / 'no-coco')))
    with pytest.raises(FileNotFoundError) as error:
        prepare_data(suite)
    assert f"dataset 'coco' (tasks det): root '{tmp_path}/no-coco' not " \
           'found' in str(error.value)


def test_suite_metric_the_evaluator_does_not_produce_fails_the_task(
        tmp_path, synthetic_data, monkeypatch):
    """A typo in a metric name: the task fails naming the keys the evaluator
    produced, and its remaining cells do not train."""
    from mmdrconv.suite import launchers, run as suite_run
    launched = []

    def fake_cell_process(command, log_file, prefix, threads=None):
        launched.append(command)
        result_file = command[command.index('mmdrconv.cli.suite_cell') + 3]
        with open(result_file, 'w') as f:
            json.dump(dict(status='ok', metrics={'coco/bbox_mAP': 0.5,
                                                 'coco/segm_mAP': 0.4},
                           iters=2, train_time_per_iter=0.1), f)
        return 0, ''

    monkeypatch.setattr(launchers, 'stream', fake_cell_process)
    path = _suite(tmp_path, root=str(synthetic_data / 'coco'),
                  metrics="['coco/bbox_map']")
    report = suite_run.run_suite(path, str(tmp_path / 'out'),
                                 skip_profile=True)
    assert len(launched) == 1 and report['failed'] == 4
    cells = json.loads((tmp_path / 'out/results.json').read_text())['cells']
    error = ("metric(s) ['coco/bbox_map'] of task 'det' not produced by the "
             f'evaluator of {DET}; it produces: [\'coco/bbox_mAP\', '
             "'coco/segm_mAP']")
    assert [c['error'] for c in cells] == [error] * 4
    # The trained cell's own result stays 'ok' for a corrected suite file.
    first = tmp_path / 'out/det/a/seed0/cell_result.json'
    assert json.loads(first.read_text())['status'] == 'ok'


def test_suite_reruns_a_cell_whose_result_file_was_cut_short(
        tmp_path, synthetic_data, monkeypatch):
    """Killed while writing cell_result.json: the next run redoes the cell
    (it resumes from its checkpoint) instead of failing on the JSON."""
    from mmdrconv.suite import launchers, run as suite_run
    launched = []

    def fake_cell_process(command, log_file, prefix, threads=None):
        launched.append(command)
        result_file = command[command.index('mmdrconv.cli.suite_cell') + 3]
        with open(result_file, 'w') as f:
            json.dump(dict(status='ok', metrics={'coco/bbox_mAP': 0.5},
                           iters=2, train_time_per_iter=0.1), f)
        return 0, ''

    monkeypatch.setattr(launchers, 'stream', fake_cell_process)
    path = _suite(tmp_path, root=str(synthetic_data / 'coco'))
    out = tmp_path / 'out'
    suite_run.run_suite(path, str(out), skip_profile=True)
    assert len(launched) == 4
    (out / 'det/b/seed1/cell_result.json').write_text('{"status": "o')
    report = suite_run.run_suite(path, str(out), skip_profile=True)
    assert len(launched) == 5 and report['failed'] == 0
    assert launched[-1][launched[-1].index('mmdrconv.cli.suite_cell') + 2] == \
        str(out / 'det/b/seed1')


@pytest.mark.parametrize('seeds', ['[]', '0', '[0, 0]', "['a']"])
def test_suite_seeds_must_be_distinct_ints(tmp_path, seeds):
    from mmdrconv.suite import load_suite
    text = SUITE.replace('seeds=[0, 1]', f'seeds={seeds}').format(
        root='r', dataset='coco', metrics="['m']", det=DET)
    with pytest.raises(ValueError, match='seeds must be a non-empty list of '
                       'distinct ints'):
        load_suite(_suite_file(tmp_path, text))


def test_the_old_launcher_key_loads_with_a_deprecation_message(tmp_path):
    """The suite file's launcher=dict(type='torchrun') is now named
    distributed (--launcher is where cells run)."""
    from mmdrconv.suite import load_suite
    text = SUITE.format(root='r', dataset='coco', metrics="['m']", det=DET)
    old = _suite_file(tmp_path, text + "suite['launcher'] = dict("
                      "type='torchrun', gpus=2)\n")
    with pytest.warns(FutureWarning, match=r'launcher=dict\(...\) is now '
                      r'named distributed=dict\(...\); rename it'):
        suite = load_suite(old)
    assert suite.distributed == dict(type='torchrun', gpus=2)
    for extra, error in (
            ("suite['distributed'] = dict(type='torchrn')",
             "distributed type must be 'torchrun', got 'torchrn'"),
            ("suite['distributed'] = dict(type='torchrun', gpus=0)",
             'distributed gpus must be a positive int, got 0'),
            ("suite['distributed'] = dict(type='torchrun', gpu=2)",
             r"distributed: unknown key\(s\) \['gpu'\]"),
            ("suite['distributed'] = suite['launcher'] = "
             "dict(type='torchrun')",
             'suite has both distributed and its old name launcher')):
        with pytest.raises(ValueError, match=error):
            load_suite(_suite_file(tmp_path, text + extra + '\n'))


@pytest.mark.parametrize('rule, error', [
    ('0.05', 'until_mde must be dict(target=REL, max_seeds=N)'),
    ('dict(target=0.05)', "until_mde: missing ['max_seeds']"),
    ('dict(target=5, max_seeds=4)', 'until_mde target is a relative '
     'difference in (0, 1)'),
    ('dict(target=0.05, max_seeds=1)', 'max_seeds must be an int at least '
     "2 and the suite's 2 seeds, got 1"),
    ('dict(target=0.05, max_seeds=4, rounds=2)', "unknown key(s) ['rounds']"),
])
def test_suite_until_mde_mistakes_are_named(tmp_path, rule, error):
    from mmdrconv.suite import load_suite
    path = _suite_file(tmp_path, SUITE.format(
        root='data/coco', dataset='coco', metrics="['coco/bbox_mAP']",
        det=DET) + f"suite['until_mde'] = {rule}\n")
    with pytest.raises(ValueError) as raised:
        load_suite(path)
    assert error in str(raised.value)


def test_the_suite_files_stopping_rule_is_the_default(tmp_path):
    """tools/suite.py takes --until-mde / --max-seeds from the suite file's
    until_mde unless the command line gives them or --fixed-seeds."""
    from mmdrconv.cli.suite import seeding_rule
    from argparse import Namespace
    plain = _suite(tmp_path)
    ruled = tmp_path / 'ruled.py'
    ruled.write_text(open(plain).read() + "suite['until_mde'] = dict("
                     'target=0.08, max_seeds=5)\n')
    ruled = str(ruled)

    def rule(path, until_mde=None, max_seeds=None, fixed_seeds=False):
        return seeding_rule(Namespace(suite=path, work_dir=None,
                                      until_mde=until_mde,
                                      max_seeds=max_seeds,
                                      fixed_seeds=fixed_seeds))
    assert rule(plain) == (None, None)
    assert rule(plain, until_mde=0.05) == (0.05, 10)
    assert rule(ruled) == (0.08, 5)
    assert rule(ruled, until_mde=0.05) == (0.05, 5)
    assert rule(ruled, max_seeds=7) == (0.08, 7)
    assert rule(ruled, fixed_seeds=True) == (None, None)
    with pytest.raises(ValueError, match='--max-seeds goes with'):
        rule(plain, max_seeds=7)
