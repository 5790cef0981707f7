"""Checkpoint loading never runs code from the file (weights only, explicit
allowlist), on every path that loads one; real checkpoints keep working."""
import os.path as osp
import runpy
from collections import OrderedDict

import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import checkpoint as upstream
from mmengine.runner.checkpoint import CheckpointLoader

from mmdrconv.openmmlab import checkpoint as policy
from mmdrconv.openmmlab import UntrustedCheckpointError

from helpers import DET, REPO


class RunsCode:
    """Unpickling this creates ``marker``: what a hostile file would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").close()', )


class WalksAttributes:
    """getattr on an allowed class beyond HistoryBuffer's statistics."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, 'register_statistics')


def payload_file(folder, name='evil.pth'):
    """A checkpoint that looks real but carries code; returns (path,
    marker)."""
    marker = osp.join(str(folder), name + '.ran')
    path = osp.join(str(folder), name)
    torch.save(dict(meta=dict(iter=2, hook=RunsCode(marker)),
                    state_dict=OrderedDict(w=torch.zeros(2))), path)
    return path, marker


def assert_refused(error_text, path, marker):
    assert 'refusing to load checkpoint' in error_text
    assert path in error_text and 'builtins.exec' in error_text
    assert '--trust-checkpoint' in error_text
    assert not osp.exists(marker)


def test_the_payload_is_real(tmp_path):
    # Guards the tests below: an unsafe load of this file does run its code.
    path, marker = payload_file(tmp_path)
    torch.load(path, weights_only=False)
    assert osp.exists(marker)


def test_mmengine_loader_refuses_payload(tmp_path):
    path, marker = payload_file(tmp_path)
    with pytest.raises(UntrustedCheckpointError) as error:
        CheckpointLoader.load_checkpoint(path)
    assert_refused(str(error.value), path, marker)
    with pytest.raises(UntrustedCheckpointError):  # mmengine's own entry
        upstream.load_checkpoint(torch.nn.Linear(1, 1), path)
    assert not osp.exists(marker)


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    path = str(tmp_path / 'walk.pth')
    torch.save(dict(meta=WalksAttributes()), path)
    with pytest.raises(UntrustedCheckpointError, match='getattr'):
        CheckpointLoader.load_checkpoint(path)


def test_trusting_is_an_explicit_opt_in(tmp_path, monkeypatch):
    path, marker = payload_file(tmp_path)
    monkeypatch.setenv(policy.TRUST_ENV, '1')
    CheckpointLoader.load_checkpoint(path)
    assert osp.exists(marker)


def test_corrupt_file_is_named(tmp_path):
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(policy.CheckpointError, match='corrupt') as error:
        CheckpointLoader.load_checkpoint(str(bad))
    assert not isinstance(error.value, UntrustedCheckpointError)


def test_offline_pretrained_lookup_and_init_cfg(tmp_path, monkeypatch):
    from mmengine.model import BaseModule
    folder = tmp_path / 'pretrained'
    folder.mkdir()
    path, marker = payload_file(folder, 'resnet50.pth')
    monkeypatch.setenv(policy.PRETRAINED_DIR_ENV, str(folder))
    with pytest.raises(UntrustedCheckpointError) as error:
        CheckpointLoader.load_checkpoint('torchvision://resnet50')
    assert_refused(str(error.value), path, marker)

    class Net(BaseModule):

        def __init__(self, checkpoint):
            super().__init__(init_cfg=dict(type='Pretrained',
                                           checkpoint=checkpoint))
            self.fc = torch.nn.Linear(2, 2)

    for name in ('torchvision://resnet50', path):
        with pytest.raises(UntrustedCheckpointError):
            Net(name).init_weights()
    assert not osp.exists(marker)


