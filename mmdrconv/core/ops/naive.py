"""The naive all-regions DRConv, used as the reference in tests and benchmarks.

It computes all m region outputs (m times the multiply-adds and output memory
of a convolution) and then selects one per pixel; autograd through a
straight-through one-hot mask gives exactly the softmax surrogate gradient of
the guide. This is what public pure-PyTorch DRConv implementations do.
Second derivatives through the straight-through mask also differentiate the
mask's surrogate (a term finite differences of the first gradient do not
have); the fast ops' double backward differentiates their backward exactly
(``mmdrconv.core.ops.double_backward``).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import as_pair
from .geometry import conv_output_size
from .regions import straight_through_mask


def all_region_outputs(x: Tensor, filters: Tensor, stride=1, padding=0,
                       dilation=1, groups: int = 1) -> Tensor:
    """Every region's filter applied at every pixel: (B, m, O, H', W')."""
    batch, regions, out_channels = filters.shape[:3]
    group_out = out_channels // groups
    outputs = []
    for b in range(batch):
        # (m, O, ...) -> (g, m, O/g, ...) so a grouped conv sees each group's
        # m filters together.
        w = filters[b].reshape(regions, groups, group_out,
                               *filters.shape[3:]).transpose(0, 1)
        y = F.conv2d(x[b:b + 1], w.reshape(-1, *filters.shape[3:]), None,
                     stride, padding, dilation, groups)
        y = y.view(groups, regions, group_out, *y.shape[2:]).transpose(0, 1)
        outputs.append(y.reshape(regions, out_channels, *y.shape[-2:]))
    if batch:
        return torch.stack(outputs)
    # Empty batch: a graph to both inputs all the same.
    out_hw = [
        conv_output_size(size, k, s, p, d) for size, k, s, p, d in zip(
            x.shape[2:], filters.shape[-2:], as_pair(stride, 'stride', 1),
            as_pair(padding, 'padding', 0), as_pair(dilation, 'dilation', 1))
    ]
    return x.new_zeros(0, regions, out_channels, *out_hw) + \
        (x.sum() + filters.sum()) * 0


def naive_region_conv(x: Tensor,
                      filters: Tensor,
                      guide: Tensor,
                      bias: Optional[Tensor] = None,
                      stride=1,
                      padding=0,
                      dilation=1,
                      groups: int = 1) -> Tensor:
    all_regions = all_region_outputs(x, filters, stride, padding, dilation,
                                     groups)
    mask = straight_through_mask(guide).to(all_regions.dtype)
    y = (all_regions * mask.unsqueeze(2)).sum(dim=1)
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y
