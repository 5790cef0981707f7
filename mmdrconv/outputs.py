"""Output paths checked before the work: a tool that would write its result
after minutes of work checks first that it can (standard library only)."""
import os
import os.path as osp


class OutputPathError(ValueError):
    """An output argument of a tool that cannot be written."""


def check_output_dir(path: str, option: str) -> None:
    """Create the output folder ``path`` now (not after the work), or raise
    OutputPathError naming ``option`` (e.g. '--show-dir') when it cannot be
    one."""
    if osp.exists(path) and not osp.isdir(path):
        raise OutputPathError(f'{option} {path}: exists and is not a folder')
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise OutputPathError(
            f'{option} {path}: cannot create the folder ({error.strerror}: '
            f'{error.filename})') from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputPathError(f'{option} {path}: the folder is not writable')


def check_output_file(path: str, option: str) -> None:
    """Check before the work that the file ``path`` can be written (its
    folder is created), or raise OutputPathError naming ``option``."""
    if osp.isdir(path):
        raise OutputPathError(f'{option} {path}: is a folder; name a file')
    try:
        check_output_dir(osp.dirname(osp.abspath(path)), option)
    except OutputPathError as error:
        raise OutputPathError(f'{error} (the folder of {path})') from None
    if osp.exists(path) and not os.access(path, os.W_OK):
        raise OutputPathError(f'{option} {path}: the file is not writable')
