"""Double backward (``create_graph=True``) of the DRConv autograd Functions.

The fast backward passes (sorted runs, Triton kernels) are written for one
differentiation. Autograd runs a backward in grad mode only when the caller
asked for ``create_graph=True`` (gradient penalties, ``autograd.grad`` of a
gradient, ``.backward(create_graph=True)``); the gradients are then built
from differentiable ops instead, with the same values:

- the input and filter (scale) gradients of ``sum_j hard_j * R_j``, with
  ``R_j`` every region's response and ``hard`` the one-hot region choice as
  a constant, as the fast backward does;
- the guide's softmax surrogate ``s_j (a_j - sum_i s_i a_i)``, ``a_j =
  <dL/dy, R_j>``, differentiable in the guide, the responses and dL/dy.

So second derivatives are those of the first gradient the op computes, the
values finite differences of it give (``gradgradcheck``). This costs what
the all-regions form costs (m times a convolution's multiply-adds and output
memory), only in that mode.

(``once_differentiable`` is not enough: it raises only where the second
graph reaches the op's incoming gradient, and silently treats the gradient
as a constant, giving zeros, where it does not, e.g. ``grad(y.sum(), x,
create_graph=True)``.)
"""
import functools
from typing import Callable, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .naive import all_region_outputs
from .regions import region_index, surrogate_guide_grad


def twice_differentiable(reference: Callable) -> Callable:
    """Decorator of an autograd Function's ``backward(ctx, grad)``: in grad
    mode (``create_graph=True``) the gradients come from ``reference(ctx,
    grad)`` instead, differentiably; otherwise the fast backward runs."""

    def decorate(backward: Callable) -> Callable:

        @functools.wraps(backward)
        def run(ctx, grad):
            if torch.is_grad_enabled():
                return reference(ctx, grad)
            return backward(ctx, grad)
        return run
    return decorate


def _gradients(ctx, grad_y: Tensor, responses: Callable,
               inputs: Sequence[Tensor], guide: Tensor) -> Tuple:
    """Gradients, with a graph, of a Function whose arguments start with
    ``(*inputs, guide, bias)``; ``responses(*inputs)`` is every region's
    output without bias, (B, m, O, H, W)."""
    needs = ctx.needs_input_grad
    grads = [None] * len(needs)
    count = len(inputs)
    with torch.enable_grad(), \
            torch.autocast(grad_y.device.type, enabled=False):
        # Views: autograd.grad then follows only the op's own use of each
        # input (a filter computed from x must not add its path to x's
        # gradient here), while the graph still leads back to the inputs.
        inputs = [t.view_as(t) for t in inputs]
        every = responses(*inputs)
        wanted = [i for i in range(count) if needs[i]]
        if wanted:
            hard = F.one_hot(region_index(guide), guide.shape[1])
            hard = hard.permute(0, 3, 1, 2).unsqueeze(2).to(every.dtype)
            y = (every * hard).sum(1)
            values = torch.autograd.grad(y, [inputs[i] for i in wanted],
                                         grad_y, create_graph=True,
                                         allow_unused=True)
            for i, value in zip(wanted, values):
                grads[i] = torch.zeros_like(inputs[i]) if value is None \
                    else value
        if needs[count]:
            a = (every * grad_y.unsqueeze(1)).sum(2)
            grads[count] = surrogate_guide_grad(guide, a)
    if needs[count + 1] and ctx.has_bias:
        grads[count + 1] = grad_y.sum((0, 2, 3))
    return tuple(grads)


def region_conv_gradients(ctx, grad_y: Tensor) -> Tuple:
    """Double-differentiable gradients of a region_conv Function: saved
    tensors start with (x, filters, guide); ``ctx.conv_args`` is (stride,
    padding, dilation, groups)."""
    x, filters, guide = ctx.saved_tensors[:3]
    stride, padding, dilation, groups = ctx.conv_args

    def responses(x, filters):
        return all_region_outputs(x, filters, stride, padding, dilation,
                                  groups)
    return _gradients(ctx, grad_y, responses, (x, filters), guide)


def _scaled_responses(out: Tensor, scales: Tensor) -> Tensor:
    return out.unsqueeze(1) * scales[..., None, None]


def region_scale_gradients(ctx, grad_y: Tensor) -> Tuple:
    """Double-differentiable gradients of a region_scale Function: saved
    tensors start with (out, scales, guide)."""
    out, scales, guide = ctx.saved_tensors[:3]
    return _gradients(ctx, grad_y, _scaled_responses, (out, scales), guide)


class _PackedNeeds:
    """What a packed Function's gradients look like to ``_gradients``:
    arguments (out, scales or coefficients, guide, bias)."""

    def __init__(self, ctx):
        need_both, need_scales, need_guide_bias, need_bias = \
            ctx.needs_input_grad
        self.needs_input_grad = (need_both, need_scales,
                                 need_both or need_guide_bias, need_bias)
        self.has_bias = ctx.has_bias


def _packed_gradients(ctx, grad_y: Tensor, responses: Callable,
                      channels: int) -> Tuple:
    """Gradients, with a graph, of a packed Function with arguments (both,
    scales, guide_bias, bias): ``both`` holds the map that
    ``responses(map, scales)`` turns into every region's output (its first
    ``channels`` channels), then the guide logits without ``guide_bias``."""
    both, scales, guide_bias = ctx.saved_tensors[:3]
    with torch.enable_grad():
        # A view, as in _gradients: the graph of these gradients leads back
        # to ``both`` and ``guide_bias`` through it.
        both = both.view_as(both)
        out, guide = both[:, :channels], both[:, channels:]
        if guide_bias is not None:
            guide = guide + guide_bias.view(1, -1, 1, 1)
        grad_out, grad_scales, grad_guide, grad_bias = _gradients(
            _PackedNeeds(ctx), grad_y, responses, (out, scales), guide)
    need_both, _, need_guide_bias, _ = ctx.needs_input_grad
    grad_both = grad_guide_bias = None
    if need_both:
        grad_both = torch.cat([grad_out, grad_guide], dim=1)
    if need_guide_bias:
        grad_guide_bias = grad_guide.sum((0, 2, 3))
    return grad_both, grad_scales, grad_guide_bias, grad_bias


def packed_region_scale_gradients(ctx, grad_y: Tensor) -> Tuple:
    """Double-differentiable gradients of a packed region_scale Function:
    saved tensors start with (both, scales, guide_bias)."""
    channels = ctx.saved_tensors[1].shape[2]
    return _packed_gradients(ctx, grad_y, _scaled_responses, channels)


def _mixed_responses(outputs: Tensor, coef: Tensor) -> Tensor:
    """Every region's output, sum_i coef[b, j, i] * outputs_i."""
    batch, _, height, width = outputs.shape
    num_bases = coef.shape[2]
    outputs = outputs.view(batch, num_bases, -1, height, width)
    return torch.einsum('bji,biohw->bjohw', coef, outputs)


def region_mix_gradients(ctx, grad_y: Tensor) -> Tuple:
    """Double-differentiable gradients of a region_mix Function: saved
    tensors start with (both, coef, guide_bias); ``both`` holds the n
    bases' outputs, then the guide logits."""
    both, coef = ctx.saved_tensors[:2]
    channels = both.shape[1] - coef.shape[1]
    return _packed_gradients(ctx, grad_y, _mixed_responses, channels)
