"""What tools/train.py and tools/test.py check before the work
(mmdrconv.runner): what --resume resumes from, and that outputs can be
written."""
import os
import os.path as osp

import pytest
import torch

from mmdrconv.outputs import OutputPathError
from mmdrconv.runner import (NothingToResumeError, check_test_outputs,
                             resolve_resume)

from helpers import DET, SEG


# ----------------------------------------------------------------- resume
def test_resume_on_an_empty_work_dir_is_an_error(tmp_path):
    with pytest.raises(NothingToResumeError) as error:
        resolve_resume(str(tmp_path), 'auto')
    assert str(error.value).startswith(
        f'--resume: nothing to resume in {tmp_path} (no last_checkpoint '
        'there). To train from scratch, leave out --resume.')
    assert '--auto-resume' in str(error.value)
    assert resolve_resume(str(tmp_path), 'auto-or-start') is None
    assert resolve_resume(str(tmp_path), None) is None


def test_resume_in_a_moved_or_copied_work_dir_takes_its_own_checkpoint(
        tmp_path):
    old, new = tmp_path / 'old', tmp_path / 'new'
    for folder in (old, new):
        folder.mkdir()
        (folder / 'iter_4.pth').write_bytes(b'')
        # mmengine records the absolute path of the run that wrote it
        (folder / 'last_checkpoint').write_text(str(old / 'iter_4.pth'))
    assert resolve_resume(str(new), 'auto') == str(new / 'iter_4.pth')
    (new / 'iter_4.pth').unlink()
    (old / 'iter_4.pth').unlink()
    with pytest.raises(NothingToResumeError,
                       match=f"names '{old}/iter_4.pth', which does not "
                       'exist'):
        resolve_resume(str(new), 'auto-or-start')


def test_train_tool_resume_options(tmp_path, capsys):
    from mmdrconv.cli.train import main, parse_args
    assert parse_args([SEG, '--auto-resume']).resume == 'auto-or-start'
    assert parse_args([SEG, '--resume']).resume == 'auto'
    with pytest.raises(SystemExit):
        parse_args([SEG, '--resume', '--auto-resume'])
    assert 'not allowed with argument' in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([SEG, '--work-dir', str(tmp_path), '--resume'])
    assert 'nothing to resume in' in str(exit_.value.code)


