"""Files that are never half-written, and JSON read back tolerantly.
Standard library only; it patches nothing (the checkpoint saving of mmengine
is made atomic in :mod:`mmdrconv.openmmlab.atomic_save`, on these helpers).

A file is written to a temporary file in the same folder, flushed to disk
and renamed over its final name (``os.replace`` is atomic on POSIX and
Windows): the final name holds the old or the complete new content, also
after a full disk, Ctrl-C or ``kill -9`` while writing.
"""
import json
import os
import os.path as osp
import tempfile
from typing import Any, Callable, Optional, Type


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def replace_atomically(filename: str, write: Callable) -> None:
    """Call ``write(file)`` on a temporary binary file beside ``filename``,
    then rename it to ``filename``; on any failure the temporary file is
    removed and ``filename`` is left as it was."""
    folder = osp.dirname(osp.abspath(filename))
    os.makedirs(folder, exist_ok=True)
    fd, temporary = tempfile.mkstemp(
        dir=folder, prefix=f'.{osp.basename(filename)}.', suffix='.partial')
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private (0600)
        with os.fdopen(fd, 'wb') as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, filename)
    except BaseException:  # also KeyboardInterrupt: never leave the partial
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise


def write_text_atomically(filename: str, text: str) -> None:
    replace_atomically(filename, lambda file: file.write(text.encode()))


def _json_default(obj):
    """What mmengine's JSON handler converts beyond JSON types: sets and
    ranges to lists, arrays (numpy, torch) by ``tolist``, scalars by
    ``item``."""
    if isinstance(obj, (set, range)):
        return list(obj)
    for method in ('tolist', 'item'):
        if callable(getattr(obj, method, None)):
            return getattr(obj, method)()
    raise TypeError(f'{type(obj).__name__} is not JSON serializable')


def dump_json_atomically(obj, filename: str, **kwargs) -> None:
    """``obj`` as JSON in ``filename``, never half-written; ``kwargs`` go to
    :func:`json.dumps` (e.g. ``indent=2``)."""
    write_text_atomically(filename,
                          json.dumps(obj, default=_json_default, **kwargs))


def load_json(path: str, kind: Type = dict) -> Optional[Any]:
    """The JSON value in the file when it is a ``kind`` (default: an
    object); None when the file is missing, unreadable, cut short (a run
    killed while writing it without these helpers) or holds another kind:
    the work that writes it is then redone."""
    try:
        with open(path, encoding='utf-8') as file:
            content = json.load(file)
    except (OSError, ValueError):
        return None
    return content if isinstance(content, kind) else None
