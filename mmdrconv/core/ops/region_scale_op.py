"""Region-wise channel scaling: the fast path of modulated DRConv.

With region filters ``weight * scales[b, r, :, None, None, None]``, DRConv's
output is ``conv(x, weight) * scales[b, region(p)]`` per pixel p: one
convolution plus an elementwise product, exactly, with the same softmax
surrogate for the guide.

The per-pixel work runs in the maps' own memory format (as nn.Conv2d keeps
its input's), each with the form measured fastest on the CPU
(docs/benchmarks.md):

- channels-last maps as rows: each pixel's scale vector is one row of the
  (B*m, O) scale table, so the per-pixel scales are an ``index_select`` and
  the scale and guide gradients an ``index_add_`` and a bmm over rows;
- NCHW maps as channel planes: the per-pixel scales, the scale gradients
  and every region's response are batched GEMMs with the (B, m, H*W)
  one-hot region map, (B, O, m) x (B, m, H*W) and so on.

``packed_region_scale`` takes the convolution output with the guide logits
as its last m channels (one convolution computes both, reading the input
once) and writes both gradients into one tensor: slicing them apart in
autograd would cost two zero-filled copies of the whole map and their sum.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from .checks import check_packed_region_scale_inputs, check_region_scale_inputs
from .double_backward import (packed_region_scale_gradients,
                              region_scale_gradients, twice_differentiable)
from .export_forms import apply_eager, is_exporting, region_scale_export
from .regions import region_index, region_keys, surrogate_guide_grad
from .triton import triton_region_scale, use_triton


def channels_inner(t: Tensor) -> bool:
    """Whether the channels of the (B, C, H, W) map ``t`` are its innermost
    dimension (a channels-last map, or channels sliced from one)."""
    return t.stride(1) == 1


def as_rows(t: Tensor) -> Tensor:
    """(B, C, H, W) -> (B*H*W, C); free for channels-last maps."""
    return t.permute(0, 2, 3, 1).reshape(t.numel() // max(t.shape[1], 1),
                                         t.shape[1])


def as_planes(t: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, H*W); free for NCHW maps."""
    batch, channels, height, width = t.shape
    return t.reshape(batch, channels, height * width)


def _pixel_scales(scales: Tensor, keys: Tensor, shape) -> Tensor:
    """(B, O, H, W) channels-last tensor of each pixel's scales.

    Gathered into a tensor of its own rather than a view of the gathered
    rows: the forward returns it, and autograd forbids in-place ops (an
    in-place ReLU next) on a view created inside a custom Function."""
    pixel_scales = torch.empty(shape, dtype=scales.dtype,
                               device=scales.device,
                               memory_format=torch.channels_last)
    rows = pixel_scales.permute(0, 2, 3, 1).view(-1, shape[1])
    torch.index_select(scales.reshape(-1, scales.shape[2]), 0, keys,
                       out=rows)
    return pixel_scales


def one_hot_planes(index: Tensor, regions: int, dtype) -> Tensor:
    """(B, m, H*W) one-hot region map of a (B, H*W) region index."""
    hot = index.new_zeros((index.shape[0], regions, index.shape[1]),
                          dtype=dtype)
    return hot.scatter_(1, index.unsqueeze(1), 1)


def _plane_scales(scales: Tensor, hot: Tensor,
                  out: Optional[Tensor] = None) -> Tensor:
    """(B, O, H*W): each pixel's scales, as (B, O, m) x (B, m, H*W).

    The (B, O, m) operand is made contiguous first: MKL's bmm took up to
    1.6x longer with it transposed (docs/benchmarks.md)."""
    return torch.bmm(scales.transpose(1, 2).contiguous(), hot, out=out)


