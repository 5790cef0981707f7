"""DRConv's region rule and its gradient, written once for every op.

Forward: a pixel belongs to the region whose guide logit is largest, the
lowest index on ties (as ``argmax``). Backward: the one-hot choice is
replaced by ``s = softmax(guide)`` (the straight-through surrogate), so with
``a_j`` the response of region j's filter dotted with the output gradient,

    dL/dguide_j = s_j * (a_j - sum_i s_i * a_i).
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


def region_keys(guide: Tensor) -> Tensor:
    """``sample * m + region`` of every pixel, flattened to (B*H*W,): the row
    of a (B*m, ...) table of per-sample, per-region values."""
    batch, regions = guide.shape[:2]
    base = torch.arange(batch, device=guide.device).view(-1, 1, 1)
    return (region_index(guide) + base * regions).reshape(-1)


def surrogate_guide_grad(guide_rows: Tensor, response: Tensor) -> Tensor:
    """``s * (a - sum(s * a))`` with s = softmax of ``guide_rows`` over the
    last dim; both (..., m). Computed in ``response``'s dtype."""
    soft = torch.softmax(guide_rows.to(response.dtype), dim=-1)
    return soft * (response - (soft * response).sum(-1, keepdim=True))


def straight_through_mask(guide: Tensor) -> Tensor:
    """One-hot region mask of guide logits (B, m, H, W) whose gradient is that
    of softmax(guide): autograd through it gives the surrogate gradient above
    (used by the naive reference and by export-friendly formulations)."""
    soft = torch.softmax(guide, dim=1)
    hard = F.one_hot(region_index(guide), guide.shape[1])
    hard = hard.permute(0, 3, 1, 2).to(soft.dtype)
    return hard + soft - soft.detach()
