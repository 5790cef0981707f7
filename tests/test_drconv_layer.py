"""The DRConv layer: every generator against the naive reference."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdrconv import DRConv
from mmdrconv.core.ops import naive_region_conv


def reference_forward(layer, x):
    return naive_region_conv(x, layer.region_filters(x), layer.guide(x),
                             layer.bias, layer.stride, layer.padding,
                             layer.dilation, layer.groups)


def randomize(layer):
    # Non-trivial guide and generator so regions and filters really differ.
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return layer


@pytest.mark.parametrize('generator', ['mixture', 'paper', 'modulated'])
@pytest.mark.parametrize('conv', [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=3, stride=2, padding=2, dilation=2),
    dict(kernel_size=1),
    dict(kernel_size=3, padding=1, groups=2, bias=False),
])
def test_layer_matches_reference(generator, conv):
    layer = randomize(DRConv(4, 6, region_num=3, generator=generator,
                             **conv).double())
    x = torch.randn(2, 4, 9, 8, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    y_ref = reference_forward(layer, x)
    torch.testing.assert_close(y, y_ref)
    grad_out = torch.randn_like(y)
    params = [x] + list(layer.parameters())
    grads = torch.autograd.grad(y, params, grad_out, allow_unused=True)
    grads_ref = torch.autograd.grad(y_ref, params, grad_out,
                                    allow_unused=True)
    names = ['x'] + [n for n, _ in layer.named_parameters()]
    for name, g, g_ref in zip(names, grads, grads_ref):
        assert g is not None, name
        torch.testing.assert_close(g, g_ref, msg=lambda m: f'{name}: {m}')


@pytest.mark.parametrize('generator', ['mixture', 'paper', 'modulated'])
def test_inplace_activation_after_the_layer(generator):
    # ConvModule follows the conv with ReLU(inplace=True): the layer's output
    # must accept in-place ops and keep exact gradients.
    layer = randomize(DRConv(4, 6, 3, padding=1, region_num=3,
                             generator=generator).double())
    x = torch.randn(2, 4, 7, 6, dtype=torch.float64, requires_grad=True)
    y = F.relu(layer(x), inplace=True)
    y_ref = F.relu(reference_forward(layer, x))
    torch.testing.assert_close(y, y_ref)
    grad_out = torch.randn_like(y)
    params = [x] + list(layer.parameters())
    for g, g_ref in zip(torch.autograd.grad(y, params, grad_out),
                        torch.autograd.grad(y_ref, params, grad_out)):
        torch.testing.assert_close(g, g_ref)


def test_modulated_starts_equal_to_its_convolution():
    conv = nn.Conv2d(8, 16, 3, padding=1)
    layer = DRConv(8, 16, 3, padding=1, generator='modulated')
    missing, unexpected = layer.load_state_dict(conv.state_dict(),
                                                strict=False)
    assert not unexpected
    assert {'weight', 'bias'}.isdisjoint(missing)
    x = torch.randn(2, 8, 12, 10)
    torch.testing.assert_close(layer(x), conv(x))


def test_mixture_initial_scale_matches_a_kaiming_conv():
    layer = DRConv(64, 64, 3, padding=1, generator='mixture')
    filters = layer.region_filters(torch.randn(2, 64, 8, 8))
    expected_std = (2.0 / (64 * 9))**0.5
    assert 0.7 * expected_std < filters.std() < 1.3 * expected_std


def test_parameter_counts_per_generator():
    conv_params = 256 * 256 * 9
    counts = {
        g: sum(p.numel() for p in DRConv(256, 256, 3, generator=g,
                                         bias=False).parameters())
        for g in ('mixture', 'paper', 'modulated')
    }
    guide = 256 * 8 * 9 + 8
    assert counts['modulated'] == conv_params + guide + \
        (256 * 64 + 64) + (64 * 8 * 256 + 8 * 256)
    assert counts['mixture'] == 4 * conv_params + guide + 256 * 32 + 32
    # The paper's generator: m^2 * C * O in its grouped 1x1 projection.
    assert counts['paper'] > 8 * 8 * 256 * 256


def test_region_map_and_regions_are_used():
    layer = randomize(DRConv(4, 6, 3, padding=1, region_num=4))
    x = torch.randn(2, 4, 16, 16)
    regions = layer.region_map(x)
    assert regions.shape == (2, 16, 16)
    assert regions.unique().numel() > 1
    torch.testing.assert_close(regions, layer.guide(x).argmax(1))


@pytest.mark.parametrize('generator', ['mixture', 'modulated'])
def test_channels_last_and_autocast(generator):
    layer = randomize(DRConv(8, 8, 3, padding=1, generator=generator))
    x = torch.randn(2, 8, 10, 10)
    expected = layer(x)
    y = layer(x.to(memory_format=torch.channels_last))
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y16 = layer(x)
        regions16 = layer.region_map(x)
    assert y16.dtype == torch.bfloat16
    # A bf16 guide may flip a near-tie pixel to another region: compare the
    # pixels whose region both precisions agree on (nearly all of them).
    same = (regions16 == layer.region_map(x))[:, None].expand_as(expected)
    assert same.float().mean() > 0.95
    torch.testing.assert_close(y16.float()[same], expected[same], rtol=0.05,
                               atol=0.2)


@pytest.mark.parametrize('generator', ['mixture', 'paper', 'modulated'])
def test_model_to_channels_last_keeps_outputs_and_trains(generator):
    """model.to(memory_format=torch.channels_last), the usual CPU / GPU
    speed-up, converts every DRConv form (torch raises on 5-D parameters;
    the mixture's bases go through as the 4-D conv weight they are)."""
    model = torch.nn.Sequential(
        randomize(DRConv(8, 16, 3, padding=1, generator=generator)),
        torch.nn.ReLU())
    x = torch.randn(2, 8, 12, 12)
    expected = model(x)
    expected.sum().backward()  # the conversion carries gradients too
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.to(memory_format=torch.channels_last)
    for name, param in model.named_parameters():
        assert isinstance(param, torch.nn.Parameter) and param.is_leaf, name
        torch.testing.assert_close(param.grad, grads[name])
    y = model(x.to(memory_format=torch.channels_last))
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    model.zero_grad()
    y.sum().backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, grads[name], rtol=1e-4,
                                   atol=1e-4)
    model.double()  # shape-keeping conversions act as before
    assert model(x.double()).dtype == torch.float64


