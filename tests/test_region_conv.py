"""region_conv against the naive all-regions reference, in float64."""
import pytest
import torch
import torch.nn.functional as F

import mmdrconv.core.ops.layout as layout
from mmdrconv.core.ops import naive_region_conv, region_conv


def out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def make_inputs(batch, cin, cout, regions, kernel, stride, padding, dilation,
                groups, size=(9, 8), dtype=torch.float64, bias=True):
    h, w = size
    kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    x = torch.randn(batch, cin, h, w, dtype=dtype)
    filters = torch.randn(batch, regions, cout, cin // groups, kh, kw,
                          dtype=dtype)
    guide = torch.randn(batch, regions, out_size(h, kh, stride, padding,
                                                 dilation),
                        out_size(w, kw, stride, padding, dilation),
                        dtype=dtype)
    b = torch.randn(cout, dtype=dtype) if bias else None
    return [t.requires_grad_() if t is not None else None
            for t in (x, filters, guide, b)]


def forward_and_grads(fn, inputs, grad_out=None, **conv):
    y = fn(*inputs, **conv)
    if grad_out is None:
        grad_out = torch.randn_like(y)
    wanted = [t for t in inputs if t is not None]
    grads = torch.autograd.grad(y, wanted, grad_out, allow_unused=True)
    return y, grads, grad_out


def assert_matches_reference(inputs, **conv):
    y, grads, grad_out = forward_and_grads(region_conv, inputs, **conv)
    y_ref, grads_ref, _ = forward_and_grads(naive_region_conv, inputs,
                                            grad_out, **conv)
    torch.testing.assert_close(y, y_ref)
    for name, g, g_ref in zip('x filters guide bias'.split(), grads,
                              grads_ref):
        if g_ref is None:
            g_ref = torch.zeros_like(g)
        torch.testing.assert_close(g, g_ref, msg=lambda m: f'{name}: {m}')


CASES = [
    # batch, cin, cout, m, kernel, stride, padding, dilation, groups
    (2, 4, 6, 3, 3, 1, 1, 1, 1),
    (2, 4, 6, 3, 3, 2, 1, 1, 2),
    (1, 6, 6, 4, 3, 1, 2, 2, 6),  # depthwise, dilated
    (3, 4, 8, 2, 1, 1, 0, 1, 1),  # pointwise
    (2, 4, 4, 1, 5, 2, 2, 1, 1),  # one region == a dynamic conv
    (1, 3, 5, 8, (3, 1), 1, 0, 1, 1),  # rectangular kernel, no padding
    (2, 8, 4, 5, 3, 3, 0, 2, 4),  # stride 3, dilation 2, groups 4
]


@pytest.mark.parametrize('case', CASES)
def test_matches_naive_reference(case):
    batch, cin, cout, m, k, s, p, d, g = case
    inputs = make_inputs(batch, cin, cout, m, k, s, p, d, g)
    assert_matches_reference(inputs, stride=s, padding=p, dilation=d,
                             groups=g)


def test_without_bias_and_tuple_arguments():
    x = torch.randn(2, 4, 9, 8, dtype=torch.float64, requires_grad=True)
    filters = torch.randn(2, 3, 6, 4, 3, 3, dtype=torch.float64,
                          requires_grad=True)
    # H: pad 1, dil 1 -> 9; W: pad 0, dil 2 -> 8 - 4 = 4
    guide = torch.randn(2, 3, 9, 4, dtype=torch.float64, requires_grad=True)
    assert_matches_reference([x, filters, guide, None], stride=(1, 1),
                             padding=(1, 0), dilation=(1, 2))


def test_multiple_chunks(monkeypatch):
    # Force many chunks, pieces split across chunk boundaries.
    monkeypatch.setattr(layout, 'CHUNK_ELEMENTS', 100)
    inputs = make_inputs(3, 5, 7, 4, 3, 1, 1, 1, 1, size=(11, 10))
    assert_matches_reference(inputs, stride=1, padding=1, dilation=1)


