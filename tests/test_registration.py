"""`import mmdrconv` registers DRConv with OpenMMLab in any import order,
and loads none of it by itself.

Each case runs in a fresh interpreter, since the point is what was (not)
imported before mmdrconv. Checked in every scope: the registries of
mmengine (no scope), mmdet and mmseg, through mmcv's ``build_conv_layer``
and through a config's model, as tools build them.
"""
import glob
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# Imported before mmdrconv in each case; '' imports nothing first.
IMPORTED_FIRST = {
    'nothing': '',
    'mmengine': 'import mmengine',
    'mmcv.cnn': 'import mmcv.cnn',
    'mmdet.models': 'import mmdet.models',
    'mmseg.models': 'import mmseg.models',
    'a core submodule': 'from mmdrconv.core.converter import convert_to_drconv',
}

CHECK_EVERY_SCOPE = '''
import torch
from mmcv.cnn import build_conv_layer
from mmengine.registry import DefaultScope
from mmdrconv import DRConv
x = torch.randn(1, 8, 6, 6)
for scope in (None, 'mmdet', 'mmseg'):
    with DefaultScope.overwrite_default_scope(scope):
        for name in ('DRConv', 'DRConv2d'):
            layer = build_conv_layer(dict(type=name, region_num=3), 8, 5, 3,
                                     padding=1)
            assert type(layer).__mro__.count(DRConv) == 1, type(layer)
            assert layer.region_num == 3 and layer(x).shape == (1, 5, 6, 6)
print('registered in every scope')
'''


def run_fresh(code: str) -> str:
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize('first', sorted(IMPORTED_FIRST))
def test_import_registers_in_every_scope(first):
    out = run_fresh(f'{IMPORTED_FIRST[first]}\nimport mmdrconv\n'
                    f'{CHECK_EVERY_SCOPE}')
    assert out.strip().endswith('registered in every scope')


def test_import_alone_loads_no_openmmlab_and_registers_later():
    # The core stays torch-only; OpenMMLab, imported afterwards in any
    # form, finds DRConv registered (here through the adapter's module).
    out = run_fresh('''
import sys
import mmdrconv
print(sorted(m for m in ('mmengine', 'mmcv', 'mmdrconv.openmmlab')
             if m in sys.modules))
from mmengine.registry import MODELS
print('mmdrconv.openmmlab' in sys.modules, MODELS.get('DRConv').__name__)
''')
    assert out.split('\n')[:2] == ['[]', 'True DRConv']


def _drconv_configs():
    paths = sorted(glob.glob(osp.join(REPO, 'configs/*/*drconv*.py')))
    return [p for p in paths if '/suites/' not in p and '/_base_/' not in p]


def test_every_drconv_config_builds_after_import_mmdrconv():
    # As a user would: the core imported first (for convert_to_drconv,
    # say), then configs read and built the way mmdet's and mmseg's tools do
    # (custom_imports, then the registry of the config's scope). Building
    # needs no weights, so ResNet-50s build in well under a second each.
    configs = _drconv_configs()
    assert len(configs) >= 24
    out = run_fresh(f'''
import mmdrconv
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.utils import import_modules_from_strings
from mmdrconv import DRConv
built = 0
for path in {configs!r}:
    cfg = Config.fromfile(path)
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    assert any(isinstance(m, DRConv) for m in model.modules()), path
    built += 1
print('built', built)
''')
    assert out.split()[-1] == str(len(configs))


def test_broken_openmmlab_leaves_the_core_working():
    # mmengine installed but the adapter's imports failing (here: mmengine's
    # runner made unimportable): importing mmengine still works for the
    # user, a warning gives the reason, and the core still runs.
    out = run_fresh('''
import sys, warnings
class BrokenRunner:
    def find_spec(self, name, path=None, target=None):
        if name.startswith('mmengine.runner'):
            raise ImportError('simulated broken install: ' + name)
import torch
from mmdrconv import DRConv
sys.meta_path.insert(0, BrokenRunner())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    import mmengine
messages = [str(w.message) for w in caught if 'mmdrconv' in str(w.message)]
assert len(messages) == 1, messages
assert 'simulated broken install' in messages[0], messages
layer = DRConv(4, 4, 3, padding=1, region_num=2)
print(tuple(layer(torch.randn(1, 4, 5, 5)).shape))
''')
    assert out.strip().splitlines()[-1] == '(1, 4, 5, 5)'
