"""The controls (mmdrconv/core/layers/controls.py): layers of known harm
where a k x k conv is asked for, alone and in the generated-data configs
beside their standard twins."""
import os.path as osp

import pytest
import torch

from helpers import MOBILENET_WEAKENED, RESNET_WEAKENED, SYN

CONTROLS = [
    ('mask-rcnn_r50-w16_fpn_synthetic-coco.py',
     'mask-rcnn_r50-w16-1x1-c3-c5_fpn_synthetic-coco.py', RESNET_WEAKENED),
    ('deeplabv3_r50-w16-d8_synthetic-cityscapes.py',
     'deeplabv3_r50-w16-d8-1x1-c3-c5_synthetic-cityscapes.py',
     RESNET_WEAKENED),
    ('mobilenet-v2-d8_deeplabv3_synthetic-cityscapes.py',
     'mobilenet-v2-d8-1x1_deeplabv3_synthetic-cityscapes.py',
     MOBILENET_WEAKENED),
]


@pytest.mark.parametrize('twin, control, weakened', CONTROLS,
                         ids=['mask-rcnn', 'deeplabv3', 'mobilenetv2'])
def test_control_differs_from_its_twin_exactly_in_the_weakened_layers(
        twin, control, weakened):
    from mmdrconv.apis import build_model, load_config
    from mmdrconv.core.layers.controls import PointwiseConv
    models = [build_model(load_config(osp.join(SYN, c)))
              for c in (twin, control)]
    states = [m.state_dict() for m in models]
    assert list(states[0]) == list(states[1])  # same names, same order
    differ = {k for k in states[0] if states[0][k].shape != states[1][k].shape}
    assert differ == {f'{name}.weight' for name in weakened}
    for key in differ:
        assert states[1][key].shape == states[0][key].shape[:2] + (1, 1)
        assert states[0][key].shape[2:] == (3, 3)
    modules = dict(models[1].named_modules())
    assert {n for n, m in modules.items()
            if isinstance(m, PointwiseConv)} == weakened
    # Same feature maps out of the backbone: only the kernels changed.
    x = torch.randn(1, 3, 64, 64)
    shapes = []
    for model in models:
        model.eval()  # mmdet's ResNet.train returns None: no chaining
        with torch.no_grad():
            shapes.append([f.shape for f in model.backbone(x)])
    assert shapes[0] == shapes[1]


