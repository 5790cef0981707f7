"""The naive all-regions DRConv, used as the reference in tests and benchmarks.

It computes all m region outputs (m times the multiply-adds and output memory
of a convolution) and then selects one per pixel; autograd through a
straight-through one-hot mask gives exactly the softmax surrogate gradient of
the guide. This is what public pure-PyTorch DRConv implementations do.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .regions import straight_through_mask


def naive_region_conv(x: Tensor,
                      filters: Tensor,
                      guide: Tensor,
                      bias: Optional[Tensor] = None,
                      stride=1,
                      padding=0,
                      dilation=1,
                      groups: int = 1) -> Tensor:
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
    if batch == 0:
        out_hw = guide.shape[2:]
        all_regions = x.new_zeros(0, regions, out_channels, *out_hw) + \
            (x.sum() + filters.sum()) * 0
    else:
        all_regions = torch.stack(outputs)
    mask = straight_through_mask(guide).to(all_regions.dtype)
    y = (all_regions * mask.unsqueeze(2)).sum(dim=1)
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y
