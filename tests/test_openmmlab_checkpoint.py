"""Checkpoints that do not fit (mmdrconv/openmmlab/checkpoint.py): another
task's or width's weights, a missing file to resume from."""
import pytest
import torch

from mmdrconv.apis import load_config

from helpers import DET, SEG


def test_checkpoint_of_another_task_or_width_is_refused(tmp_path):
    from mmdrconv.apis import build_model
    from mmdrconv.openmmlab import CheckpointError, verify_checkpoint
    det = build_model(load_config(DET))
    seg_file = tmp_path / 'seg.pth'
    torch.save(dict(state_dict=build_model(load_config(SEG)).state_dict()),
               seg_file)
    with pytest.raises(CheckpointError) as error:
        verify_checkpoint(det, str(seg_file))
    assert 'does not match the model of this config' in str(error.value)
    assert 'keys not in the model: backbone.stem.0.weight' in \
        str(error.value)  # mmseg's ResNetV1c stem, not mmdet's ResNet
    wide = build_model(load_config(
        DET, {'model.backbone.base_channels': 32}))
    wide_file = tmp_path / 'wide.pth'
    torch.save(dict(state_dict=wide.state_dict()), wide_file)
    with pytest.raises(CheckpointError, match=r'keys with other shapes: '
                       r'backbone\.conv1\.weight \(32, 3, 7, 7\) vs model '
                       r'\(16, 3, 7, 7\)'):
        verify_checkpoint(det, str(wide_file))


def test_resume_from_a_missing_checkpoint_is_named(tmp_path):
    from mmdrconv.runner import prepare_train_cfg
    with pytest.raises(FileNotFoundError, match=f'--resume {tmp_path}/x.pth: '
                       'no such checkpoint file'):
        prepare_train_cfg(load_config(DET), DET, str(tmp_path),
                          resume=str(tmp_path / 'x.pth'))
