"""The DRConv layer: every generator against the naive reference."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdrconv import DRConv
from mmdrconv.ops import naive_region_conv


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
    assert y16.dtype == torch.bfloat16
    torch.testing.assert_close(y16.float(), expected, rtol=0.05, atol=0.2)


@pytest.mark.parametrize('kwargs, message', [
    (dict(region_num=0), 'region_num'),
    (dict(groups=3), 'divisible by groups'),
    (dict(generator='magic'), 'generator must be one of'),
])
def test_bad_construction_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DRConv(8, 8, 3, **kwargs)


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
    from mmdrconv.profiling import count_complexity
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
    assert x.grad.shape == x.shape