def test_empty_batch():
    x, filters, guide, bias = make_inputs(0, 4, 6, 3, 3, 1, 1, 1, 1)
    y = region_conv(x, filters, guide, bias, padding=1)
    assert y.shape == (0, 6, 9, 8)
    (y.sum() + 0).backward()
    for t in (x, filters, guide, bias):
        assert t.grad is not None and not t.grad.any()


def test_ties_take_lowest_region():
    x, filters, _, _ = make_inputs(2, 3, 4, 4, 3, 1, 1, 1, 1)
    guide = torch.zeros(2, 4, 9, 8, dtype=torch.float64)
    guide[:, 2:, :4] = 1.0  # regions 2 and 3 tie on the top half
    y = region_conv(x, filters, guide, padding=1)
    top = F.conv2d(x, filters[0, 2], padding=1)  # sample 0, region 2
    bottom = F.conv2d(x, filters[0, 0], padding=1)
    torch.testing.assert_close(y[0, :, :4], top[0, :, :4])
    torch.testing.assert_close(y[0, :, 4:], bottom[0, :, 4:])


def test_guide_gradient_is_softmax_surrogate():
    x, filters, guide, _ = make_inputs(2, 3, 4, 3, 3, 1, 1, 1, 1)
    y = region_conv(x, filters, guide, padding=1)
    grad_out = torch.randn_like(y)
    (grad_guide, ) = torch.autograd.grad(y, guide, grad_out)
    # a_j(p) = sum_o dL/dy[o, p] * (filters_j conv x)[o, p], per sample.
    a = torch.stack([
        torch.stack([(F.conv2d(x[b:b + 1], filters[b, j], padding=1)[0] *
                      grad_out[b]).sum(0) for j in range(3)])
        for b in range(2)
    ])
    s = torch.softmax(guide, dim=1)
    expected = s * (a - (s * a).sum(dim=1, keepdim=True))
    torch.testing.assert_close(grad_guide, expected)


def test_filter_gradient_only_from_assigned_pixels():
    x, filters, _, _ = make_inputs(1, 3, 4, 3, 3, 1, 1, 1, 1)
    guide = torch.zeros(1, 3, 9, 8, dtype=torch.float64)
    guide[:, 1] = 1.0  # every pixel in region 1
    y = region_conv(x, filters, guide, padding=1)
    y.sum().backward()
    assert not filters.grad[0, 0].any() and not filters.grad[0, 2].any()
    (expected, ) = torch.autograd.grad(
        F.conv2d(x, filters[0, 1], padding=1).sum(), filters)
    torch.testing.assert_close(filters.grad[0, 1], expected[0, 1])


def test_channels_last_and_non_contiguous():
    x, filters, guide, bias = make_inputs(2, 4, 6, 3, 3, 1, 1, 1, 1)
    expected = naive_region_conv(x, filters, guide, bias, padding=1)
    x_cl = x.detach().to(memory_format=torch.channels_last).requires_grad_()
    y = region_conv(x_cl, filters, guide, bias, padding=1)
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, expected)
    y.sum().backward()
    torch.testing.assert_close(
        x_cl.grad,
        torch.autograd.grad(expected.sum(), x)[0])
    # A transposed view of a bigger tensor.
    big = torch.randn(2, 4, 8, 9, dtype=torch.float64).transpose(2, 3)
    torch.testing.assert_close(
        region_conv(big, filters, guide, bias, padding=1),
        naive_region_conv(big, filters, guide, bias, padding=1))


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_matches_float32(dtype):
    x, filters, guide, bias = [
        t.detach().float().requires_grad_()
        for t in make_inputs(2, 8, 8, 3, 3, 1, 1, 1, 1)
    ]
    expected = naive_region_conv(x, filters, guide, bias, padding=1)
    with torch.autocast('cpu', dtype=dtype):
        y = region_conv(x, filters, guide, bias, padding=1)
    assert y.dtype == dtype
    torch.testing.assert_close(y.float(), expected, rtol=0.05, atol=0.3)
    y.float().sum().backward()
    grad_ref = torch.autograd.grad(expected.sum(), x)[0]
    assert x.grad.dtype == torch.float32
    torch.testing.assert_close(x.grad, grad_ref, rtol=0.05, atol=0.3)