def test_resume_from_the_twins_checkpoint_names_the_mismatch(
        tmp_path, synthetic_data):
    from mmdrconv.apis import build_model, load_config
    from mmdrconv.cli.train import main
    from mmdrconv.openmmlab import CheckpointError
    twin = build_model(load_config(SEG.replace('-drconv-c3-c5', '')))
    torch.save(dict(state_dict=twin.state_dict(), meta=dict(iter=2)),
               tmp_path / 'iter_2.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    with pytest.raises(CheckpointError) as error:
        main([SEG, '--work-dir', str(tmp_path), '--resume', '--data-root',
              str(synthetic_data / 'cityscapes')])
    message = str(error.value)
    assert f'--resume: checkpoint {tmp_path}/iter_2.pth does not match ' \
        'the model of this config' in message
    assert 'missing from the checkpoint: backbone.layer2.0.conv2.guide' \
        in message


# ---------------------------------------------------------------- outputs
@pytest.fixture(scope='module')
def cfgs():
    from mmdrconv.apis import load_config
    return dict(seg=load_config(SEG), det=load_config(DET))


def test_segmentation_outputs_are_folders_made_up_front(tmp_path, cfgs):
    maps, painted = tmp_path / 'a b' / 'maps', tmp_path / 'new' / 'painted'
    check_test_outputs(cfgs['seg'], str(maps), str(painted))
    assert maps.is_dir() and painted.is_dir()  # missing folders: created
    afile = tmp_path / 'file'
    afile.write_text('')
    for out, show_dir, option in ((str(afile), None, '--out'),
                                  (None, str(afile), '--show-dir'),
                                  (None, str(afile / 'sub'), '--show-dir')):
        with pytest.raises(OutputPathError, match=f'^{option} {afile}'):
            check_test_outputs(cfgs['seg'], out, show_dir)


def test_detection_out_is_a_writable_pkl(tmp_path, cfgs):
    check_test_outputs(cfgs['det'], str(tmp_path / 'new' / 'p.pkl'), None)
    assert (tmp_path / 'new').is_dir()
    (tmp_path / 'd.pkl').mkdir()
    with pytest.raises(OutputPathError, match='is a folder; name a file'):
        check_test_outputs(cfgs['det'], str(tmp_path / 'd.pkl'), None)
    (tmp_path / 'ro').mkdir()
    os.chmod(tmp_path / 'ro', 0o500)
    try:
        if not os.access(tmp_path / 'ro', os.W_OK):  # not as root
            with pytest.raises(OutputPathError, match='not writable'):
                check_test_outputs(cfgs['det'], str(tmp_path / 'ro/p.pkl'),
                                   None)
    finally:
        os.chmod(tmp_path / 'ro', 0o700)


def test_test_tool_refuses_a_bad_show_dir_before_evaluating(tmp_path):
    from mmdrconv.cli.test import main
    afile = tmp_path / 'painted'
    afile.write_text('')
    # No checkpoint and no data: the output check comes first.
    with pytest.raises(SystemExit) as exit_:
        main([SEG, str(tmp_path / 'none.pth'), '--show-dir', str(afile)])
    assert str(exit_.value.code).endswith(
        f'--show-dir {afile}: exists and is not a folder')


def test_out_holding_results_is_refused_unless_overwrite(tmp_path, cfgs):
    # tools/test.py --out replaced an existing file without a word.
    pkl = tmp_path / 'p.pkl'
    pkl.write_bytes(b'earlier predictions')
    with pytest.raises(OutputPathError, match=f'^--out {pkl}: exists; pass '
                       '--overwrite to replace them'):
        check_test_outputs(cfgs['det'], str(pkl), None)
    check_test_outputs(cfgs['det'], str(pkl), None, overwrite=True)
    assert pkl.read_bytes() == b'earlier predictions'  # checked, not written
    maps = tmp_path / 'maps'
    check_test_outputs(cfgs['seg'], str(maps), None)  # new: fine
    check_test_outputs(cfgs['seg'], str(maps), None)  # empty: fine
    (maps / 'a.png').write_bytes(b'')
    with pytest.raises(OutputPathError, match='holds files already'):
        check_test_outputs(cfgs['seg'], str(maps), None)
    check_test_outputs(cfgs['seg'], str(maps), None, overwrite=True)


def test_test_tool_refuses_an_existing_out_before_evaluating(tmp_path):
    from mmdrconv.cli.test import main
    out = tmp_path / 'p.pkl'
    out.write_bytes(b'')
    with pytest.raises(SystemExit) as exit_:
        main([DET, str(tmp_path / 'none.pth'), '--out', str(out)])
    assert str(exit_.value.code).endswith(
        f'--out {out}: exists; pass --overwrite to replace them, or choose '
        'another --out')


# ----------------------------------------------------- an earlier run's files
def test_training_afresh_over_an_earlier_run_is_refused(tmp_path, cfgs):
    from mmdrconv.runner import EarlierRunError, settle_work_dir
    cfg = cfgs['seg'].copy()
    cfg.work_dir = str(tmp_path)
    assert settle_work_dir(cfg) is None  # empty: nothing to do
    (tmp_path / 'iter_4.pth').write_bytes(b'weights')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    (tmp_path / 'notes.pth.txt').write_text('')  # not a checkpoint
    with pytest.raises(EarlierRunError) as error:
        settle_work_dir(cfg)
    assert str(error.value).startswith(
        f'{tmp_path} holds the checkpoints of an earlier run (iter_4.pth, '
        'last_checkpoint); training from scratch would overwrite them. To '
        'continue that run: --resume (from its latest checkpoint, or '
        '--resume CKPT) or --auto-resume; to train from scratch anyway: '
        '--start-over')
    assert (tmp_path / 'iter_4.pth').read_bytes() == b'weights'
    # Without last_checkpoint, --resume / --auto-resume would not find it.
    os.rename(tmp_path / 'last_checkpoint', tmp_path / 'kept')
    with pytest.raises(EarlierRunError, match=r'\(iter_4.pth\); .* To '
                       f'continue that run: --resume {tmp_path}/iter_4.pth; '
                       'to train from scratch anyway: --start-over'):
        settle_work_dir(cfg)
    os.rename(tmp_path / 'kept', tmp_path / 'last_checkpoint')
    resumed = cfg.copy()
    resumed.resume = True
    assert settle_work_dir(resumed) is None  # continuing it: fine
    assert settle_work_dir(cfg, start_over=True, rank=1) is None  # rank 0's
    assert (tmp_path / 'iter_4.pth').exists()
    # --start-over: moved aside, never deleted; load_from follows its file.
    cfg.load_from = str(tmp_path / 'iter_4.pth')
    folder = settle_work_dir(cfg, start_over=True)
    assert osp.dirname(folder) == str(tmp_path / 'earlier_runs')
    assert sorted(os.listdir(folder)) == ['iter_4.pth', 'last_checkpoint']
    assert cfg.load_from == osp.join(folder, 'iter_4.pth')
    assert sorted(os.listdir(tmp_path)) == ['earlier_runs', 'notes.pth.txt']
    assert settle_work_dir(cfg) is None


def test_train_tool_start_over_excludes_resume(capsys):
    from mmdrconv.cli.train import parse_args
    assert parse_args([SEG, '--start-over']).start_over
    with pytest.raises(SystemExit):
        parse_args([SEG, '--start-over', '--resume'])
    assert 'not allowed with argument' in capsys.readouterr().err
