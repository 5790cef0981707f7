"""The tools refuse, before any work and naming the argument, what a new
user gets wrong: output paths that are files, folders in use by another
run, out-of-range counts, missing arguments of the launch scripts."""
import importlib.util
import os
import os.path as osp
import re
import subprocess

import pytest

from helpers import REPO, SEG, start_holder


def tool(path):
    spec = importlib.util.spec_from_file_location(
        osp.basename(path)[:-3], osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exit_message(main, argv) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code not in (0, None)
    return str(exit_.value.code)


@pytest.fixture
def afile(tmp_path):
    path = tmp_path / 'a file'  # with a space, as a user may have
    path.write_text('keep me')
    yield path
    assert path.read_text() == 'keep me'  # never overwritten


def test_work_dirs_that_are_files(afile, tmp_path, monkeypatch):
    from mmdrconv.cli import generate_data, test, train
    from mmdrconv.cli import suite
    assert exit_message(train.main, [SEG, '--work-dir', str(afile)]) \
        .endswith(f'work dir {afile}: exists and is not a folder')
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    assert exit_message(test.main, [SEG, str(ckpt), '--work-dir',
                                    str(afile)]) \
        .endswith(f'--work-dir {afile}: exists and is not a folder')
    assert exit_message(generate_data.main, ['coco', str(afile)]) \
        .endswith(f'data folder {afile}: exists and is not a folder')
    monkeypatch.chdir(REPO)  # the suite file names configs from there
    assert exit_message(suite.main, ['configs/suites/smoke.py',
                                     '--work-dir', str(afile)]) \
        .endswith(f'suite dir {afile}: exists and is not a folder')


def test_train_generate_and_suite_refuse_a_folder_in_use(tmp_path,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    holder = start_holder(tmp_path)
    try:
        from mmdrconv.cli import generate_data, train
        message = exit_message(train.main, [SEG, '--work-dir',
                                            str(tmp_path)])
        assert f'work dir {tmp_path} is in use by another run (pid ' \
            f'{holder.pid} on host ' in message
        message = exit_message(generate_data.main, ['coco', str(tmp_path)])
        assert f'data folder {tmp_path} is in use by another run (pid ' \
            f'{holder.pid}' in message
        assert not osp.exists(tmp_path / 'train')  # nothing generated
        from mmdrconv.cli import suite
        os.chdir(REPO)  # the suite file names configs from there
        message = exit_message(suite.main, ['configs/suites/smoke.py',
                                            '--work-dir', str(tmp_path)])
        assert f'suite dir {tmp_path} is in use by another run (pid ' \
            f'{holder.pid}' in message
    finally:
        holder.kill()
        holder.wait()


def test_analysis_outputs_checked_before_the_work(afile, capsys):
    from mmdrconv.cli import benchmark
    assert exit_message(benchmark.main, [SEG, '--out', str(afile.parent)]) \
        .endswith(f'--out {afile.parent}: is a folder; name a file')
    from mmdrconv.analysis.region_maps import render_region_maps
    from mmdrconv.outputs import OutputPathError
    image = str(afile)  # exists; never read: the output check comes first
    with pytest.raises(OutputPathError,
                       match=f'OUT_DIR {afile}: exists and is not a folder'):
        render_region_maps(SEG, 'missing.pth', image, str(afile))


@pytest.mark.parametrize('option', ['--rounds', '--repeat', '--threads',
                                    '--batch-size'])
def test_benchmark_onnx_counts_must_be_positive(option, capsys):
    main = tool('tools/deployment/benchmark_onnx.py').main
    with pytest.raises(SystemExit) as exit_:
        main([option, '0'])
    assert exit_.value.code == 2
    assert f'argument {option}: must be at least 1, got 0' in \
        capsys.readouterr().err


def test_launch_scripts_name_their_arguments_and_python(tmp_path):
    for script, usage in (('dist_train.sh', 'CONFIG GPUS'),
                          ('dist_test.sh', 'CONFIG CHECKPOINT GPUS'),
                          ('slurm_train.sh', 'PARTITION JOB_NAME CONFIG '
                           'WORK_DIR')):
        result = subprocess.run(['bash', osp.join(REPO, 'tools', script)],
                                capture_output=True, text=True)
        assert result.returncode == 2
        assert f'usage: tools/{script} {usage}' in result.stderr
    for gpus in ('0', 'two', '-1'):
        result = subprocess.run(
            ['bash', osp.join(REPO, 'tools/dist_train.sh'), SEG, gpus],
            capture_output=True, text=True)
        assert result.returncode == 2
        assert f"GPUS must be a positive number of processes, got '{gpus}'" \
            in result.stderr
    # Which Python: $PYTHON, else ROOT/.venv/bin/python, else python.
    venv = tmp_path / '.venv' / 'bin'
    venv.mkdir(parents=True)

    def chosen(env_python=None):
        env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
        if env_python:
            env['PYTHON'] = env_python
        return subprocess.run(
            ['bash', '-c', f'set -u; ROOT="{tmp_path}"; . '
             f'"{REPO}/tools/launch_env.sh"; echo "$PYTHON"'],
            capture_output=True, text=True, env=env).stdout.strip()

    assert chosen() == 'python'
    (venv / 'python').write_text('#!/bin/sh\n')
    (venv / 'python').chmod(0o755)
    assert chosen() == f'{venv}/python'
    assert chosen('/opt/py') == '/opt/py'


def test_suite_counts_out_of_range_are_named(tmp_path):
    from mmdrconv.suite import load_suite
    det = osp.join(REPO, 'configs/synthetic/'
                   'mask-rcnn_r50-w16_fpn_synthetic-coco.py')
    for field, value, error in (
            ('max_iters', 0, 'max_iters must be a positive int'),
            ('gpus', -1, 'gpus must be a positive int'),
            ('image_size', (0, 64), 'image_size must be (height, width)'),
            ('image_size', 64, 'image_size must be (height, width)')):
        path = tmp_path / 'suite.py'
        path.write_text(
            "suite = dict(name='t', seeds=[0], datasets=dict(coco=dict("
            "kind='coco', root='r')), tasks=[dict(name='det', "
            f"dataset='coco', metrics=['m'], {field}={value!r}, "
            f"variants=dict(a='{det}'))])\n")
        with pytest.raises(ValueError,
                           match=re.escape(f"task 'det': {error}")):
            load_suite(str(path))
    path.write_text(path.read_text().replace('seeds=[0]', 'seeds=[-1]'))
    with pytest.raises(ValueError, match='distinct ints >= 0'):
        load_suite(str(path))


def test_missing_data_message_names_only_options_that_exist(tmp_path):
    """export_onnx.py --verify without data once pointed to a --data-root
    it does not have."""
    from mmdrconv.apis import load_config
    from mmdrconv.cli.export_onnx import parse_args as export_args
    from mmdrconv.cli.train import parse_args as train_args
    from mmdrconv.datasets import check_dataset
    cfg = load_config(SEG, {'test_dataloader.dataset.data_root':
                            str(tmp_path / 'none')})
    with pytest.raises(FileNotFoundError) as error:
        check_dataset(cfg)
    message = str(error.value)
    assert 'tools/train.py and tools/test.py at your copy with --data-root' \
        in message
    assert 'other tools: --cfg-options test_dataloader.dataset.data_root=' \
        in message
    train = train_args([SEG])
    export = export_args([SEG, 'c.pth', 'o.onnx', '--cfg-options',
                          'test_dataloader.dataset.data_root=x'])
    assert export.cfg_options and train.data_root is None
    for option in set(re.findall(r'--[a-z-]+', message)):
        assert option in ('--data-root', '--cfg-options'), option


def test_segmentation_out_must_be_a_folder():
    from types import SimpleNamespace

    from mmdrconv.apis import load_config
    from mmdrconv.runner import add_prediction_dump
    cfg = load_config(SEG)
    metric = SimpleNamespace(output_dir=None, keep_results=False)
    runner = SimpleNamespace(test_evaluator=SimpleNamespace(metrics=[metric]))
    with pytest.raises(ValueError, match="--out must be a folder for "
                       "segmentation .* got 'preds.pkl'"):
        add_prediction_dump(runner, cfg, 'preds.pkl')
    add_prediction_dump(runner, cfg, 'maps')
    assert (metric.output_dir, metric.keep_results) == ('maps', True)
    runner.test_evaluator.metrics = [SimpleNamespace()]
    with pytest.raises(ValueError, match='no test metric of this config can '
                       'save label maps'):
        add_prediction_dump(runner, cfg, 'maps')
