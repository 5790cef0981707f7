"""mmdrconv/fileio.py: files never half-written, JSON read back tolerantly;
standard library only, patching nothing."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO
from mmdrconv.fileio import dump_json_atomically, load_json


def test_json_is_written_as_mmengine_writes_it(tmp_path):
    """The suite's result files are byte-for-byte what mmengine.dump wrote
    before (numpy values, sets and ranges included)."""
    import mmengine
    obj = dict(a=np.float32(0.25), b=np.arange(3), c={3}, d=range(2),
               e=[1, 'x', None, True], f=np.int64(7))
    path = tmp_path / 'r.json'
    dump_json_atomically(obj, str(path))
    assert path.read_text() == mmengine.dump(obj, file_format='json')
    assert load_json(str(path)) == dict(a=0.25, b=[0, 1, 2], c=[3],
                                        d=[0, 1], e=[1, 'x', None, True],
                                        f=7)
    dump_json_atomically([1, 2], str(path), indent=2)
    assert path.read_text() == '[\n  1,\n  2\n]'
    with pytest.raises(TypeError, match='object is not JSON serializable'):
        dump_json_atomically(dict(x=object()), str(path))
    assert json.loads(path.read_text()) == [1, 2]  # left as it was


def test_an_interrupted_write_leaves_the_old_file_and_no_partial(
        tmp_path, monkeypatch):
    from mmdrconv import fileio
    path = tmp_path / 'r.json'
    dump_json_atomically(dict(status='ok'), str(path))

    def interrupted(obj, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.json, 'dumps', interrupted)
    with pytest.raises(KeyboardInterrupt):
        dump_json_atomically(dict(status='new'), str(path))
    monkeypatch.undo()

    def cut(file):
        file.write(b'{"status": "n')
        raise OSError(28, 'No space left on device')

    with pytest.raises(OSError, match='No space left'):
        fileio.replace_atomically(str(path), cut)
    assert load_json(str(path)) == dict(status='ok')
    assert os.listdir(tmp_path) == ['r.json']  # no temporary file left


def test_written_files_follow_the_umask(tmp_path):
    mask = os.umask(0o027)
    try:
        dump_json_atomically({}, str(tmp_path / 'a.json'))
    finally:
        os.umask(mask)
    assert (tmp_path / 'a.json').stat().st_mode & 0o777 == 0o640


def test_suite_result_files_that_are_not_objects_are_redone(tmp_path):
    for text in ('[]', '"ok"', '{"status": "o', '', '\xff'):
        (tmp_path / 'r.json').write_text(text, encoding='latin-1')
        assert load_json(str(tmp_path / 'r.json')) is None
    (tmp_path / 'r.json').write_text(json.dumps(dict(status='ok')))
    assert load_json(str(tmp_path / 'r.json')) == dict(status='ok')
    assert load_json(str(tmp_path / 'missing.json')) is None
    assert load_json(str(tmp_path / 'r.json'), list) is None
    (tmp_path / 'c.json').write_text('[{"iter": 1}]')
    assert load_json(str(tmp_path / 'c.json'), list) == [{'iter': 1}]


def test_fileio_needs_the_standard_library_alone():
    """Loaded on its own (not through the package, which imports torch),
    it imports neither torch nor OpenMMLab and patches nothing."""
    code = (
        'import importlib.util, sys\n'
        f"spec = importlib.util.spec_from_file_location('fileio', "
        f"'{REPO}/mmdrconv/fileio.py')\n"
        'module = importlib.util.module_from_spec(spec)\n'
        'spec.loader.exec_module(module)\n'
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'mmengine', 'mmcv', 'numpy', 'mmdrconv')))\n")
    done = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == '[]'
