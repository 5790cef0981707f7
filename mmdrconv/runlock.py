"""One run per folder: a work dir, suite dir or data folder in use by another
run is refused, naming that run.

The lock is ``fcntl.flock`` on ``.mmdrconv.lock`` inside the folder. The
kernel drops it when the holding process exits, however it exits (crash,
``kill -9``), so a crashed run never leaves a folder locked; the file itself
stays and only says who held it last. The lock is not inherited by child
processes (Python opens files close-on-exec). Standard library only.
"""
import contextlib
import fcntl
import json
import os
import os.path as osp
import socket
import sys
import time
from typing import Iterator, Optional

from .fileio import load_json
from .outputs import check_output_dir

LOCK_FILE = '.mmdrconv.lock'

# The environment variable holding the process's global rank, per launcher
# of mmengine's Runner (torchrun, srun, mpirun).
RANK_ENV = dict(pytorch='RANK', slurm='SLURM_PROCID',
                mpi='OMPI_COMM_WORLD_RANK')


_HELD = set()  # real paths of the folders this process holds


class FolderInUseError(RuntimeError):
    """Another live process holds the folder's lock."""


def launcher_rank(launcher: str = 'none') -> int:
    """The global rank this process will have under ``launcher`` (known from
    the environment before the process group exists); 0 without one."""
    name = RANK_ENV.get(launcher)
    return int(os.environ.get(name, 0)) if name else 0


def _holder(path: str) -> str:
    info = load_json(path)
    if not info:
        return 'another process (it has not said which yet)'
    return (f"pid {info.get('pid')} on host {info.get('host')}, started "
            f"{info.get('started')}: {info.get('command')}")


@contextlib.contextmanager
def hold_folder(folder: str, what: str = 'folder', enabled: bool = True,
                shared: bool = False) -> Iterator[Optional[str]]:
    """Hold ``folder`` (created if missing) for this run, or raise
    FolderInUseError naming the live run that holds it. ``what`` names the
    folder in messages ('work dir', 'suite dir', 'data folder'). With
    ``enabled=False`` (ranks other than 0 of a distributed run, which share
    rank 0's folder) nothing is locked; nor when this process holds it
    already (a suite whose data folder is its work dir). ``shared``: a
    reader's hold (suites training on generated data): readers share the
    folder, a writer (the generator) is refused while any holds it. Yields
    the lock file's path."""
    check_output_dir(folder, what)
    real = osp.realpath(folder)
    if not enabled or real in _HELD:
        yield None
        return
    path = osp.join(folder, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) |
                        fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderInUseError(
                f'{what} {folder} is in use by another run ({_holder(path)}). '
                'Wait for it to finish, stop it, or choose another '
                f'{what}.') from None
        info = dict(pid=os.getpid(), host=socket.gethostname(),
                    started=time.strftime('%Y-%m-%d %H:%M:%S %Z'),
                    command=' '.join(sys.argv))
        os.ftruncate(fd, 0)  # readers: the last one is named
        os.pwrite(fd, json.dumps(info).encode(), 0)
        if shared:  # this process may not write into it either
            yield path
            return
        _HELD.add(real)
        try:
            yield path
        finally:
            _HELD.discard(real)
    finally:
        os.close(fd)  # releases the lock
