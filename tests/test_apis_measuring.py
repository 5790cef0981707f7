"""Models built for measuring (mmdrconv/apis.py: model_for_measuring): no
pretrained weights are fetched, so the real configs measure offline."""
import pytest

from mmdrconv.apis import model_for_measuring, without_pretrained


def test_pretrained_sources_are_removed_and_nothing_else():
    model = dict(
        type='EncoderDecoder', pretrained='open-mmlab://resnet50_v1c',
        backbone=dict(type='ResNet', depth=50, init_cfg=dict(
            type='Pretrained', checkpoint='torchvision://resnet50')),
        decode_head=dict(type='ASPPHead', init_cfg=[
            dict(type='Normal', std=0.01),
            dict(type='Pretrained', checkpoint='head.pth')]))
    assert without_pretrained(model) == dict(
        type='EncoderDecoder', pretrained=None,
        backbone=dict(type='ResNet', depth=50, init_cfg=None),
        decode_head=dict(type='ASPPHead',
                         init_cfg=[dict(type='Normal', std=0.01)]))
    assert model['backbone']['init_cfg']['type'] == 'Pretrained'  # a copy


@pytest.mark.parametrize('config', [
    'configs/segmentation/deeplabv3_r50-d8-drconv-c3-c5_4xb2-80k_'
    'cityscapes-512x1024.py',  # mmseg: pretrained='open-mmlab://...'
    'configs/detection/retinanet_r50-drconv-c3-c5_fpn_1x_coco.py',  # mmdet
])
def test_real_configs_are_measured_without_loading_weights(config,
                                                           monkeypatch):
    # Offline, the ImageNet weights these configs start from failed the
    # whole measurement (benchmarks/bench_models.py's real-size models).
    from mmengine.runner.checkpoint import CheckpointLoader

    def refuse(*args, **kwargs):
        raise AssertionError(f'tried to load weights: {args}')

    monkeypatch.setattr(CheckpointLoader, 'load_checkpoint', refuse)
    cfg, model = model_for_measuring(config)
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) > 20e6
