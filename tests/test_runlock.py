"""mmdrconv.runlock: one run per work dir / suite dir / data folder, and a
crashed run leaves nothing locked."""
import os
import socket

import pytest

from helpers import start_holder
from mmdrconv.runlock import (FolderInUseError, LOCK_FILE, hold_folder,
                              launcher_rank)


def test_a_folder_held_by_another_run_is_refused_naming_it(tmp_path):
    holder = start_holder(tmp_path / 'run')
    try:
        with pytest.raises(FolderInUseError) as error:
            with hold_folder(str(tmp_path / 'run'), 'work dir'):
                pass
        message = str(error.value)
        assert message.startswith(f'work dir {tmp_path}/run is in use by '
                                  f'another run (pid {holder.pid} on host '
                                  f'{socket.gethostname()}, started ')
        assert message.endswith(
            'Wait for it to finish, stop it, or choose another work dir.')
    finally:
        holder.kill()
        holder.wait()


def test_readers_share_a_folder_that_a_writer_may_not_take(tmp_path):
    reader = start_holder(tmp_path, shared=True)
    try:
        with hold_folder(str(tmp_path), 'data folder', shared=True):
            pass  # another reader: fine
        with pytest.raises(FolderInUseError, match=f'data folder {tmp_path} '
                           f'is in use by another run'):
            with hold_folder(str(tmp_path), 'data folder'):
                pass
    finally:
        reader.kill()
        reader.wait()


def test_a_crashed_run_leaves_the_folder_free(tmp_path):
    holder = start_holder(tmp_path)
    holder.kill()
    holder.wait()
    assert (tmp_path / LOCK_FILE).exists()  # the file stays, the lock not
    with hold_folder(str(tmp_path), 'work dir') as path:
        assert f'"pid": {os.getpid()}' in open(path).read()


def test_released_after_the_run_and_reentrant_in_one_process(tmp_path):
    with hold_folder(str(tmp_path), 'suite dir'):
        # e.g. a suite whose data folder is its own work dir
        with hold_folder(str(tmp_path), 'data folder') as inner:
            assert inner is None
    holder = start_holder(tmp_path)  # free again for another process
    holder.kill()
    holder.wait()


def test_a_file_is_not_a_folder(tmp_path):
    from mmdrconv.outputs import OutputPathError
    path = tmp_path / 'work'
    path.write_text('')
    with pytest.raises(OutputPathError,
                       match=f'work dir {path}: exists and is not a folder'):
        with hold_folder(str(path), 'work dir'):
            pass


def test_only_rank_0_of_a_distributed_run_holds_the_work_dir(
        tmp_path, monkeypatch):
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setenv('SLURM_PROCID', '3')
    assert launcher_rank('pytorch') == 1 and launcher_rank('slurm') == 3
    assert launcher_rank('none') == 0  # RANK of an outer job: not ours
    holder = start_holder(tmp_path)
    try:  # rank 1 shares rank 0's folder: it takes no lock
        with hold_folder(str(tmp_path), 'work dir',
                         enabled=launcher_rank('pytorch') == 0) as path:
            assert path is None
    finally:
        holder.kill()
        holder.wait()
