"""Mixture DRConv on small 1x1 feature maps: mix outputs, not filters.

With the official code's generator every region's filter is a mixture of
n shared bases, W[b, r] = sum_i coef[b, r, i] * base_i, so

    y(p) = sum_i coef[b, r(p), i] * (base_i * x)(p):

one convolution with the n bases (n x O output channels, n times the
multiply-adds of the layer) and a per-pixel mix with the pixel's region
coefficients, instead of building B x m filters and running the sorted
region-aware convolution. Exact, including the softmax-surrogate gradient
of the guide (through ``straight_through_mask``): a_j(p) = sum_i
coef[b, j, i] <dy(p), (base_i * x)(p)>.

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

from .regions import region_index, straight_through_mask

# Largest output map (pixels per sample) mixed by outputs (measured).
MAX_MIXED_PIXELS = 1024


def prefers_mixed_outputs(x: Tensor, kernel_size: Tuple[int, int],
                          out_pixels: int, groups: int,
                          backend: str) -> bool:
    """Whether ``mixed_output_conv`` is the faster forward here: CPU,
    ``backend='auto'``, groups == 1, a 1x1 kernel, at most
    ``MAX_MIXED_PIXELS`` output pixels per sample."""
    return (backend == 'auto' and x.device.type == 'cpu' and groups == 1
            and tuple(kernel_size) == (1, 1)
            and out_pixels <= MAX_MIXED_PIXELS)


def mixed_output_conv(x: Tensor, coef: Tensor, bases: Tensor,
                      guide_weight: Tensor, guide_bias: Optional[Tensor],
                      bias: Optional[Tensor], stride, padding,
                      dilation) -> Tensor:
    """DRConv with mixture filters (groups == 1), computed by mixing the
    outputs of the n bases per pixel. The guide conv runs fused with the
    bases' (m more output channels; x is read once).

    Args:
        x: (B, C, H, W).
        coef: (B, m, n) mixing coefficients of every region.
        bases: (n, O, C, kh, kw), MixtureFilters' bases.
        guide_weight, guide_bias: the guide conv's (m, C, kh, kw), (m,).
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
    outputs = both[:, :-regions].view(batch, num_bases, out_channels, height,
                                      width)
    guide = both[:, -regions:]
    coef = coef.to(outputs.dtype)
    if torch.is_grad_enabled() and guide.requires_grad:
        # one-hot forward, softmax-surrogate backward
        mask = straight_through_mask(guide).to(coef.dtype)
        pixel_coef = torch.einsum('bjhw,bji->bihw', mask, coef)
    else:
        region = region_index(guide).view(batch, -1, 1)
        pixel_coef = torch.gather(coef, 1, region.expand(-1, -1, num_bases))
        pixel_coef = pixel_coef.transpose(1, 2).reshape(
            batch, num_bases, height, width)
    pixel_coef = pixel_coef.unsqueeze(2)
    y = outputs[:, 0] * pixel_coef[:, 0]
    for i in range(1, num_bases):
        y = y.addcmul_(outputs[:, i], pixel_coef[:, i])
    if bias is not None:
        y = y + bias.to(y.dtype).view(1, -1, 1, 1)
    return y
