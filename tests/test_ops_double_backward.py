"""Double backward (create_graph=True) of the DRConv ops and layers.

Every path is checked against finite differences of its own first gradient
(``gradgradcheck``, or central differences along a random direction), and,
with a constant guide, against the naive all-regions reference: the
issue's ``grad(grad(y.sum(), x, create_graph=True)...)``, gradient penalties
with ``.backward(create_graph=True)``, every generator, the guide and the
generators' parameters, and the Triton kernels (in Triton's interpreter on
the CPU).
"""
import os

import pytest
import torch
from torch.autograd import grad, gradgradcheck
from torch.func import functional_call

from mmdrconv import DRConv
from mmdrconv.core.ops import (naive_region_conv, region_conv, region_scale,
                               straight_through_mask)

from helpers import randomize


GENERATORS = ['modulated', 'mixture', 'paper']


def scale_reference(out, scales, guide, bias):
    """region_scale as a one-hot product (plain autograd)."""
    mask = straight_through_mask(guide)
    return out * torch.einsum('bjhw,bjo->bohw', mask, scales) + \
        bias.view(1, -1, 1, 1)


def penalty_gradients(fn, inputs, wanted):
    """Gradients of |d sum(fn * w) / d inputs|^2 for ``wanted``."""
    y = fn(*inputs)
    weight = torch.randn(y.shape, generator=torch.Generator().manual_seed(1),
                         dtype=y.dtype)
    first = grad((y * weight).sum(), [t for t in inputs if t.requires_grad],
                 create_graph=True)
    return grad(sum(g.square().sum() for g in first), wanted)


@pytest.mark.parametrize('conv', [
    dict(padding=1),
    dict(stride=2, padding=2, dilation=2),
    dict(padding=1, groups=2),
])
def test_region_conv_second_derivatives(conv):
    groups = conv.get('groups', 1)
    geometry = {k: v for k, v in conv.items() if k != 'groups'}
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    filters = torch.randn(2, 3, 4, 4 // groups, 3, 3, dtype=torch.float64)
    out_hw = 5 if conv.get('stride', 1) == 1 else 3
    guide = torch.randn(2, 3, out_hw, out_hw, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    inputs = [t.requires_grad_() for t in (x, filters, guide, bias)]

    def fn(*args):
        return region_conv(*args, groups=groups, backend='torch', **geometry)

    # Finite differences of the first gradient, every input at once.
    assert gradgradcheck(fn, inputs, fast_mode=True)
    # With a constant guide the naive reference is differentiable twice
    # exactly as well (its straight-through mask has no graph then).
    inputs[2] = guide.detach()
    got = penalty_gradients(fn, inputs, inputs[:2])
    want = penalty_gradients(
        lambda *a: naive_region_conv(*a, groups=groups, **geometry), inputs,
        inputs[:2])
    for g, g_ref in zip(got, want):
        assert g.abs().max() > 0
        torch.testing.assert_close(g, g_ref)


def test_region_scale_second_derivatives():
    out = torch.randn(2, 5, 4, 3, dtype=torch.float64)
    scales = torch.randn(2, 3, 5, dtype=torch.float64)
    guide = torch.randn(2, 3, 4, 3, dtype=torch.float64)
    bias = torch.randn(5, dtype=torch.float64)
    inputs = [t.requires_grad_() for t in (out, scales, guide, bias)]
    assert gradgradcheck(lambda *a: region_scale(*a, backend='torch'),
                         inputs, fast_mode=True)
    inputs[2] = guide.detach()
    got = penalty_gradients(region_scale, inputs, inputs[:2])
    want = penalty_gradients(scale_reference, inputs, inputs[:2])
    for g, g_ref in zip(got, want):
        assert g.abs().max() > 0
        torch.testing.assert_close(g, g_ref)


def directional_difference(fn, tensors, directions, eps=1e-6):
    """(fn(t + eps d) - fn(t - eps d)) / 2 eps, tensors changed in place."""
    values = []
    for sign in (1, -1):
        with torch.no_grad():
            for t, d in zip(tensors, directions):
                t.add_(sign * eps * d)
        values.append(fn().detach())
        with torch.no_grad():
            for t, d in zip(tensors, directions):
                t.sub_(sign * eps * d)
    return (values[0] - values[1]) / (2 * eps)


@pytest.mark.parametrize('kernel_size', [3, 1])  # 1: mixture mixes outputs
@pytest.mark.parametrize('generator', GENERATORS)
def test_the_issue_repro_matches_finite_differences(generator, kernel_size):
    # grad(y.sum()) has a constant incoming gradient: once_differentiable
    # let the second grad through as zeros here.
    layer = randomize(DRConv(4, 4, kernel_size, padding=kernel_size // 2,
                             region_num=3, generator=generator).double())
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64, requires_grad=True)

    def penalty():
        g, = grad(layer(x).sum(), x, create_graph=True)
        return g.pow(2).sum()

    h, = grad(penalty(), x)
    assert h.abs().max() > 0
    direction = torch.randn_like(x)
    fd = directional_difference(penalty, [x], [direction])
    torch.testing.assert_close((h * direction).sum(), fd, rtol=1e-5,
                               atol=1e-7)


@pytest.mark.parametrize('generator', GENERATORS)
def test_every_parameter_through_gradgradcheck(generator):
    # The guide, the generator and the weights: finite differences of the
    # first gradient with respect to all of them and the input.
    layer = randomize(DRConv(2, 2, 3, padding=1, region_num=2,
                             generator=generator).double())
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_()
              for p in layer.parameters()]
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)

    def fn(x, *params):
        return functional_call(layer, dict(zip(names, params)), (x, ))

    assert gradgradcheck(fn, [x, *params], fast_mode=True)


