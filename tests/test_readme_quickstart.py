"""The README's quick start, run as a new user runs it (issue 29): its
``<!-- test: quickstart -->`` blocks, as written there.

- the PyTorch walk-through: converts two convs of a plain model, trains on
  generated data and must learn (validation accuracy far above chance);
- the mmdet walk-through: the config the README gives (inheriting
  ``mmdet::retinanet/...`` with DRConv in c3-c5) is saved under its name,
  and the README's commands generate COCO-format data, train and evaluate
  it with tools/, in a scratch folder standing for the repository.
"""
import io
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
from contextlib import redirect_stdout

import torch

from readme_doc import README, REPO, Document

QUICK_START = Document(README)
SECTION = QUICK_START.section('Quick start')
BLOCKS = [b for b in QUICK_START.blocks_in(SECTION)
          if b.marker == 'quickstart']


def _blocks(lang):
    return [b for b in BLOCKS if b.lang == lang]


def _config_block():
    """The block whose first line names the config file to save."""
    for block in _blocks('python'):
        found = re.fullmatch(r'#\s*([\w.-]+\.py)', block.code.split('\n')[0])
        if found:
            return found.group(1), block
    raise AssertionError('the quick start has no config block starting '
                         'with "# NAME.py"')


def test_quick_start_has_both_walk_throughs():
    name, config = _config_block()
    assert "'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'" in config.code
    assert "dcn=dict(type='DRConv'" in config.code
    assert len(_blocks('python')) == 2 and len(_blocks('bash')) == 1
    commands = _blocks('bash')[0].code
    for tool in ('tools/generate_data.py coco', 'tools/train.py ' + name,
                 'tools/test.py ' + name):
        assert tool in commands


def test_pytorch_quick_start_converts_and_learns():
    from mmdrconv import DRConv
    _, config = _config_block()
    block = next(b for b in _blocks('python') if b is not config)
    namespace, out = {'__name__': '__readme__'}, io.StringIO()
    with redirect_stdout(out):
        exec(compile(block.code, block.id, 'exec'), namespace)
    model = namespace['model']
    converted = [n for n, m in model.named_modules() if isinstance(m, DRConv)]
    assert converted == ['3', '6']
    found = re.search(r'validation accuracy ([\d.]+)', out.getvalue())
    assert found, out.getvalue()
    assert float(found.group(1)) >= 0.9  # 4 classes: chance is 0.25


def _run(command, cwd):
    """One README command line, with this interpreter for its python."""
    words = shlex.split(command)
    if words[0].endswith('python'):
        words[0] = sys.executable
    result = subprocess.run(words, cwd=cwd, capture_output=True, text=True,
                            timeout=600, env=dict(os.environ))
    output = result.stdout + result.stderr
    assert result.returncode == 0, f'{command} failed:\n{output[-4000:]}'
    return output


def _bbox_map(log, mode):
    found = re.findall(rf'Iter\({mode}\).*?coco/bbox_mAP: ([\d.]+)', log)
    assert found, f'no {mode} bbox mAP in:\n{log[-3000:]}'
    return float(found[-1])


def test_mmdet_quick_start_trains_and_evaluates(tmp_path):
    from mmdrconv.openmmlab.checkpoint import load_from_local
    name, config = _config_block()
    # The scratch folder stands for the repository: tools/ as there, the
    # config saved where the README says, data and work dirs written here.
    os.symlink(osp.join(REPO, 'tools'), tmp_path / 'tools')
    (tmp_path / name).write_text(config.code)
    commands = [line for line in _blocks('bash')[0].code.split('\n')
                if line.strip() and not line.startswith('#')]
    logs = [_run(command, tmp_path) for command in commands]
    _, train, test = logs
    data_root = re.search(r"data_root = '([^']+)'", config.code).group(1)
    for split in ('train', 'val'):
        assert (tmp_path / data_root / 'annotations' /
                f'instances_{split}.json').is_file()
    assert 'Iter(train) [4/4]' in train
    # The test run evaluates the trained weights on the validation images
    # that training evaluated them on at its end: the same mAP.
    assert _bbox_map(test, 'test') == _bbox_map(train, 'val')
    tested = shlex.split(commands[-1])[3]  # python tools/test.py CONFIG CKPT
    checkpoint = load_from_local(str(tmp_path / tested))
    keys = checkpoint['state_dict']
    for layer in ('layer2', 'layer3', 'layer4'):  # c3-c5: DRConv
        assert f'backbone.{layer}.0.conv2.guide.weight' in keys
        assert f'backbone.{layer}.0.conv2.channel_scale_generator.fc1.weight' \
            in keys
    assert not any(k.startswith('backbone.layer1.') and '.guide.' in k
                   for k in keys)
    assert isinstance(keys['backbone.layer4.0.conv2.weight'], torch.Tensor)