def test_float32_matches_float64():
    inputs64 = make_inputs(2, 4, 6, 3, 3, 1, 1, 1, 1)
    inputs32 = [t.detach().float() for t in inputs64]
    torch.testing.assert_close(
        region_conv(*inputs32, padding=1),
        region_conv(*inputs64, padding=1).float(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('bad, message', [
    (dict(x=torch.randn(4, 9, 8)), 'x of shape'),
    (dict(x=torch.randn(2, 5, 9, 8)), 'input channels'),
    (dict(guide=torch.randn(2, 4, 9, 8)), 'regions'),
    (dict(guide=torch.randn(2, 3, 7, 8)), 'guide spatial size'),
    (dict(guide=torch.randn(1, 3, 9, 8)), 'batch sizes differ'),
    (dict(bias=torch.randn(5)), 'bias must have shape'),
    (dict(groups=3), 'groups=3'),
])
def test_bad_input_is_named(bad, message):
    args = dict(x=torch.randn(2, 4, 9, 8), filters=torch.randn(
        2, 3, 6, 4, 3, 3), guide=torch.randn(2, 3, 9, 8), bias=None,
                groups=1)
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        region_conv(args['x'], args['filters'], args['guide'], args['bias'],
                    padding=1, groups=args['groups'])


@pytest.mark.parametrize('geometry, message', [
    (dict(padding=-1), r'padding must be >= 0, got -1'),
    (dict(dilation=0), r'dilation must be >= 1, got 0'),
    (dict(dilation=(1, -1)), r'dilation must be >= 1, got \(1, -1\)'),
    (dict(stride=0), r'stride must be >= 1, got 0'),
    (dict(stride=1.5), r'stride must be an int or a pair of ints, got 1.5'),
    (dict(padding=(1, 1, 1)), r'padding must be an int or a pair'),
    (dict(stride=True), r'stride must be an int'),
])
def test_bad_geometry_is_named(geometry, message):
    x, filters = torch.randn(2, 4, 9, 8), torch.randn(2, 3, 6, 4, 3, 3)
    with pytest.raises(ValueError, match=message):
        region_conv(x, filters, torch.randn(2, 3, 9, 8), **geometry)


@pytest.mark.parametrize('chunk_elements', [1 << 30, 64])
def test_padded_and_chunked_plans_agree(monkeypatch, chunk_elements):
    # A huge budget takes the padded single-bmm plan; a tiny one the chunked
    # per-run plan with runs split over chunks.
    monkeypatch.setattr(layout, 'CHUNK_ELEMENTS', chunk_elements)
    inputs = make_inputs(3, 5, 7, 4, 3, 1, 1, 1, 1, size=(11, 10))
    geom = layout.Geometry.of(inputs[0].shape, inputs[1].shape,
                              (1, 1), (1, 1), (1, 1), 1)
    plan = layout.Plan(inputs[2], geom)
    assert plan.padded == (chunk_elements > 64)
    assert_matches_reference(inputs, stride=1, padding=1, dilation=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_cuda_matches_cpu(dtype, monkeypatch):
    # Without TF32, which the kernels follow as cuDNN does (on by default):
    # its 10-bit mantissa is far outside this tolerance.
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', False)
    inputs = make_inputs(2, 8, 6, 4, 3, 1, 1, 1, 1, dtype=dtype)
    y, grads, grad_out = forward_and_grads(region_conv, inputs, padding=1)
    cuda_inputs = [t.detach().cuda().requires_grad_() for t in inputs]
    y_cuda, grads_cuda, _ = forward_and_grads(region_conv, cuda_inputs,
                                              grad_out.cuda(), padding=1)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else {}
    torch.testing.assert_close(y_cuda.cpu(), y, **tol)
    for g_cuda, g in zip(grads_cuda, grads):
        torch.testing.assert_close(g_cuda.cpu(), g, **tol)
