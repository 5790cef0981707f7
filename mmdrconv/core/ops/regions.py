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


# Smallest NCHW guide (pixels per sample) whose region index is taken by
# the vectorised maximum below: under it, one max() call is cheaper.
MIN_PLANE_PIXELS = 1024


def region_index(guide: Tensor) -> Tensor:
    """Region of every pixel of guide logits (B, m, H, W): (B, H, W).

    The first maximal index (lowest region on ties, like argmax).
    ``max(dim).indices`` is much faster than argmax over a non-inner dim
    (docs/benchmarks.md, "How `region_conv` is built"), but not vectorised
    over NCHW channel planes; there (on the CPU) the maximum ``amax`` is,
    and the first region that reaches it is the largest of the weights
    m - j over the regions j that do: the same index, ~3x faster.
    """
    from .export_forms import is_exporting  # (imports this module)
    regions = guide.shape[1]
    # While exporting: the one rule, with no branch on sizes or values
    # (a graph of any size; ONNX ArgMax).
    if is_exporting() or guide.device.type != 'cpu' or \
            guide.stride(1) == 1 or regions > 255 or \
            guide.shape[2] * guide.shape[3] < MIN_PLANE_PIXELS:
        return guide.max(dim=1).indices
    top = guide.amax(1, keepdim=True)
    if top.isnan().any():  # max() picks the first NaN; equality cannot
        return guide.max(dim=1).indices
    weights = torch.arange(regions, 0, -1, dtype=torch.uint8,
                           device=guide.device).view(1, -1, 1, 1)
    first = ((guide == top) * weights).amax(1)
    return (regions - first).long()


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
    # In place on the fresh indices, offsets made in one op: on small maps
    # the per-op cost of this layer's calls is most of their time.
    base = torch.arange(0, batch * regions, regions, device=guide.device)
    return region.add_(base.view(-1, 1, 1)).reshape(-1)


def surrogate_guide_grad(guide: Tensor, response: Tensor) -> Tensor:
    """dL/dguide = s * (a - sum(s * a)), s = softmax of ``guide`` over m.

    Args:
        guide: (B, m, H, W) guide logits.
        response: every region's response a: maps (B, m, H, W), or rows
            (B*H*W, m) (any shape of that size but 4-D) in raster pixel
            order; the result is computed in its dtype.

    Returns:
        (B, m, H, W) in ``guide``'s dtype; channels-last in memory for
        rows, in the memory format of ``guide`` and the maps for maps.
    """
    batch, regions, height, width = guide.shape
    if response.dim() == 4:
        dim, a = 1, response
        soft = torch.softmax(guide.to(response.dtype), dim=1)
    else:
        dim = 3
        soft = torch.softmax(guide.permute(0, 2, 3, 1).to(response.dtype),
                             dim=3)
        a = response.reshape(batch, height, width, regions)
    grad = soft * (a - (soft * a).sum(dim, keepdim=True))
    if dim == 3:
        grad = grad.permute(0, 3, 1, 2)
    return grad.to(guide.dtype)


def straight_through_mask(guide: Tensor) -> Tensor:
    """One-hot region mask of guide logits (B, m, H, W) whose gradient is that
    of softmax(guide): autograd through it gives the surrogate gradient above
    (used by the naive reference and by export-friendly formulations)."""
    soft = torch.softmax(guide, dim=1)
    hard = F.one_hot(region_index(guide), guide.shape[1])
    hard = hard.permute(0, 3, 1, 2).to(soft.dtype)
    return hard + soft - soft.detach()
