"""Mixture DRConv on small 1x1 feature maps: mix outputs, not filters.

With the official code's generator every region's filter is a mixture of
n shared bases, W[b, r] = sum_i coef[b, r, i] * base_i, so

    y(p) = sum_i coef[b, r(p), i] * (base_i * x)(p):

one convolution with the n bases (n x O output channels, n times the
multiply-adds of the layer) and a per-pixel mix with the pixel's region
coefficients, instead of building B x m filters and running the sorted
region-aware convolution. Exact, including the softmax-surrogate gradient
of the guide (through ``region_scale``, with each region's coefficients as
channel scales of the n x O outputs): a_j(p) = sum_i
coef[b, j, i] <dy(p), (base_i * x)(p)>. The layer's ``mixture_algorithm``
chooses between this and materialised filters (``'auto'``: measured).

Measured on the project's 2-core CPU (docs/benchmarks.md): faster for 1x1
kernels on small feature maps (ShuffleNetV2 pointwise layers, up to 28x28),
where the filters (B*m*O*C values) and the per-pixel gathers of
``region_conv`` cost more than the n-fold convolution; slower for 3x3
kernels and large maps, which keep materialising the filters.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .double_backward import region_mix_gradients, twice_differentiable
from .export_forms import apply_eager, is_exporting
from .geometry import output_memory_format
from .region_scale_op import (as_planes, as_rows, channels_inner,
                              one_hot_planes, region_scale, split_packed)
from .regions import region_index, region_keys, surrogate_guide_grad
from .triton import use_triton

MIXTURE_ALGORITHMS = ('auto', 'filters', 'outputs')
# Largest output maps (pixels per sample) mixed by outputs on the CPU, for
# 1x1 and for larger kernels (docs/benchmarks.md: below them region_conv's
# per-pixel sorting and gathers cost more than the n bases' convolution).
MAX_MIXED_PIXELS = 1024
MAX_MIXED_PIXELS_KXK = 256
# The same for k x k kernels when a backward pass follows: region_conv's
# backward computes every region's response for the guide (m convolutions'
# work), mixed outputs n; measured faster mixed up to the largest map
# measured, 100x100 (docs/benchmarks.md).
MAX_MIXED_PIXELS_KXK_TRAINING = 10000


def check_mixture_algorithm(algorithm: str, groups: int) -> None:
    """ValueError for an unknown ``mixture_algorithm``, or ``'outputs'`` with
    grouped convolutions (the bases' convolution is not grouped)."""
    if algorithm not in MIXTURE_ALGORITHMS:
        raise ValueError(f'mixture_algorithm must be one of '
                         f'{MIXTURE_ALGORITHMS}, got {algorithm!r}')
    if algorithm == 'outputs' and groups != 1:
        raise ValueError("mixture_algorithm='outputs' needs groups=1 (got "
                         f"groups={groups}); use 'filters' or 'auto'")


def mixes_outputs(algorithm: str, x: Tensor, kernel_size: Tuple[int, int],
                  out_pixels: int, groups: int,
                  backward: bool = False) -> bool:
    """Whether a mixture DRConv runs ``mixed_output_conv`` (else it
    materialises the B x m filters for ``region_conv``).

    ``algorithm``: ``'filters'`` / ``'outputs'`` force one (``'outputs'``
    needs groups == 1); ``'auto'`` mixes outputs where that was measured
    faster: CPU, groups == 1, at most ``MAX_MIXED_PIXELS`` output pixels per
    sample with a 1x1 kernel, ``MAX_MIXED_PIXELS_KXK`` with a larger one,
    or ``MAX_MIXED_PIXELS_KXK_TRAINING`` when a ``backward`` pass follows.
    """
    check_mixture_algorithm(algorithm, groups)
    if algorithm == 'outputs':
        return True
    if is_exporting():
        # The graph runs at every size, so the layer alone decides (no guard
        # on the traced size); mixing the n bases' outputs does n / m of the
        # all-regions export form's work.
        return algorithm == 'auto' and groups == 1
    if tuple(kernel_size) == (1, 1):
        limit = MAX_MIXED_PIXELS
    else:
        limit = MAX_MIXED_PIXELS_KXK_TRAINING if backward else \
            MAX_MIXED_PIXELS_KXK
    return (algorithm == 'auto' and x.device.type == 'cpu' and groups == 1
            and out_pixels <= limit)


def _pixel_coefficients(coef: Tensor, guide: Tensor, rows: bool):
    """Each pixel's mixing coefficients and its region: (B*H*W, n) rows
    and the region keys for channels-last maps, (B, n, H*W) planes and the
    (B, m, H*W) one-hot region map for NCHW ones."""
    batch, regions, num_bases = coef.shape
    if rows:
        keys = region_keys(guide)
        return coef.reshape(-1, num_bases).index_select(0, keys), keys
    hot = one_hot_planes(region_index(guide).flatten(1), regions, coef.dtype)
    return torch.bmm(coef.transpose(1, 2).contiguous(), hot), hot


def _bases_view(t: Tensor, num_bases: int, rows: bool) -> Tensor:
    """The n bases' outputs (B, n*O, H, W) as (B*H*W, n, O) rows or
    (B, n, O, H*W) planes; free views of a packed map's channels."""
    if rows:
        return as_rows(t).unflatten(1, (num_bases, -1))
    return as_planes(t).unflatten(1, (num_bases, -1))


class RegionMixFunction(torch.autograd.Function):
    """y(p) = sum_i coef[b, region(p), i] * outputs_i(p) (+ bias) from the
    packed (B, n*O + m, H, W) map of the n bases' outputs and the guide
    logits; the guide gets DRConv's softmax surrogate. Per pixel only n
    coefficients are gathered, never n x O scales."""

    @staticmethod
    def forward(ctx, both, coef, guide_bias, bias):
        batch, regions, num_bases = coef.shape
        outputs, guide = split_packed(both, guide_bias,
                                      both.shape[1] - regions)
        rows = channels_inner(both)
        pixel_coef, _ = _pixel_coefficients(coef, guide, rows)
        bases = _bases_view(outputs, num_bases, rows)
        shape = (batch, outputs.shape[1] // num_bases, *both.shape[2:])
        if rows:
            y = torch.empty(shape, dtype=both.dtype, device=both.device,
                            memory_format=torch.channels_last)
            acc, bias_shape = as_rows(y), (1, -1)
        else:
            y = both.new_empty(shape)
            acc, bias_shape = as_planes(y), (1, -1, 1)
        # Broadcast over the channels: (B*H*W, 1) or (B, 1, H*W).
        weight = [pixel_coef[:, i, None] for i in range(num_bases)]
        if bias is None:
            torch.mul(bases[:, 0], weight[0], out=acc)
        else:
            torch.addcmul(bias.view(bias_shape), bases[:, 0], weight[0],
                          out=acc)
        for i in range(1, num_bases):
            acc.addcmul_(bases[:, i], weight[i])
        ctx.save_for_backward(both, coef, guide_bias)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    @twice_differentiable(region_mix_gradients)
    def backward(ctx, grad_y):
        both, coef, guide_bias = ctx.saved_tensors
        need_both, need_coef, need_guide_bias, need_bias = \
            ctx.needs_input_grad
        batch, regions, num_bases = coef.shape
        channels = both.shape[1] - regions
        outputs, guide = split_packed(both, guide_bias, channels)
        rows = channels_inner(both)
        pixel_coef, region = _pixel_coefficients(coef, guide, rows)
        bases = _bases_view(outputs, num_bases, rows)
        grad = as_rows(grad_y) if rows else as_planes(grad_y)
        grad_both = grad_coef = grad_guide_bias = grad_bias = None
        if need_both:
            grad_both = torch.empty_like(both)
            grad_bases = _bases_view(grad_both[:, :channels], num_bases,
                                     rows)
            for i in range(num_bases):
                torch.mul(grad, pixel_coef[:, i, None], out=grad_bases[:, i])
        need_guide = need_both or need_guide_bias
        if need_coef or need_guide:
            # d_i(p) = <dL/dy(p), outputs_i(p)>: the response to a unit
            # coefficient of base i, from which both remaining gradients
            # follow.
            d = torch.stack([(grad * bases[:, i]).sum(1)
                             for i in range(num_bases)], 1)
            pixels = guide.shape[2] * guide.shape[3]
            if rows:
                if need_coef:
                    grad_coef = d.new_zeros(batch * regions, num_bases)
                    grad_coef.index_add_(0, region, d)
                    grad_coef = grad_coef.view(batch, regions, num_bases)
                # a_j(p) = sum_i coef[b, j, i] * d_i(p)
                response = torch.bmm(d.view(batch, pixels, num_bases),
                                     coef.transpose(1, 2)) \
                    if need_guide else None
            else:
                if need_coef:
                    grad_coef = torch.bmm(region, d.transpose(1, 2))
                response = torch.bmm(coef, d).view(guide.shape) \
                    if need_guide else None
            if need_guide:
                grad_guide = surrogate_guide_grad(guide, response)
                if need_both:
                    grad_both[:, channels:] = grad_guide
                if need_guide_bias:
                    grad_guide_bias = grad_guide.sum((0, 2, 3))
        if ctx.has_bias and need_bias:
            grad_bias = grad_y.sum((0, 2, 3))
        return grad_both, grad_coef, grad_guide_bias, grad_bias


def mixed_output_conv(x: Tensor, coef: Tensor, bases: Tensor,
                      guide_weight: Tensor, guide_bias: Optional[Tensor],
                      bias: Optional[Tensor], stride, padding, dilation,
                      backend: str = 'auto') -> Tensor:
    """DRConv with mixture filters (groups == 1), computed by mixing the
    outputs of the n bases per pixel. The guide conv runs fused with the
    bases' (m more output channels; x is read once), in x's memory format.

    Args:
        x: (B, C, H, W).
        coef: (B, m, n) mixing coefficients of every region.
        bases: (n, O, C, kh, kw), MixtureFilters' bases.
        guide_weight, guide_bias: the guide conv's (m, C, kh, kw), (m,).
        backend: of ``region_scale`` (the mix on CUDA, when gradients are
            needed).
    """
    num_bases, out_channels = bases.shape[:2]
    regions = guide_weight.shape[0]
    weight = torch.cat([
        bases.flatten(0, 1).to(x.dtype),
        guide_weight.to(x.dtype)
    ])
    both = F.conv2d(x, weight, None, stride, padding, dilation)
    coef = coef.to(both.dtype)
    bias = bias.to(both.dtype) if bias is not None else None
    if not is_exporting() and \
            not use_triton(backend, both, op='region_scale'):
        y = apply_eager(RegionMixFunction, both, coef, guide_bias, bias)
        return y.contiguous(memory_format=output_memory_format(x))
    batch, _, height, width = both.shape
    outputs, guide = split_packed(both, guide_bias, both.shape[1] - regions)
    # (While tracing, one graph whatever the grad mode: the export forms
    # pass no guide gradient anyway.)
    if not is_exporting() and torch.is_grad_enabled() and (
            guide.requires_grad or coef.requires_grad or
            outputs.requires_grad):
        # On the Triton kernels: each region's coefficients as channel
        # scales of the n x O outputs (region_scale's exact surrogate
        # gradient of the guide, and its double backward).
        scales = coef.repeat_interleave(out_channels, dim=2)
        mixed = region_scale(outputs, scales, guide, backend=backend)
        y = mixed.view(batch, num_bases, out_channels, height,
                       width).sum(1)
    else:
        outputs = outputs.view(batch, num_bases, out_channels, height, width)
        region = region_index(guide).view(batch, -1, 1)
        pixel_coef = torch.gather(coef, 1, region.expand(-1, -1, num_bases))
        pixel_coef = pixel_coef.transpose(1, 2).reshape(
            batch, num_bases, 1, height, width)
        y = outputs[:, 0] * pixel_coef[:, 0]
        for i in range(1, num_bases):
            y = y.addcmul_(outputs[:, i], pixel_coef[:, i])
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    # As nn.Conv2d and region_conv: channels_last in, channels_last out.
    return y.contiguous(memory_format=output_memory_format(x))