@pytest.mark.parametrize('kwargs, message', [
    (dict(region_num=0), 'region_num'),
    (dict(groups=3), 'divisible by groups'),
    (dict(generator='magic'), 'generator must be one of'),
])
def test_bad_construction_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DRConv(8, 8, 3, **kwargs)


@pytest.mark.parametrize('kwargs, message', [
    (dict(padding='same', stride=2), "padding='same' is not supported for "
     'strided'),
    (dict(padding='full'), "padding must be an int, a pair, 'same' or"),
    (dict(padding=-1), 'padding must be >= 0'),
    (dict(dilation=0), 'dilation must be >= 1'),
    (dict(stride=0.5), 'stride must be an int'),
])
def test_bad_geometry_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DRConv(8, 8, 3, **kwargs)


@pytest.mark.parametrize('generator', ['modulated', 'mixture'])
@pytest.mark.parametrize('kernel_size, dilation', [(3, 1), (4, 1), (2, 3),
                                                   (4, 2)])
@pytest.mark.parametrize('padding', ['same', 'valid'])
def test_string_padding_as_nn_conv2d(generator, kernel_size, dilation,
                                     padding):
    layer = randomize(DRConv(4, 6, kernel_size, padding=padding,
                             dilation=dilation, region_num=3,
                             generator=generator)).double()
    conv = nn.Conv2d(4, 6, kernel_size, padding=padding, dilation=dilation)
    x = torch.randn(2, 4, 9, 8, dtype=torch.double)
    y = layer(x)
    assert y.shape == conv.double()(x).shape
    # Reference: nn.Conv2d's zero padding made explicit, then the naive op.
    pad_h = dilation * (kernel_size - 1) if padding == 'same' else 0
    extra = pad_h % 2
    x_padded = F.pad(x, (pad_h // 2, pad_h // 2 + extra, pad_h // 2,
                         pad_h // 2 + extra))
    expected = naive_region_conv(x_padded, layer.region_filters(x),
                                 layer.guide(F.pad(x, (0, extra, 0, extra))),
                                 layer.bias, dilation=dilation)
    torch.testing.assert_close(y, expected)
    assert layer.region_map(x).shape == y.shape[:1] + y.shape[2:]


def test_generator_picks_the_layer_class():
    from mmdrconv.core.layers import GeneratedFilterDRConv, ModulatedDRConv
    assert type(DRConv(4, 4, 3)) is ModulatedDRConv
    assert type(DRConv(4, 4, 3, generator='paper')) is GeneratedFilterDRConv
    positional = DRConv(4, 4, 3, 1, 1, 1, 1, True, 2, 'mixture')
    assert type(positional) is GeneratedFilterDRConv
    assert positional.generator == 'mixture'
    with pytest.raises(TypeError, match='num_bases'):
        DRConv(4, 4, 3, num_bases=2)  # a 'mixture' option


def test_mixture_loads_its_first_checkpoint_layout():
    # Version 1 stored the bases as (n, O, kh, kw, C/g).
    layer = randomize(DRConv(4, 6, 3, padding=1, region_num=2,
                             generator='mixture'))
    state = layer.state_dict()
    legacy = dict(state)  # no version metadata, as a hand-made dict
    legacy['filter_generator.bases'] = \
        state['filter_generator.bases'].permute(0, 1, 3, 4, 2).contiguous()
    fresh = DRConv(4, 6, 3, padding=1, region_num=2, generator='mixture')
    fresh.load_state_dict(legacy)
    x = torch.randn(2, 4, 7, 7)
    torch.testing.assert_close(fresh(x), layer(x))
    fresh.load_state_dict(state)  # and the current layout, unchanged
    torch.testing.assert_close(fresh(x), layer(x))


@pytest.mark.parametrize('shape, message', [
    ((2, 5, 8, 8), 'expects 8 input channels, got 5'),
    ((8, 8, 8), 'expects a 4-D input'),
])
def test_bad_input_is_named(shape, message):
    with pytest.raises(ValueError, match=message):
        DRConv(8, 8, 3)(torch.randn(*shape))


def test_training_steps_reduce_loss():
    torch.manual_seed(0)
    # A target only a spatially varying filter can fit well: left half
    # blurred, right half edge-filtered.
    x = torch.randn(8, 1, 16, 16)
    blur = torch.full((1, 1, 3, 3), 1 / 9)
    edge = torch.tensor([[[[0., -1, 0], [-1, 4, -1], [0, -1, 0]]]])
    target = torch.cat([F.conv2d(x, blur, padding=1)[..., :8],
                        F.conv2d(x, edge, padding=1)[..., 8:]], dim=-1)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                          DRConv(8, 1, 3, padding=1, region_num=4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = F.mse_loss(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize('generator', ['modulated', 'mixture'])
def test_complexity_counts_drconv_as_one_conv_plus_extras(generator):
    from mmdrconv.core.complexity import count_complexity
    layer = DRConv(16, 32, 3, padding=1, region_num=4, generator=generator)
    x = torch.randn(2, 16, 10, 10)
    counts = count_complexity(layer, lambda: layer(x))
    conv = 2 * 32 * 100 * 16 * 9
    guide = 2 * 4 * 100 * 16 * 9
    if generator == 'modulated':
        extra = 2 * 32 * 100 + 2 * (16 * 8 + 8 * 4 * 32)  # scale + MLP
    else:
        extra = 2 * 4 * 4 * 32 * 16 * 9 + 2 * 16 * 16  # synthesis + routing
    assert counts['macs'] == conv + guide + extra
    assert counts['params'] == sum(p.numel() for p in layer.parameters())


@pytest.mark.parametrize('generator', ['mixture', 'paper', 'modulated'])
def test_empty_batch(generator):
    # Mask heads see empty RoI batches.
    layer = DRConv(8, 4, 3, padding=1, region_num=3, generator=generator)
    x = torch.randn(0, 8, 14, 14, requires_grad=True)
    y = layer(x)
    assert y.shape == (0, 4, 14, 14)
    y.sum().backward()
    # An empty batch contributes nothing: every gradient exists and is zero
    # (None would break optimizers that expect one, NaN would poison them).
    assert torch.equal(x.grad, torch.zeros_like(x))
    for name, param in layer.named_parameters():
        assert param.grad is not None, name
        assert torch.equal(param.grad, torch.zeros_like(param)), name


@pytest.mark.parametrize('generator, names', [
    ('modulated', ['weight', 'bias', 'guide.weight', 'guide.bias',
                   'channel_scale_generator.fc1.weight',
                   'channel_scale_generator.fc1.bias',
                   'channel_scale_generator.fc2.weight',
                   'channel_scale_generator.fc2.bias']),
    ('mixture', ['bias', 'guide.weight', 'guide.bias',
                 'filter_generator.bases', 'filter_generator.routing.weight',
                 'filter_generator.routing.bias']),
])
def test_parameter_order_is_stable(generator, names):
    # Optimizer states in checkpoints are matched by parameter order: the
    # order of version 0.1.0's single DRConv class.
    layer = DRConv(4, 4, 3, generator=generator)
    assert [name for name, _ in layer.named_parameters()] == names
