"""Traceable forms of ``region_conv`` and ``region_scale`` for export.

The fast paths sort pixels into runs, read run lengths back to Python
(``.tolist()``) and loop over them inside custom autograd Functions: none of
that can be captured by ``torch.export`` (and so by ``torch.onnx.export``,
whose default exporter is built on it) into a graph with dynamic batch and
spatial size. While exporting, the public ops dispatch here instead: the
same forward math written with standard ops only (Unfold/MatMul, ArgMax,
Gather, Mul, Add in ONNX), so the exported graph runs on any runtime without
a custom op.

Cost (forward only; see docs/deploy.md):

- ``region_scale_export``: as the fast path, one gather of an output-sized
  tensor of per-pixel scales and one multiply(-add).
- ``region_conv_export``: computes every region's filter at every output
  pixel and then gathers the one the guide picks: m times the multiply-adds
  of one convolution (the fast path: 1x), and transient memory of m output
  tensors plus a k*k-times-the-input patch matrix (im2col).

``adaptive_avg_pool2d_export`` is the ``'paper'`` generator's pooling in a
form whose bins follow the input size.

These forms have no softmax-surrogate guide gradient (argmax passes none):
they are meant for inference graphs. Training and ``torch.compile`` keep the
autograd Functions.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .regions import region_keys


def is_exporting() -> bool:
    """True while ``torch.export`` (strict or not; the default dynamo
    ``torch.onnx.export`` runs it) or ``torch.jit.trace`` (the TorchScript
    ONNX exporter) traces.

    ``torch.compile`` sets neither, so compiled models keep the fast autograd
    Functions. (torch.onnx.is_in_onnx_export() would add nothing and costs
    4 us per call.)
    """
    return torch.compiler.is_exporting() or torch.jit.is_tracing()


def _pixel_rows(table: Tensor, guide: Tensor, per_pixel: bool) -> Tensor:
    """Each pixel's row of ``table``, gathered channels-last: (B, H, W, O).

    Args:
        table: (rows, O). ``per_pixel=False``: (B * m, O), one row per
            (sample, region); ``per_pixel=True``: (B * H * W * m, O), one
            row per (pixel, region).
        guide: (B, m, H, W) guide logits. The region rule is the fast
            path's (``regions.region_index``: first maximum), which exports
            to ONNX ArgMax with select_last_index=0: the same on ties.
    """
    batch, _, height, width = guide.shape
    rows = torch.index_select(table, 0, region_keys(guide, per_pixel))
    return rows.view(batch, height, width, table.shape[1])


def region_scale_export(out: Tensor, scales: Tensor, guide: Tensor,
                        bias: Optional[Tensor]) -> Tensor:
    """``out * scales[b, region(p)] (+ bias)`` with Gather + Mul."""
    pixel_scales = _pixel_rows(scales.reshape(-1, scales.shape[2]), guide,
                               per_pixel=False)
    y = out * pixel_scales.permute(0, 3, 1, 2)
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y


def region_conv_export(x: Tensor, filters: Tensor, guide: Tensor,
                       bias: Optional[Tensor], stride: Tuple[int, int],
                       padding: Tuple[int, int], dilation: Tuple[int, int],
                       groups: int) -> Tensor:
    """All-regions convolution (unfold + batched MatMul), then a Gather of
    each pixel's region: exact DRConv forward with standard ops."""
    # Layer constants as Python ints: the TorchScript exporter needs a
    # static kernel size.
    regions, out_channels, _, kh, kw = (int(d) for d in filters.shape[1:])
    batch, height, width = filters.shape[0], guide.shape[2], guide.shape[3]
    # (B, C*kh*kw, L), columns ordered (C, kh, kw): each group's channels
    # are one contiguous block of rows.
    patches = F.unfold(x, (kh, kw), dilation, padding, stride)
    group_out = out_channels // groups
    # (B, g, L, K/g) x (B, g, K/g, m*O/g) -> (B, g, L, m*O/g)
    patches = patches.view(batch, groups, -1, height * width).transpose(2, 3)
    weight = filters.reshape(batch, regions, groups, group_out, -1)
    weight = weight.permute(0, 2, 4, 1, 3)
    weight = weight.reshape(batch, groups, -1, regions * group_out)
    responses = torch.matmul(patches, weight)
    if groups > 1:
        # -> (B, L, m, g, O/g): output channels group-major, as nn.Conv2d.
        responses = responses.view(batch, groups, -1, regions, group_out)
        responses = responses.permute(0, 2, 3, 1, 4)
    # Rows of (B*L*m, O): row (pixel, region).
    table = responses.reshape(-1, out_channels)
    y = _pixel_rows(table, guide, per_pixel=True).permute(0, 3, 1, 2)
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y


def adaptive_avg_pool2d_export(x: Tensor, output_size: Tuple[int,
                                                             int]) -> Tensor:
    """``F.adaptive_avg_pool2d`` as two averaging matrices built from the
    input's size at run time: bin i of n over a length L spans
    [floor(i L / n), ceil((i + 1) L / n)), as PyTorch's.

    The exporters decompose adaptive pooling with the bin bounds of the
    traced size baked into Gather indices, so a graph traced at one size
    reads out of bounds (or averages the wrong pixels) at another.
    """
    matrices = []
    for length, bins in zip(x.shape[2:], output_size):
        index = torch.arange(bins, device=x.device)
        start = torch.div(index * length, bins, rounding_mode='floor')
        end = torch.div((index + 1) * length + bins - 1, bins,
                        rounding_mode='floor')
        position = torch.arange(length, device=x.device)
        inside = (position[None] >= start[:, None]) & \
            (position[None] < end[:, None])
        matrices.append(inside.to(x.dtype) /
                        (end - start)[:, None].to(x.dtype))
    return torch.einsum('ih,bchw,jw->bcij', matrices[0], x, matrices[1])


# torch.compiler.disable as a decorator imports torch._dynamo at once (about
# a second of every process's start-up, cells and tools included); torch's
# own lazy form imports it on the first call. Same effect under compile.
_disable_compile = getattr(torch, '_disable_dynamo', torch.compiler.disable)


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (False for device types
    without autocast, e.g. 'meta')."""
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:
        return False


def _records_graph(args) -> bool:
    """Whether autograd would record a call on ``args``."""
    return torch.is_grad_enabled() and any(
        isinstance(a, torch.Tensor) and a.requires_grad for a in args)


@_disable_compile
def apply_eager(function, *args):
    """``function.apply(*args)``, opaque to torch.compile, with autocast off
    (the Functions compute in the dtypes they are given, GEMMs included).

    Dynamo cannot trace the fast paths (data-dependent run lengths read back
    to Python, ``out=`` into channels-last tensors); it would split them into
    many small graphs and recompile them as region counts change. Marked
    disabled, each call is one clean graph break and runs eagerly, with its
    own autograd backward.

    Where autograd records nothing (inference) and ``function`` has an
    ``inference`` method (its forward, without a ctx), that runs instead:
    the Function machinery and the saved tensors cost a small layer's call
    about as much as its arithmetic.
    """
    call = function.apply
    if not _records_graph(args):
        call = getattr(function, 'inference', call)
    device_type = args[0].device.type
    if not autocast_enabled(device_type):
        return call(*args)
    with torch.autocast(device_type, enabled=False):
        return call(*args)
