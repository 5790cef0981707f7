"""Mixture DRConv by mixed outputs against materialised filters."""
import pytest
import torch

from mmdrconv.core.layers import DRConv
from mmdrconv.core.ops import naive_region_conv
from mmdrconv.core.ops.mixture_conv import (MAX_MIXED_PIXELS,
                                            MAX_MIXED_PIXELS_KXK,
                                            MAX_MIXED_PIXELS_KXK_TRAINING,
                                            RegionMixFunction,
                                            mixed_output_conv, mixes_outputs)


def materialised(x, coef, bases, guide, bias, **conv):
    """The reference: B x m filters built, then the naive region conv."""
    filters = torch.einsum('bji,iochw->bjochw', coef, bases)
    return naive_region_conv(x, filters, guide, bias, **conv)


@pytest.mark.parametrize('kernel,stride,padding,dilation',
                         [(1, 1, 0, 1), (3, 2, 1, 1), (3, 1, 2, 2)])
def test_mixed_outputs_match_materialised_filters(kernel, stride, padding,
                                                  dilation):
    conv = dict(stride=stride, padding=padding, dilation=dilation)
    b, c, o, m, n = 2, 5, 6, 4, 3
    x = torch.randn(b, c, 7, 8, dtype=torch.float64)
    bases = torch.randn(n, o, c, kernel, kernel, dtype=torch.float64)
    coef = torch.rand(b, m, n, dtype=torch.float64)
    out_hw = [(s + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
              for s in (7, 8)]
    guide_weight = torch.randn(m, c, kernel, kernel, dtype=torch.float64)
    guide_bias = torch.randn(m, dtype=torch.float64)
    bias = torch.randn(o, dtype=torch.float64)
    inputs = [t.requires_grad_() for t in (x, coef, bases, guide_weight,
                                           guide_bias, bias)]
    y = mixed_output_conv(*inputs, **conv)
    guide = torch.nn.functional.conv2d(x, guide_weight, guide_bias, **conv)
    assert guide.shape[2:] == tuple(out_hw)
    y_ref = materialised(x, coef, bases, guide, bias, **conv)
    torch.testing.assert_close(y, y_ref)
    grad = torch.randn_like(y)
    grads = torch.autograd.grad(y, inputs, grad)
    grads_ref = torch.autograd.grad(y_ref, inputs, grad)
    for name, g, g_ref in zip(
            ('x', 'coef', 'bases', 'guide weight', 'guide bias', 'bias'),
            grads, grads_ref):
        torch.testing.assert_close(g, g_ref, msg=lambda m: f'{name}: {m}')
    with torch.no_grad():  # the gather path of inference
        torch.testing.assert_close(mixed_output_conv(*inputs, **conv), y)


@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
def test_region_mix_in_both_layouts(layout):
    # The mix runs as rows on channels-last maps and as channel planes on
    # NCHW ones: both against the materialised reference, values, first
    # and second derivatives (finite differences of the first).
    b, c, o, m, n = 2, 5, 6, 4, 3
    x = torch.randn(b, c, 6, 5, dtype=torch.float64)
    if layout == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last)
    bases = torch.randn(n, o, c, 1, 1, dtype=torch.float64)
    coef = torch.rand(b, m, n, dtype=torch.float64)
    guide_weight = torch.randn(m, c, 1, 1, dtype=torch.float64)
    guide_bias = torch.randn(m, dtype=torch.float64)
    bias = torch.randn(o, dtype=torch.float64)
    inputs = [t.requires_grad_() for t in (x, coef, bases, guide_weight,
                                           guide_bias, bias)]
    y = mixed_output_conv(*inputs, 1, 0, 1)
    assert y.is_contiguous(memory_format=torch.channels_last) == \
        (layout == 'channels_last')
    guide = torch.nn.functional.conv2d(x, guide_weight, guide_bias)
    y_ref = materialised(x, coef, bases, guide, bias)
    torch.testing.assert_close(y, y_ref)
    grad = torch.randn_like(y)
    for g, g_ref in zip(torch.autograd.grad(y, inputs, grad),
                        torch.autograd.grad(y_ref, inputs, grad)):
        torch.testing.assert_close(g, g_ref)
    packed = torch.cat([torch.randn(b, n * o, 3, 4, dtype=torch.float64),
                        torch.randn(b, m, 3, 4, dtype=torch.float64)], 1)
    if layout == 'channels_last':
        packed = packed.contiguous(memory_format=torch.channels_last)
    leaves = [t.detach().clone().requires_grad_()
              for t in (packed, coef, guide_bias, bias)]
    assert torch.autograd.gradgradcheck(RegionMixFunction.apply, leaves,
                                        fast_mode=True)


