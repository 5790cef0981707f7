"""Checkpoint saving (mmdrconv/openmmlab/atomic_save.py): a full disk or Ctrl-C
while saving leaves the previous checkpoint; rotation as upstream."""
import errno
import os

import pytest
import torch
import torch.nn as nn


def _toy_runner(work_dir, max_iters):
    from mmengine.runner import Runner
    from torch.utils.data import Dataset

    class Toy(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return dict(inputs=torch.full((2, ), float(index)))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 1)

        def train_step(self, data, optim_wrapper):
            loss = self.linear(data['inputs']).pow(2).mean()
            optim_wrapper.update_params(loss)
            return dict(loss=loss)

    return Runner(
        model=Model(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=Toy(), batch_size=2,
                              sampler=dict(type='DefaultSampler'),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=1,
                                           max_keep_ckpts=1)))


def test_full_disk_during_a_checkpoint_save_keeps_the_previous_one(
        tmp_path, monkeypatch):
    from mmdrconv.openmmlab import atomic_save
    from mmdrconv.openmmlab.checkpoint import load_checkpoint_file
    runner = _toy_runner(tmp_path, max_iters=3)
    real_save = torch.save

    def save_until_iter_3(obj, file, *args, **kwargs):
        if isinstance(obj, dict) and obj.get('meta', {}).get('iter') == 3:
            file.write(b'half a checkpoint')
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(atomic_save.torch, 'save', save_until_iter_3)
    with pytest.raises(OSError, match='No space left on device'):
        runner.train()
    # iter_3.pth never appears, iter_2.pth was not deleted before the save,
    # last_checkpoint names it, and no partial file is left behind.
    assert sorted(n for n in os.listdir(tmp_path)
                  if not n.startswith(runner.timestamp)) == [
                      'iter_2.pth', 'last_checkpoint']
    last = (tmp_path / 'last_checkpoint').read_text()
    assert last == str(tmp_path / 'iter_2.pth')
    assert load_checkpoint_file(last)['meta']['iter'] == 2


def test_checkpoints_rotate_as_before(tmp_path):
    _toy_runner(tmp_path, max_iters=3).train()
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth')) == \
        ['iter_3.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == \
        str(tmp_path / 'iter_3.pth')
    assert oct(os.stat(tmp_path / 'iter_3.pth').st_mode & 0o777) == \
        oct(0o666 & ~_umask())


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_ctrl_c_while_saving_leaves_the_previous_file(tmp_path, monkeypatch):
    from mmdrconv.openmmlab import atomic_save
    from mmengine.runner import save_checkpoint  # the patched one
    path = tmp_path / 'iter_1.pth'
    save_checkpoint(dict(meta=dict(iter=1)), str(path))
    real_save = torch.save

    def interrupted(obj, file, *args, **kwargs):
        file.write(b'partial')
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic_save.torch, 'save', interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(dict(meta=dict(iter=2)), str(path))
    monkeypatch.setattr(atomic_save.torch, 'save', real_save)
    assert os.listdir(tmp_path) == ['iter_1.pth']
    assert torch.load(path, weights_only=True)['meta']['iter'] == 1


def test_a_checkpoint_another_run_wrote_is_kept_not_replaced(tmp_path):
    # A run resumed from an older checkpoint reaches the iteration of a
    # newer one of the run it continues (or any run saves under a name an
    # earlier one used): that file is not this run's to replace.
    (tmp_path / 'iter_2.pth').write_bytes(b'an earlier run')
    (tmp_path / 'iter_2.earlier.pth').write_bytes(b'an even earlier one')
    runner = _toy_runner(tmp_path, max_iters=3)
    runner.train()
    names = sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth'))
    # Its own iter_1 and iter_2 were rotated out (max_keep_ckpts=1).
    assert names == ['iter_2.earlier.pth', 'iter_2.earlier2.pth',
                     'iter_3.pth']
    assert (tmp_path / 'iter_2.earlier2.pth').read_bytes() == \
        b'an earlier run'
    assert (tmp_path / 'iter_2.earlier.pth').read_bytes() == \
        b'an even earlier one'