def _scale(out: Tensor, scales: Tensor, guide: Tensor,
           bias: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """``out * scales[pixel's region] (+ bias)`` and the region keys the
    backward needs, written over the gathered scales (not needed afterwards):
    an output-sized allocation fewer, which matters on memory-bound layers
    (docs/benchmarks.md)."""
    if channels_inner(out):
        keys = region_keys(guide)
        y = _pixel_scales(scales, keys, out.shape)
        pixel_scales, bias_shape = y, (1, -1, 1, 1)
    else:
        keys = region_index(guide).flatten(1)
        # Returned as the 4-D tensor itself, not a view made here: autograd
        # forbids in-place ops (an in-place ReLU next) on such views.
        y = out.new_empty(out.shape)
        pixel_scales = _plane_scales(
            scales, one_hot_planes(keys, scales.shape[1], scales.dtype),
            out=as_planes(y))
        out, bias_shape = as_planes(out), (1, -1, 1)
    if bias is None:
        pixel_scales.mul_(out)
    else:
        torch.addcmul(bias.view(bias_shape), out, pixel_scales,
                      out=pixel_scales)
    return y, keys


def _gradients(out: Tensor, scales: Tensor, guide: Tensor, keys: Tensor,
               grad_y: Tensor, needs: Tuple[bool, bool, bool],
               grad_out: Optional[Tensor] = None,
               grad_guide: Optional[Tensor] = None) -> Tuple:
    """Gradients of out, scales and guide (None where not in ``needs``);
    those of out and guide are written into ``grad_out`` / ``grad_guide``
    when given."""
    need_out, need_scales, need_guide = needs
    batch, regions, channels = scales.shape
    rows = channels_inner(out)
    hot = None if rows else one_hot_planes(keys, regions, scales.dtype)
    grad_scales = response = None
    if need_out:
        if rows:
            pixel_scales = _pixel_scales(scales, keys, out.shape)
        else:
            pixel_scales = _plane_scales(scales, hot).view(out.shape)
        grad_out = torch.mul(pixel_scales, grad_y,
                             out=pixel_scales if grad_out is None
                             else grad_out)
    if need_scales or need_guide:
        # t = dL/dy * conv(x, weight) per pixel: the response to a unit
        # scale, from which both remaining gradients follow.
        if rows:
            t = as_rows(grad_y) * as_rows(out)
            if need_scales:
                grad_scales = t.new_zeros(batch * regions, channels)
                grad_scales.index_add_(0, keys, t)
                grad_scales = grad_scales.view(batch, regions, channels)
            if need_guide:
                # a_j(p) = sum_o t[p, o] * scales[b, j, o]
                pixels = guide.shape[2] * guide.shape[3]
                response = torch.bmm(t.view(batch, pixels, channels),
                                     scales.transpose(1, 2))
        else:
            t = as_planes(grad_y) * as_planes(out)
            if need_scales:
                grad_scales = torch.bmm(hot, t.transpose(1, 2))
            if need_guide:
                response = torch.bmm(scales, t).view(guide.shape)
    if need_guide:
        surrogate = surrogate_guide_grad(guide, response)
        if grad_guide is None:
            grad_guide = surrogate
        else:
            grad_guide.copy_(surrogate)
    return grad_out, grad_scales, grad_guide


class RegionScaleFunction(torch.autograd.Function):

    @staticmethod
    def inference(out, scales, guide, bias):
        """The forward where autograd records nothing (``apply_eager``)."""
        return _scale(out, scales, guide, bias)[0]

    @staticmethod
    def forward(ctx, out, scales, guide, bias):
        y, keys = _scale(out, scales, guide, bias)
        ctx.save_for_backward(out, scales, guide, keys)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    @twice_differentiable(region_scale_gradients)
    def backward(ctx, grad_y):
        out, scales, guide, keys = ctx.saved_tensors
        grad_out, grad_scales, grad_guide = _gradients(
            out, scales, guide, keys, grad_y, ctx.needs_input_grad[:3])
        grad_bias = grad_y.sum((0, 2, 3)) \
            if ctx.has_bias and ctx.needs_input_grad[3] else None
        return grad_out, grad_scales, grad_guide, grad_bias


def split_packed(both: Tensor, guide_bias: Optional[Tensor],
                 channels: int) -> Tuple[Tensor, Tensor]:
    """The output and the guide logits (plus ``guide_bias``) of a packed
    map: its first ``channels`` channels and the rest."""
    # narrow: a few microseconds less than slicing by [], per call.
    out = both.narrow(1, 0, channels)
    guide = both.narrow(1, channels, both.shape[1] - channels)
    if guide_bias is not None:
        guide = guide + guide_bias.view(1, -1, 1, 1)
    return out, guide


class PackedRegionScaleFunction(torch.autograd.Function):

    @staticmethod
    def inference(both, scales, guide_bias, bias):
        """The forward where autograd records nothing (``apply_eager``)."""
        out, guide = split_packed(both, guide_bias, scales.shape[2])
        return _scale(out, scales, guide, bias)[0]

    @staticmethod
    def forward(ctx, both, scales, guide_bias, bias):
        out, guide = split_packed(both, guide_bias, scales.shape[2])
        y, keys = _scale(out, scales, guide, bias)
        # The guide is recomputed in the backward (m channels): saving it
        # would keep another map alive between the passes.
        ctx.save_for_backward(both, scales, guide_bias, keys)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    @twice_differentiable(packed_region_scale_gradients)
    def backward(ctx, grad_y):
        both, scales, guide_bias, keys = ctx.saved_tensors
        need_both, need_scales, need_guide_bias, need_bias = \
            ctx.needs_input_grad
        channels = scales.shape[2]
        out, guide = split_packed(both, guide_bias, channels)
        grad_both = torch.empty_like(both) if need_both else None
        grad_out, grad_scales, grad_guide = _gradients(
            out, scales, guide, keys, grad_y,
            (need_both, need_scales, need_both or need_guide_bias),
            *(split_packed(grad_both, None, channels) if need_both else ()))
        grad_guide_bias = grad_guide.sum((0, 2, 3)) \
            if need_guide_bias else None
        grad_bias = grad_y.sum((0, 2, 3)) \
            if ctx.has_bias and need_bias else None
        return grad_both, grad_scales, grad_guide_bias, grad_bias


def region_scale(out: Tensor,
                 scales: Tensor,
                 guide: Tensor,
                 bias: Optional[Tensor] = None,
                 backend: str = 'auto') -> Tensor:
    """Scale each pixel of ``out`` (B, O, H, W) by its region's channel scales,
    then add the optional (O,) ``bias``.

    Args:
        out: (B, O, H, W), typically ``conv(x, weight)``; the result has its
            memory format (channels-last or NCHW).
        scales: (B, m, O) per-sample, per-region channel scales.
        guide: (B, m, H, W) guide logits; region = argmax over m.
        backend: ``'auto'`` (a fused Triton kernel for CUDA tensors when
            triton imports, else PyTorch), ``'triton'`` or ``'torch'``; see
            ``mmdrconv.core.ops.triton``.
    """
    check_region_scale_inputs(out, scales, guide)
    scales = scales.to(out.dtype)
    bias = bias.to(out.dtype) if bias is not None else None
    # A Gather + Mul form for torch.export / torch.onnx.export, which cannot
    # trace custom autograd Functions (mmdrconv.core.ops.export_forms).
    if is_exporting():
        return region_scale_export(out, scales, guide, bias)
    if use_triton(backend, out, op='region_scale'):
        return triton_region_scale(out, scales, guide, bias)
    return apply_eager(RegionScaleFunction, out, scales, guide, bias)


def packed_region_scale(both: Tensor,
                        scales: Tensor,
                        guide_bias: Optional[Tensor] = None,
                        bias: Optional[Tensor] = None,
                        backend: str = 'auto') -> Tensor:
    """``region_scale`` of a convolution output and guide computed together.

    Args:
        both: (B, O + m, H, W): the output to scale (first O channels) and
            the guide logits without their bias (last m channels), e.g.
            ``conv(x, cat([weight, guide_weight]))``.
        scales: (B, m, O) per-sample, per-region channel scales.
        guide_bias: optional (m,) bias of the guide logits.
        bias, backend: as :func:`region_scale`.

    Returns:
        (B, O, H, W) in ``both``'s memory format; the gradient of ``both``
        is one tensor (the output's, then the guide's channels).
    """
    check_packed_region_scale_inputs(both, scales, guide_bias)
    scales = scales.to(both.dtype)
    bias = bias.to(both.dtype) if bias is not None else None
    if is_exporting() or use_triton(backend, both, op='region_scale'):
        out, guide = split_packed(both, guide_bias, scales.shape[2])
        return region_scale(out, scales, guide, bias, backend)
    return apply_eager(PackedRegionScaleFunction, both, scales, guide_bias,
                       bias)
