"""DRConv inside OpenMMLab: registries, scopes, ConvModule, ResNet's dcn slot,
the converter, and every config of configs/ built and trained one step."""
import glob
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_conv_layer
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope, MODELS

import mmdrconv
from mmdrconv import DRConv, convert_to_drconv
from mmdrconv.apis import build_model, load_config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.mark.parametrize('scope', [None, 'mmdet', 'mmseg'])
def test_build_conv_layer_in_every_scope(scope):
    import mmdet.models  # noqa: F401  (populate the child registries)
    import mmseg.models  # noqa: F401
    with DefaultScope.overwrite_default_scope(scope):
        for type_name in ('DRConv', 'DRConv2d'):
            layer = build_conv_layer(
                dict(type=type_name, region_num=4), 8, 16, 3, padding=1)
            assert isinstance(layer, DRConv) and layer.region_num == 4


def test_import_twice_and_through_custom_imports():
    import importlib
    importlib.reload(mmdrconv.openmmlab.registry)
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/detection/faster-rcnn_r50_fpn_1x_coco.py'))
    from mmengine.utils import import_modules_from_strings
    import_modules_from_strings(**cfg.custom_imports)
    assert MODELS.get('DRConv') is DRConv


def test_conv_module_with_drconv():
    module = ConvModule(8, 16, 3, padding=1, conv_cfg=dict(type='DRConv'),
                        norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))
    assert isinstance(module.conv, DRConv)
    module.init_weights()
    x = torch.randn(2, 8, 12, 12)
    # ConvModule = conv -> BN -> ReLU; check against the parts.
    expected = module.activate(module.bn(module.conv(x)))
    torch.testing.assert_close(module(x), expected)


@pytest.mark.parametrize('scope, backbone', [
    ('mmdet', dict(type='ResNet', depth=50, out_indices=(3, ))),
    ('mmseg', dict(type='ResNetV1c', depth=50, dilations=(1, 1, 2, 4),
                   strides=(1, 2, 1, 1), out_indices=(3, ))),
])
def test_resnet_dcn_slot(scope, backbone):
    import mmdet.models  # noqa: F401
    import mmseg.models  # noqa: F401
    cfg = dict(backbone, dcn=dict(type='DRConv', region_num=4),
               stage_with_dcn=(False, True, True, True))
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg)
    drconvs = {n: m for n, m in model.named_modules() if isinstance(m, DRConv)}
    assert len(drconvs) == 4 + 6 + 3  # every bottleneck of c3-c5
    assert all(n.endswith('conv2') for n in drconvs)
    if scope == 'mmseg':  # d8: c4/c5 conv2 dilated 2 and 4
        assert model.layer4[0].conv2.dilation == (4, 4)
    model.train()
    out = model(torch.randn(1, 3, 64, 64))
    out[-1].mean().backward()
    assert model.layer4[0].conv2.guide.weight.grad is not None


UPSTREAM = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    'mmdet::yolox/yolox_tiny_8xb8-300e_coco.py',
    'mmseg::deeplabv3/deeplabv3_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
]


@pytest.mark.parametrize('config', UPSTREAM)
def test_converter_on_upstream_models(config):
    cfg = load_config(config)
    model = build_model(cfg)
    convs = [n for n, m in model.named_modules() if type(m) is nn.Conv2d
             and n.startswith('backbone')]
    assert convs
    before = model.state_dict()
    convert_to_drconv(model, include=['backbone.*'], region_num=4)
    converted = [n for n, m in model.named_modules() if isinstance(m, DRConv)]
    assert sorted(converted) == sorted(convs)
    # Every old key survives (modulated DRConv keeps weight/bias names).
    assert set(before) <= set(model.state_dict())
    # ... and the converted model computes what the original did.
    model.eval()
    reference = build_model(cfg)
    reference.load_state_dict(before)
    reference.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model.backbone(x), reference.backbone(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_config_level_converter():
    cfg = load_config(osp.join(
        REPO, 'configs/detection/'
        'faster-rcnn_r50-drconv-c5-converted_fpn_1x_coco.py'))
    model = build_model(cfg)
    assert type(model).__name__ == 'FasterRCNN'
    drconvs = [n for n, m in model.named_modules() if isinstance(m, DRConv)]
    assert drconvs == [f'backbone.layer4.{i}.conv2' for i in range(3)]


def test_config_level_converter_raises_with_the_pattern():
    import mmdet.models  # noqa: F401

    import mmdrconv.openmmlab  # noqa: F401  (registers ConvertToDRConv)
    with DefaultScope.overwrite_default_scope('mmdet'), \
            pytest.raises(ValueError) as error:
        MODELS.build(dict(type='ConvertToDRConv',
                          model=dict(type='ResNet', depth=18),
                          include=['backbone.layer4.*.conv2']))
    # ResNet alone has no 'backbone.' prefix: the message shows real names.
    assert "include pattern 'backbone.layer4.*.conv2' matches no module " \
           'name' in str(error.value)
    assert "'layer4.0.conv2'" in str(error.value)


def _model_configs():
    paths = sorted(glob.glob(osp.join(REPO, 'configs/detection/*.py')) +
                   glob.glob(osp.join(REPO, 'configs/segmentation/*.py')))
    return [osp.relpath(p, REPO) for p in paths]


@pytest.mark.parametrize('config', _model_configs())
def test_every_config_builds_and_trains_one_step(config):
    from mmdrconv.analysis.inputs import random_batch
    # 64x64 images: the smallest at which every model's strides still
    # leave maps (FPN P7, DeepLabV3's dilated stages); a step takes about
    # 2/3 of its time at 96x128, and this test trains 32 full-width models.
    size = (64, 64)
    cfg = load_config(osp.join(REPO, config))
    preprocessor = cfg.model.get('data_preprocessor', {})
    if 'size' in preprocessor:  # Cityscapes pads to 512x1024: keep it small
        preprocessor['size'] = size
    model = revert_sync_batchnorm(build_model(cfg))
    is_drconv = 'drconv' in osp.basename(config)
    assert any(isinstance(m, DRConv) for m in model.modules()) == is_drconv
    model.train()
    data = random_batch(cfg, batch_size=2, size=size)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    # Each DRConv's parameters: all, and those of its filter generator
    # (channel scales or per-region filters: what only DRConv has).
    before = {name: ([p.detach().clone() for p in module.parameters()],
                     [p.detach().clone()
                      for p in module.generator_module.parameters()])
              for name, module in model.named_modules()
              if isinstance(module, DRConv)}
    losses = model.train_step(data, optim)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total) and total > 0
    # The step reached the generator of every DRConv the loss uses (a layer
    # the model builds but never calls, e.g. MobileNetV2's conv2 under an
    # FPN that reads earlier stages, changes nowhere). Not the guide: the
    # default generator starts with equal regions, so the guide's surrogate
    # gradient is zero until the regions' scales differ.
    modules = dict(model.named_modules())

    def changed(params, old):
        return any(not torch.equal(p, b) for p, b in zip(params, old))
    untouched = [name for name, (every, generator) in before.items()
                 if changed(modules[name].parameters(), every) and not
                 changed(modules[name].generator_module.parameters(),
                         generator)]
    assert untouched == []
    model.eval()
    with torch.no_grad():
        results = model.test_step(data)
    assert len(results) == 2
    for result in results:  # a prediction of the codebase's kind per image
        if 'pred_sem_seg' in result:
            assert result.pred_sem_seg.data.shape[-2:] == size
        else:
            boxes = result.pred_instances.bboxes
            assert boxes.ndim == 2 and boxes.shape[1] == 4