@pytest.mark.parametrize('loss', ['linear', 'mse'])
@pytest.mark.parametrize('generator', GENERATORS)
def test_gradient_penalty_step_matches_finite_differences(generator, loss):
    # loss.backward(create_graph=True), then the penalty |dloss/dx|^2's
    # .backward(): the parameters' gradients against central differences
    # of the penalty. With the MSE loss the penalty also depends on the
    # output itself, whose gradient with respect to the guide is DRConv's
    # softmax surrogate by design (finite differences of the argmax give
    # 0): there the guide is left out of the comparison.
    layer = randomize(DRConv(4, 6, 3, padding=1, region_num=3,
                             generator=generator).double())
    x = torch.randn(2, 4, 6, 5, dtype=torch.float64)
    target = torch.randn(2, 6, 6, 5, dtype=torch.float64)
    named = list(layer.named_parameters())

    def loss_of(y):
        if loss == 'linear':
            return (y * target).sum()
        return (y - target).square().mean()

    def penalty():
        leaf = x.clone().requires_grad_()
        g, = grad(loss_of(layer(leaf)), leaf, create_graph=True)
        return g.square().sum()

    leaf = x.clone().requires_grad_()
    loss_of(layer(leaf)).backward(create_graph=True)
    layer.zero_grad(set_to_none=True)  # the penalty's gradients only
    leaf.grad.square().sum().backward()
    grads = [p.grad for _, p in named]
    layer.zero_grad(set_to_none=True)
    for (name, p), g in zip(named, grads):
        if name == 'bias' and loss == 'linear':  # the penalty ignores it
            assert g is None
            continue
        assert g is not None and g.abs().max() > 0, name
    grads = [torch.zeros_like(p) if g is None else g
             for (_, p), g in zip(named, grads)]
    directions = [
        torch.zeros_like(p) if loss == 'mse' and name.startswith('guide.')
        else torch.randn_like(p) for name, p in named
    ]
    fd = directional_difference(penalty, [p for _, p in named], directions)
    analytic = sum((g * d).sum() for g, d in zip(grads, directions))
    torch.testing.assert_close(analytic, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('generator', GENERATORS)
def test_first_gradients_with_a_graph_equal_the_fast_ones(generator):
    layer = randomize(DRConv(4, 6, 3, padding=1, region_num=3,
                             generator=generator).double())
    x = torch.randn(2, 4, 6, 5, dtype=torch.float64, requires_grad=True)
    params = [x, *layer.parameters()]
    dy = torch.randn(2, 6, 6, 5, dtype=torch.float64)
    fast = grad(layer(x), params, dy)
    graphed = grad(layer(x), params, dy, create_graph=True)
    for g, g_graph in zip(fast, graphed):
        torch.testing.assert_close(g_graph, g)
    assert graphed[0].requires_grad


@pytest.mark.parametrize('op', ['region_conv', 'region_scale'])
def test_triton_double_backward_matches_torch(op):
    if not torch.cuda.is_available():
        # Read once by triton when the kernels first import (conftest sets
        # it for the session).
        assert os.environ.get('TRITON_INTERPRET') == '1'
    pytest.importorskip('triton', reason='triton is not installed')
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if op == 'region_conv':
        inputs = [torch.randn(2, 3, 5, 4, device=device),
                  torch.randn(2, 2, 4, 3, 3, 3, device=device) / 5,
                  torch.randn(2, 2, 5, 4, device=device),
                  torch.randn(4, device=device)]

        def fn(*a, backend):
            return region_conv(*a, padding=1, backend=backend)
    else:
        inputs = [torch.randn(2, 4, 5, 3, device=device),
                  torch.randn(2, 3, 4, device=device),
                  torch.randn(2, 3, 5, 3, device=device),
                  torch.randn(4, device=device)]

        def fn(*a, backend):
            return region_scale(*a, backend=backend)
    results = []
    for backend in ('triton', 'torch'):
        leaves = [t.clone().requires_grad_() for t in inputs]
        first = grad(fn(*leaves, backend=backend).sum(), leaves[:3],
                     create_graph=True)
        results.append(grad(sum(g.square().sum() for g in first),
                            leaves[:3]))
    for got, want in zip(*results):
        assert want.abs().max() > 0
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
