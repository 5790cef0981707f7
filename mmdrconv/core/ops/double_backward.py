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
            grads[count] = surrogate_guide_grad(guide, a.movedim(1, -1))
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


def region_scale_gradients(ctx, grad_y: Tensor) -> Tuple:
    """Double-differentiable gradients of a region_scale Function: saved
    tensors start with (out, scales, guide)."""
    out, scales, guide = ctx.saved_tensors[:3]

    def responses(out, scales):
        return out.unsqueeze(1) * scales[..., None, None]
    return _gradients(ctx, grad_y, responses, (out, scales), guide)