def test_frozen_control_shares_every_weight_and_trains_all_but_c3_c5():
    from mmdrconv.apis import build_model, load_config
    from mmdrconv.core.layers.controls import FrozenConv
    twin, control = (build_model(load_config(osp.join(SYN, c))) for c in (
        'mask-rcnn_r50-w16_fpn_synthetic-coco.py',
        'mask-rcnn_r50-w16-frozen-c3-c5_fpn_synthetic-coco.py'))
    states = [m.state_dict() for m in (twin, control)]
    assert [(k, v.shape) for k, v in states[0].items()] == \
        [(k, v.shape) for k, v in states[1].items()]
    assert {n for n, m in control.named_modules()
            if isinstance(m, FrozenConv)} == RESNET_WEAKENED
    frozen = {n for n, p in control.named_parameters() if not p.requires_grad}
    assert frozen == {f'{name}.weight' for name in RESNET_WEAKENED}
    # The same function as the twin once it holds the twin's weights.
    control.load_state_dict(states[0])
    x = torch.randn(1, 3, 64, 64)
    twin.eval(), control.eval()
    with torch.no_grad():
        for a, b in zip(twin.backbone(x), control.backbone(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_frozen_conv_keeps_its_weight_through_an_optimizer_step():
    from mmdrconv.core.layers.controls import FrozenConv
    torch.manual_seed(0)
    model = torch.nn.Sequential(FrozenConv(3, 4, 3, padding=1),
                                torch.nn.Conv2d(4, 2, 3))
    model.to(torch.float64)  # a conversion keeps the weight frozen
    before = [p.detach().clone() for p in model.parameters()]
    optim = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    model(torch.randn(2, 3, 6, 6, dtype=torch.float64)).square().sum() \
        .backward()
    optim.step()
    after = list(model.parameters())
    assert not after[0].requires_grad and after[0].grad is None
    assert torch.equal(after[0], before[0])  # no update, no weight decay
    assert all(not torch.equal(a, b) for a, b in zip(after[1:], before[1:]))


def test_pointwise_control_names_a_pattern_that_weakens_nothing():
    from mmdrconv.core.layers.controls import convs_as_pointwise
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                                torch.nn.Conv2d(4, 4, 1))
    with pytest.raises(ValueError, match=r"pattern '1' matches no k x k"):
        convs_as_pointwise(model, ['1'])  # already 1x1
    convs_as_pointwise(model, ['0'])
    assert model[0].kernel_size == (1, 1) and model[0].in_channels == 3
    assert model(torch.randn(1, 3, 5, 5)).shape == (1, 4, 5, 5)


def test_skip_conv_passes_its_input_subsampled_like_a_strided_conv():
    """Against a real 3x3 conv whose kernel is the identity at its centre:
    the same pixels (ceil(H / s) x ceil(W / s)), exactly; no parameters."""
    from mmdrconv.core.layers.controls import SkipConv
    x = torch.randn(2, 8, 7, 9)
    identity = torch.zeros(8, 8, 3, 3)
    identity[range(8), range(8), 1, 1] = 1
    for stride, dilation in ((1, 1), (2, 1), (2, 2), ((2, 1), 1)):
        layer = SkipConv(8, 8, 3, stride=stride, padding=dilation,
                         dilation=dilation, bias=False)
        conv = torch.nn.functional.conv2d(x, identity, stride=stride,
                                          padding=dilation,
                                          dilation=dilation)
        assert torch.equal(layer(x), conv), stride
    assert SkipConv(8, 8, stride=2)(x).shape == (2, 8, 4, 5)
    assert list(SkipConv(8, 8).parameters()) == []
    with pytest.raises(ValueError, match='in_channels == out_channels, got '
                       '8 -> 16'):
        SkipConv(8, 16)
    with pytest.raises(ValueError, match='bias=False'):
        SkipConv(8, 8, bias=True)
    with pytest.raises(ValueError, match=r'expects \(N, 8, H, W\), got '
                       r'\(2, 4, 7, 9\)'):
        SkipConv(8, 8)(x[:, :4])


def test_skip_control_is_a_resnet_bottleneck_without_its_conv2():
    """mmdet's ResNet with dcn=dict(type='SkipConv') in c3-c5: each
    bottleneck there computes conv1, its norm, the stride's subsampling,
    norm2, conv3 and the shortcut, computed here by hand; the generated-data
    config has no conv2 weight in c3-c5 and the twin's everywhere else."""
    from mmdet.models.backbones import ResNet

    import mmdrconv  # noqa: F401  (registers the controls)
    from mmdrconv.apis import build_model, load_config
    from mmdrconv.core.layers.controls import SkipConv
    backbone = ResNet(depth=50, base_channels=16, dcn=dict(type='SkipConv'),
                      stage_with_dcn=(False, True, True, True))
    for module in backbone.modules():  # away from the identity init
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    backbone.eval()
    x = torch.randn(2, 64, 15, 17)
    relu = torch.nn.functional.relu
    for block, stride in ((backbone.layer2[0], 2), (backbone.layer2[1], 1)):
        assert isinstance(block.conv2, SkipConv)
        h = relu(block.norm1(block.conv1(x)))
        h = relu(block.norm2(h[:, :, ::stride, ::stride]))
        h = block.norm3(block.conv3(h))
        shortcut = block.downsample(x) if block.downsample else x
        with torch.no_grad():
            torch.testing.assert_close(block(x), relu(h + shortcut),
                                       rtol=0, atol=0)
        x = block(x).detach()
    assert not isinstance(backbone.layer1[0].conv2, SkipConv)
    twin, control = (build_model(load_config(osp.join(SYN, c))) for c in (
        'deeplabv3_r50-w16-d8_synthetic-cityscapes.py',
        'deeplabv3_r50-w16-d8-skip-c3-c5_synthetic-cityscapes.py'))
    missing = set(twin.state_dict()) - set(control.state_dict())
    assert missing == {f'{name}.weight' for name in RESNET_WEAKENED}
    assert set(control.state_dict()) <= set(twin.state_dict())
