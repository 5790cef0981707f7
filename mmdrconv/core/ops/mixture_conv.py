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

from .geometry import output_memory_format
from .region_scale_op import region_scale
from .regions import region_index

MIXTURE_ALGORITHMS = ('auto', 'filters', 'outputs')
# Largest output maps (pixels per sample) mixed by outputs on the CPU, for
# 1x1 and for larger kernels (docs/benchmarks.md: below them region_conv's
# per-pixel sorting and gathers cost more than the n bases' convolution).
MAX_MIXED_PIXELS = 1024
MAX_MIXED_PIXELS_KXK = 256


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
                  out_pixels: int, groups: int) -> bool:
    """Whether a mixture DRConv runs ``mixed_output_conv`` (else it
    materialises the B x m filters for ``region_conv``).

    ``algorithm``: ``'filters'`` / ``'outputs'`` force one (``'outputs'``
    needs groups == 1); ``'auto'`` mixes outputs where that was measured
    faster: CPU, groups == 1, at most ``MAX_MIXED_PIXELS`` output pixels per
    sample with a 1x1 kernel, ``MAX_MIXED_PIXELS_KXK`` with a larger one.
    """
    check_mixture_algorithm(algorithm, groups)
    if algorithm == 'outputs':
        return True
    pointwise = tuple(kernel_size) == (1, 1)
    limit = MAX_MIXED_PIXELS if pointwise else MAX_MIXED_PIXELS_KXK
    return (algorithm == 'auto' and x.device.type == 'cpu' and groups == 1
            and out_pixels <= limit)


def mixed_output_conv(x: Tensor, coef: Tensor, bases: Tensor,
                      guide_weight: Tensor, guide_bias: Optional[Tensor],
                      bias: Optional[Tensor], stride, padding, dilation,
                      backend: str = 'auto') -> Tensor:
    """DRConv with mixture filters (groups == 1), computed by mixing the
    outputs of the n bases per pixel. The guide conv runs fused with the
    bases' (m more output channels; x is read once).

    Args:
        x: (B, C, H, W).
        coef: (B, m, n) mixing coefficients of every region.
        bases: (n, O, C, kh, kw), MixtureFilters' bases.
        guide_weight, guide_bias: the guide conv's (m, C, kh, kw), (m,).
        backend: of ``region_scale`` (the mix, when gradients are needed).
    """
    num_bases, out_channels = bases.shape[:2]
    regions = guide_weight.shape[0]
    weight = torch.cat([
        bases.flatten(0, 1).to(x.dtype),
        guide_weight.to(x.dtype)
    ])
    if guide_bias is not None:
        guide_bias = torch.cat([guide_bias.new_zeros(num_bases *
                                                     out_channels),
                                guide_bias]).to(x.dtype)
    both = F.conv2d(x, weight, guide_bias, stride, padding, dilation)
    batch, _, height, width = both.shape
    outputs = both[:, :-regions]
    guide = both[:, -regions:]
    coef = coef.to(outputs.dtype)
    if torch.is_grad_enabled() and (guide.requires_grad or
                                    coef.requires_grad or
                                    outputs.requires_grad):
        # Each region's coefficients as channel scales of the n x O outputs:
        # region_scale's exact surrogate gradient of the guide, and its
        # double backward.
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
        y = y + bias.to(y.dtype).view(1, -1, 1, 1)
    # As nn.Conv2d and region_conv: channels_last in, channels_last out.
    return y.contiguous(memory_format=output_memory_format(x))
