"""DRConv's nn.Conv2d arguments (padding_mode, device, dtype) and options.

Values against nn.Conv2d: a DRConv with one region is a per-sample
convolution, and a fresh modulated DRConv equals its convolution, in every
padding mode; parameters follow ``dtype`` and ``device`` (including 'meta').
Also: ``mixture_algorithm`` apart from ``backend``, checkpoints of the
modulated layer saved under its old generator name, and its scale MLP's
width by kernel taps (files of the wider, older 1x1 MLP load with theirs).
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdrconv import DRConv
from mmdrconv.core.layers import ModulatedDRConv
from mmdrconv.core.ops import naive_region_conv

GENERATORS = ['modulated', 'mixture', 'paper']
MODES = ['zeros', 'reflect', 'replicate', 'circular']


def randomize(module, std=0.3):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * std)
    return module


@pytest.mark.parametrize('conv', [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=(3, 5), padding=(2, 1), stride=(2, 1), dilation=(1, 2)),
    dict(kernel_size=4, padding='same', dilation=1),  # asymmetric
])
@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('generator', GENERATORS)
def test_one_region_is_nn_conv2d_per_sample(generator, mode, conv):
    layer = randomize(DRConv(4, 6, region_num=1, generator=generator,
                             padding_mode=mode, dtype=torch.float64,
                             **conv))
    assert all(p.dtype == torch.float64 for p in layer.parameters())
    x = torch.randn(2, 4, 7, 9, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    filters = layer.region_filters(x)[:, 0]
    reference = nn.Conv2d(4, 6, padding_mode=mode, dtype=torch.float64,
                          **conv)
    expected = []
    for b in range(2):
        params = dict(weight=filters[b], bias=layer.bias)
        expected.append(torch.func.functional_call(reference, params,
                                                   (x[b:b + 1], )))
    expected = torch.cat(expected)
    torch.testing.assert_close(y, expected)
    dy = torch.randn_like(y)
    torch.testing.assert_close(torch.autograd.grad(y, x, dy)[0],
                               torch.autograd.grad(expected, x, dy)[0])


@pytest.mark.parametrize('mode', MODES)
def test_fresh_modulated_layer_equals_its_convolution(mode):
    conv = nn.Conv2d(5, 7, 3, padding=2, dilation=2, padding_mode=mode)
    layer = DRConv(5, 7, 3, padding=2, dilation=2, padding_mode=mode,
                   region_num=8)
    layer.load_state_dict(conv.state_dict(), strict=False)
    with torch.no_grad():
        layer.guide.weight.normal_()  # many regions, all scales still 1
    x = torch.randn(2, 5, 8, 6)
    assert layer.region_map(x).unique().numel() > 1
    torch.testing.assert_close(layer(x), conv(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('mode', ['reflect', 'circular'])
@pytest.mark.parametrize('generator', GENERATORS)
def test_padding_mode_with_many_regions_matches_the_reference(generator,
                                                              mode):
    # The guide pads like the layer: reference = pad by the mode first,
    # then the naive op and the guide without padding.
    layer = randomize(DRConv(4, 6, 3, padding=(1, 2), region_num=3,
                             generator=generator, padding_mode=mode,
                             dtype=torch.float64))
    x = torch.randn(2, 4, 6, 7, dtype=torch.float64)
    padded = F.pad(x, (2, 2, 1, 1), mode=mode)
    guide = F.conv2d(padded, layer.guide.weight, layer.guide.bias)
    expected = naive_region_conv(padded, layer.region_filters(x), guide,
                                 layer.bias)
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer.region_map(x), guide.argmax(1))
    assert guide.argmax(1).unique().numel() > 1
    assert f'padding_mode={mode!r}' in repr(layer)


def test_bad_padding_mode_is_named():
    with pytest.raises(ValueError, match='padding_mode must be one of'):
        DRConv(4, 4, 3, padding_mode='mirror')
    # nn.Conv2d's 9th positional argument is padding_mode; DRConv's is
    # region_num: said so, not a confusing region_num error alone.
    with pytest.raises(ValueError, match='pass padding_mode='):
        DRConv(4, 4, 3, 1, 1, 1, 1, True, 'reflect')


@pytest.mark.parametrize('generator', GENERATORS)
def test_meta_device_then_materialised(generator):
    source = randomize(DRConv(4, 6, 3, padding=1, region_num=2,
                              generator=generator))
    layer = DRConv(4, 6, 3, padding=1, region_num=2, generator=generator,
                   device='meta')
    assert all(t.is_meta for t in layer.state_dict().values())
    layer.to_empty(device='cpu')
    layer.load_state_dict(source.state_dict())
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(layer(x), source(x))
    cpu = DRConv(4, 6, 3, generator=generator, device='cpu',
                 dtype=torch.float64)
    assert {t.device.type for t in cpu.state_dict().values()} == {'cpu'}
    assert {t.dtype for t in cpu.state_dict().values()} == {torch.float64}


def test_backend_and_mixture_algorithm_are_separate():
    layer = DRConv(4, 6, 1, region_num=2, generator='mixture',
                   mixture_algorithm='filters')
    assert layer.backend == 'auto' and layer.mixture_algorithm == 'filters'
    layer.backend = 'filters'  # an algorithm is not a kernel backend
    with pytest.raises(ValueError, match='backend must be one of'):
        layer(torch.randn(1, 4, 3, 3))


class Holder(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = DRConv(4, 6, 3, padding=1, region_num=2)


def test_modulated_checkpoints_of_the_old_name_load():
    source = Holder()
    randomize(source.conv)
    state = source.state_dict()
    assert any(k.startswith('conv.channel_scale_generator.') for k in state)
    # As saved before the rename (and without version metadata).
    old = {k.replace('channel_scale_generator.', 'filter_generator.'): v
           for k, v in state.items()}
    fresh = Holder()
    fresh.load_state_dict(old)  # strict: every key found
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(fresh.conv(x), source.conv(x))
    for key, value in state.items():
        torch.testing.assert_close(fresh.state_dict()[key], value)
    assert isinstance(fresh.conv, ModulatedDRConv)
    assert not hasattr(fresh.conv, 'filter_generator')


def test_old_keys_pass_the_checkpoint_check_of_the_tools():
    pytest.importorskip('mmengine')
    from mmdrconv.openmmlab.checkpoint import checkpoint_mismatch
    model = Holder()
    old = {k.replace('channel_scale_generator.', 'filter_generator.'): v
           for k, v in model.state_dict().items()}
    assert checkpoint_mismatch(model, old) is None
    del old['conv.filter_generator.fc1.bias']
    assert 'conv.channel_scale_generator.fc1.bias' in \
        checkpoint_mismatch(model, old)


def test_a_mixture_state_dict_into_a_modulated_layer_names_real_keys():
    # The legacy rename (filter_generator -> channel_scale_generator) used
    # to apply to the mixture's own filter_generator keys, so the load
    # reported "unexpected" keys that are in neither the file nor the model.
    mixture = DRConv(4, 6, 3, padding=1, region_num=2, generator='mixture')
    modulated = DRConv(4, 6, 3, padding=1, region_num=2)
    state = mixture.state_dict()
    result = modulated.load_state_dict(state, strict=False)
    assert sorted(result.unexpected_keys) == sorted(
        k for k in state if k not in modulated.state_dict())
    assert set(result.unexpected_keys) == {
        'filter_generator.bases', 'filter_generator.routing.weight',
        'filter_generator.routing.bias'}
    assert sorted(result.missing_keys) == sorted(
        k for k in modulated.state_dict() if k not in state)


@pytest.mark.parametrize('in_channels,kernel_size,hidden', [
    (64, 3, 16),     # 9 taps: in_channels / 4, as before version 3
    (64, 5, 16),     # more taps: the same
    (576, 1, 16),    # 1x1: 1/9 of that
    (64, 1, 8),      # at least 8
    (192, (1, 3), 16),  # 3 taps: a third
])
def test_scale_mlp_width_follows_the_kernel_taps(in_channels, kernel_size,
                                                 hidden):
    layer = DRConv(in_channels, 32, kernel_size)
    generator = layer.channel_scale_generator
    assert generator.fc1.out_features == generator.fc2.in_features == hidden
    assert generator.fc1.weight.shape == (hidden, in_channels)


def test_a_1x1_layers_scale_mlp_is_lighter_than_its_convolution():
    # MobileNetV2's widest pointwise conv: before version 3 its scale MLP
    # held 2.1 times the convolution's weights.
    layer = DRConv(160, 960, 1)
    mlp = sum(p.numel() for p in layer.channel_scale_generator.parameters())
    assert mlp < 0.5 * layer.weight.numel()


def test_a_file_of_the_wider_scale_mlp_loads_with_its_width():
    # What version 2 built for a 1x1 conv of 64 channels: hidden 16, not 8.
    source = randomize(DRConv(64, 48, 1, hidden_ratio=2.25, region_num=4))
    assert source.channel_scale_generator.fc1.out_features == 16
    fresh = DRConv(64, 48, 1, region_num=4)
    params = list(fresh.parameters())
    optimizer = torch.optim.SGD(params, lr=0.1)  # built before loading
    fresh.load_state_dict(source.state_dict())  # strict
    assert [p is q for p, q in zip(params, fresh.parameters())] == \
        [True] * len(params)
    assert fresh.channel_scale_generator.fc1.out_features == 16
    x = torch.randn(2, 64, 5, 6)
    torch.testing.assert_close(fresh(x), source(x))
    fresh(x).sum().backward()
    optimizer.step()  # gradients and parameters of the adopted shapes
    assert not torch.equal(fresh.channel_scale_generator.fc1.weight,
                           source.channel_scale_generator.fc1.weight)
    # A file whose MLP does not fit the layer otherwise still fails.
    state = source.state_dict()
    state['channel_scale_generator.fc2.weight'] = torch.zeros(4 * 48, 12)
    with pytest.raises(RuntimeError, match='size mismatch'):
        DRConv(64, 48, 1, region_num=4).load_state_dict(state)


def test_the_checkpoint_check_accepts_the_wider_scale_mlp():
    pytest.importorskip('mmengine')
    from mmdrconv.openmmlab.checkpoint import checkpoint_mismatch
    model = nn.Sequential(DRConv(64, 48, 1, region_num=4))
    old = nn.Sequential(DRConv(64, 48, 1, region_num=4, hidden_ratio=2.25))
    assert checkpoint_mismatch(model, old.state_dict()) is None
    state = old.state_dict()
    state['0.channel_scale_generator.fc1.bias'] = torch.zeros(12)
    assert 'with other shapes' in checkpoint_mismatch(model, state)


def test_nchw_input_of_a_1x1_layer_matches_the_channels_last_path():
    # An NCHW input to a 1x1 layer that does not widen it is read by a GEMM
    # over its transposed planes; values and gradients as the converted
    # input's convolution, and as the naive reference.
    torch.manual_seed(0)
    layer = randomize(DRConv(12, 8, 1, region_num=4))
    x = torch.randn(2, 12, 5, 7)
    assert layer._reads_planes_as_rows(x)
    x_last = x.contiguous(memory_format=torch.channels_last)
    assert not layer._reads_planes_as_rows(x_last)
    assert not DRConv(8, 12, 1)._reads_planes_as_rows(torch.randn(1, 8, 3, 3))
    results = []
    for inp in (x, x_last):
        inp = inp.clone().requires_grad_()
        layer.zero_grad()
        y = layer(inp)
        y.backward(torch.linspace(-1, 1, y.numel()).view(y.shape))
        results.append((y, inp.grad,
                        [p.grad.clone() for p in layer.parameters()]))
    (y, grad_x, grads), (y_ref, grad_x_ref, grads_ref) = results
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(grad_x, grad_x_ref)
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref)
    with torch.no_grad():
        naive = naive_region_conv(x, layer.region_filters(x), layer.guide(x),
                                  layer.bias, 1, 0, 1, 1)
        torch.testing.assert_close(layer(x), naive, rtol=1e-4, atol=1e-4)
