"""DRConv's region rule and its gradient, written once for every op.

Forward: a pixel belongs to the region whose guide logit is largest, the
lowest index on ties (as ``argmax``). Backward: the one-hot choice is
replaced by ``s = softmax(guide)`` (the straight-through surrogate), so with
``a_j`` the response of region j's filter dotted with the output gradient,

    dL/dguide_j = s_j * (a_j - sum_i s_i * a_i).

(The Triton ``region_scale`` kernels evaluate the same two rules in-kernel:
``tl.argmax(..., tie_break_left=True)`` and this formula.)
"""
import torch
import torch.nn.functional as F
from torch import Tensor


def region_index(guide: Tensor) -> Tensor:
    """Region of every pixel of guide logits (B, m, H, W): (B, H, W).

    ``max(dim).indices`` returns the first maximal index (lowest region on
    ties, like argmax) and is much faster than argmax over a non-inner dim
    (docs/benchmarks.md, "How `region_conv` is built").
    """
    return guide.max(dim=1).indices


def region_keys(guide: Tensor, per_pixel: bool = False) -> Tensor:
    """Each pixel's row in a table of region values, flattened to (B*H*W,)
    int64 in raster order.

    ``per_pixel=False``: ``sample * m + region``, the row of a (B*m, ...)
    table of per-sample, per-region values (the sort key of the sorted-run
    plan, ``layout.SortedRuns``). ``per_pixel=True``: ``pixel * m +
    region``, the row of a (B*H*W*m, ...) table of every region's value at
    every pixel (the export forms' all-regions outputs).
    """
    batch, regions = guide.shape[:2]
    region = region_index(guide)
    if per_pixel:
        region = region.reshape(-1)
        pixel = torch.arange(region.numel(), device=guide.device)
        return pixel * regions + region
    base = torch.arange(batch, device=guide.device).view(-1, 1, 1)
    return (region + base * regions).reshape(-1)


def surrogate_guide_grad(guide: Tensor, response: Tensor) -> Tensor:
    """dL/dguide = s * (a - sum(s * a)), s = softmax of ``guide`` over m.

    Args:
        guide: (B, m, H, W) guide logits.
        response: every region's response a, (B*H*W, m) (or any shape of
            that size) in raster pixel order; the result is computed in its
            dtype.

    Returns:
        (B, m, H, W) in ``guide``'s dtype, channels-last in memory.
    """
    batch, regions, height, width = guide.shape
    soft = torch.softmax(guide.permute(0, 2, 3, 1).to(response.dtype), dim=3)
    a = response.reshape(batch, height, width, regions)
    grad = soft * (a - (soft * a).sum(3, keepdim=True))
    return grad.permute(0, 3, 1, 2).to(guide.dtype)


def straight_through_mask(guide: Tensor) -> Tensor:
    """One-hot region mask of guide logits (B, m, H, W) whose gradient is that
    of softmax(guide): autograd through it gives the surrogate gradient above
    (used by the naive reference and by export-friendly formulations)."""
    soft = torch.softmax(guide, dim=1)
    hard = F.one_hot(region_index(guide), guide.shape[1])
    hard = hard.permute(0, 3, 1, 2).to(soft.dtype)
    return hard + soft - soft.detach()