def test_tools_refuse_payload(synthetic_data, tmp_path):
    """tools/test.py, tools/train.py --resume, load_from and
    visualize_regions.py: refused before anything of the file runs."""
    from mmdrconv.cli import test as test_tool
    from mmdrconv.cli import train as train_tool
    path, marker = payload_file(tmp_path)
    root = f'{synthetic_data}/coco/'
    options = [f'{loader}.dataset.data_root={root}'
               for loader in ('train_dataloader', 'val_dataloader',
                              'test_dataloader')]
    options += [f'{e}.ann_file={root}annotations/instances_val.json'
                for e in ('val_evaluator', 'test_evaluator')]
    options += ['train_cfg.max_iters=1', 'train_dataloader.batch_size=1']
    work_dir = str(tmp_path / 'work')
    runs = {
        'test': lambda: test_tool.main(
            [DET, path, '--work-dir', work_dir, '--cfg-options', *options]),
        'resume': lambda: train_tool.main(
            [DET, '--work-dir', work_dir, '--resume', path, '--cfg-options',
             *options]),
        'load_from': lambda: train_tool.main(
            [DET, '--work-dir', work_dir, '--cfg-options', *options,
             f'load_from={path}']),
        'visualize': lambda: runpy.run_path(
            osp.join(REPO, 'tools/analysis/visualize_regions.py'),
            run_name='visualize')['main'](
                [DET, path, f'{root}val/val_000000.png',
                 str(tmp_path / 'maps')]),
    }
    for name, run in runs.items():
        with pytest.raises(UntrustedCheckpointError) as error:
            run()
        assert_refused(str(error.value), path, marker)


def test_real_checkpoints_load_as_pretrained(tmp_path):
    """A torchvision-style plain state dict and an OpenMMLab release-style
    checkpoint (meta + state_dict) load through load_from / init_cfg."""
    import numpy as np
    from mmengine.runner.checkpoint import load_checkpoint

    from mmdrconv.apis import build_model, load_config
    model = build_model(load_config(DET))
    backbone = model.backbone.state_dict()
    plain = OrderedDict((k, torch.randn_like(v) if v.is_floating_point()
                         else v) for k, v in backbone.items())
    plain['fc.weight'] = torch.randn(1000, 2048 // 4)  # torchvision head
    plain_file = str(tmp_path / 'resnet50.pth')
    torch.save(plain, plain_file)
    load_checkpoint(model.backbone, plain_file, strict=False)
    layer = model.backbone.layer3[0].conv2  # a DRConv with the conv's key
    torch.testing.assert_close(layer.weight, plain['layer3.0.conv2.weight'])

    release = dict(
        meta=dict(mmdet_version='3.3.0', seed=np.int64(3),
                  dataset_meta=dict(classes=('a', 'b'),
                                    palette=[(1, 2, 3), (4, 5, 6)]),
                  hist=np.arange(4, dtype=np.float32)),
        state_dict=model.state_dict())
    release_file = str(tmp_path / 'release.pth')
    torch.save(release, release_file)
    loaded = CheckpointLoader.load_checkpoint(release_file)
    assert loaded['meta']['seed'] == 3
    np.testing.assert_array_equal(loaded['meta']['hist'], np.arange(4))


def test_pinned_mmengine_still_has_what_we_replace():
    """Fails, naming the scheme, when mmengine changes a loader we replace
    (mmdrconv/openmmlab/checkpoint.py) or registers one we do not."""
    digests = {  # sha256[:16] of mmengine 0.10.7's functions
        'load_from_local': 'aa24a2a99a65f3f6',
        'load_from_http': 'ed82c56c8e371d63',
        'load_from_torchvision': 'ad456a3b0615a9bb',
        'load_from_openmmlab': 'c17b71970067b708',
        'load_from_mmcls': '3e1213f5442779a8',
        'load_from_pavi': '65d239620a49308d',
        'load_from_ceph': 'dabd19a85fecf851',
    }
    assert set(policy.UPSTREAM_PREFIXES) == set(policy.SCHEMES), \
        'mmengine registers other checkpoint schemes than the ones ' \
        'mmdrconv.openmmlab.checkpoint.SCHEMES replaces'
    for prefix, (_, name) in policy.SCHEMES.items():
        digest = policy.source_digest(getattr(upstream, name))
        assert digest == digests[name], \
            f'mmengine changed {name} (scheme {prefix!r}), which ' \
            'mmdrconv.openmmlab.checkpoint replaces: review the patch'
    for prefix, (loader, _) in policy.SCHEMES.items():
        assert CheckpointLoader._schemes[prefix] is loader, prefix