def test_layer_picks_mixed_outputs_for_small_pointwise_maps():
    layer = DRConv(6, 8, 1, region_num=3, generator='mixture')
    with torch.no_grad():
        layer.guide.weight.normal_()
    x = torch.randn(2, 6, 5, 7)
    grad = torch.randn(2, 8, 5, 7)
    results = []
    for algorithm in ('auto', 'filters'):  # mixed outputs, region_conv
        layer.mixture_algorithm = algorithm
        layer.zero_grad()
        leaf = x.clone().requires_grad_()
        y = layer(leaf)
        y.backward(grad)
        results.append([y, leaf.grad] + [p.grad for p in layer.parameters()])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_choice_of_mixed_outputs():
    x = torch.randn(1, 4, 8, 8)
    assert mixes_outputs('auto', x, (1, 1), MAX_MIXED_PIXELS, 1)
    assert not mixes_outputs('auto', x, (1, 1), MAX_MIXED_PIXELS + 1, 1)
    assert mixes_outputs('auto', x, (3, 3), MAX_MIXED_PIXELS_KXK, 1)
    assert not mixes_outputs('auto', x, (3, 3), MAX_MIXED_PIXELS_KXK + 1, 1)
    # Training: k x k kernels mix larger maps (1x1 as in inference).
    assert mixes_outputs('auto', x, (3, 3), MAX_MIXED_PIXELS_KXK + 1, 1,
                         backward=True)
    assert not mixes_outputs('auto', x, (3, 3),
                             MAX_MIXED_PIXELS_KXK_TRAINING + 1, 1,
                             backward=True)
    assert not mixes_outputs('auto', x, (1, 1), MAX_MIXED_PIXELS + 1, 1,
                             backward=True)
    assert not mixes_outputs('auto', x.to('meta'), (3, 3), 64, 1)
    assert not mixes_outputs('auto', x, (1, 1), 64, 2)
    assert not mixes_outputs('filters', x, (1, 1), 64, 1)
    assert mixes_outputs('outputs', x, (3, 3), 1 << 20, 1)
    with pytest.raises(ValueError, match="'outputs' needs groups=1"):
        mixes_outputs('outputs', x, (1, 1), 64, 2)
    with pytest.raises(ValueError, match='mixture_algorithm must be one of'):
        mixes_outputs('torch', x, (1, 1), 64, 1)


def test_layer_mixes_kxk_outputs_when_a_backward_follows(monkeypatch):
    # A 3x3 map above MAX_MIXED_PIXELS_KXK: mixed while training (a
    # backward follows), materialised filters in inference.
    import mmdrconv.core.layers.drconv as drconv_module
    calls = []
    real = drconv_module.mixed_output_conv

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(drconv_module, 'mixed_output_conv', spy)
    layer = DRConv(4, 4, 3, padding=1, region_num=3, generator='mixture')
    x = torch.randn(1, 4, 20, 20)
    assert 20 * 20 > MAX_MIXED_PIXELS_KXK
    trained = layer(x)
    assert calls == [1] and trained.requires_grad
    with torch.no_grad():
        torch.testing.assert_close(layer(x), trained, rtol=1e-4, atol=1e-5)
    assert calls == [1]
    layer.requires_grad_(False)
    layer(x)  # nothing to differentiate: inference's choice
    assert calls == [1]


@pytest.mark.parametrize('kernel_size', [1, 3])
def test_mixture_algorithms_agree(kernel_size):
    # 'outputs' and 'filters' forced, whatever the shape: the same values
    # and gradients; the kernel backend is a separate choice.
    layer = DRConv(6, 8, kernel_size, padding=kernel_size // 2, region_num=3,
                   generator='mixture').double()
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    results = []
    for algorithm in ('outputs', 'filters'):
        layer.mixture_algorithm = algorithm
        leaf = x.clone().requires_grad_()
        y = layer(leaf)
        grads = torch.autograd.grad(y.square().sum(),
                                    [leaf, *layer.parameters()])
        results.append([y, *grads])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want)


def test_mixture_algorithm_is_checked_when_built():
    with pytest.raises(ValueError, match='mixture_algorithm must be one of'):
        DRConv(4, 4, 1, generator='mixture', mixture_algorithm='torch')
    with pytest.raises(ValueError, match="'outputs' needs groups=1"):
        DRConv(4, 4, 1, groups=2, generator='mixture',
               mixture_algorithm='outputs')
    with pytest.raises(ValueError, match="of generator='mixture' only"):
        DRConv(4, 4, 1, generator='paper', mixture_algorithm='outputs')


@pytest.mark.parametrize('grad', [True, False])
def test_jit_trace_of_a_mixture_layer(grad):
    # Traced with gradients enabled, the layer used to record its training
    # formulation and torch.jit.trace's check (which re-traces) another one:
    # "Graphs differed across invocations".
    layer = DRConv(4, 6, 1, region_num=3, generator='mixture')
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    x = torch.randn(2, 4, 8, 8)
    with torch.set_grad_enabled(grad):
        traced = torch.jit.trace(layer, x)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), layer(x), rtol=0, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('backend', ['auto', 'torch'])
def test_mixed_outputs_cuda_match_cpu(backend, monkeypatch):
    # 'auto' mixes through the Triton region_scale on CUDA, 'torch' through
    # RegionMixFunction; cuDNN without TF32 (its precision is far outside
    # this tolerance).
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', False)
    b, c, o, m, n = 2, 5, 6, 4, 3
    inputs = (torch.randn(b, c, 7, 8), torch.rand(b, m, n),
              torch.randn(n, o, c, 3, 3), torch.randn(m, c, 3, 3),
              torch.randn(m), torch.randn(o))
    results = []
    for device in ('cpu', 'cuda'):
        leaves = [t.to(device).requires_grad_() for t in inputs]
        y = mixed_output_conv(*leaves, 1, 1, 1, backend=backend)
        dy = torch.linspace(-1, 1, y.numel()).view(y.shape).to(device)
        results.append([y, *torch.autograd.grad(y, leaves, dy)])
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-4)
