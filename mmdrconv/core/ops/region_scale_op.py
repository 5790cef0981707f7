"""Region-wise channel scaling: the fast path of modulated DRConv.

With region filters ``weight * scales[b, r, :, None, None, None]``, DRConv's
output is ``conv(x, weight) * scales[b, region(p)]`` per pixel p: one
convolution plus an elementwise product, exactly, with the same softmax
surrogate for the guide.

Pixels are handled as channels-last rows: each pixel's scale vector is one
row of the (B*m, O) scale table, so the per-pixel scales are an
``index_select`` and the scale and guide gradients are an ``index_add_`` and a
bmm over rows (faster on the CPU than one-hot products over NCHW maps; see
docs/benchmarks.md).
"""
from typing import Optional

import torch
from torch import Tensor

from .checks import check_region_scale_inputs
from .double_backward import region_scale_gradients, twice_differentiable
from .export_forms import apply_eager, is_exporting, region_scale_export
from .regions import region_keys, surrogate_guide_grad
from .triton import triton_region_scale, use_triton


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


def _as_rows(t: Tensor) -> Tensor:
    """(B, C, H, W) -> (B*H*W, C); free for channels-last tensors."""
    return t.permute(0, 2, 3, 1).reshape(t.numel() // max(t.shape[1], 1),
                                         t.shape[1])


def _scale(out: Tensor, scales: Tensor, keys: Tensor,
           bias: Optional[Tensor]) -> Tensor:
    """``out * scales[pixel's row] (+ bias)``, written over the gathered
    scales (not needed afterwards): an output-sized allocation fewer, which
    matters on memory-bound layers (docs/benchmarks.md)."""
    pixel_scales = _pixel_scales(scales, keys, out.shape)
    if bias is None:
        return pixel_scales.mul_(out)
    return torch.addcmul(bias.view(1, -1, 1, 1), out, pixel_scales,
                         out=pixel_scales)


class RegionScaleFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, out, scales, guide, bias):
        keys = region_keys(guide)
        y = _scale(out, scales, keys, bias)
        ctx.save_for_backward(out, scales, guide, keys)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    @twice_differentiable(region_scale_gradients)
    def backward(ctx, grad_y):
        out, scales, guide, keys = ctx.saved_tensors
        batch, regions, channels = scales.shape
        grad_out = grad_scales = grad_guide = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_out = _pixel_scales(scales, keys, out.shape).mul_(grad_y)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            # t = dL/dy * conv(x, weight) per pixel: the response to a unit
            # scale, from which both remaining gradients follow.
            t = _as_rows(grad_y * out)
            if ctx.needs_input_grad[1]:
                grad_scales = t.new_zeros(batch * regions, channels)
                grad_scales.index_add_(0, keys, t)
                grad_scales = grad_scales.view(batch, regions, channels)
            if ctx.needs_input_grad[2]:
                # a_j(p) = sum_o t[p, o] * scales[b, j, o]
                pixels = guide.shape[2] * guide.shape[3]
                a = torch.bmm(t.view(batch, pixels, channels),
                              scales.to(t.dtype).transpose(1, 2))
                grad_guide = surrogate_guide_grad(guide, a)
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_bias = grad_y.sum((0, 2, 3))
        return grad_out, grad_scales, grad_guide, grad_bias


def region_scale(out: Tensor,
                 scales: Tensor,
                 guide: Tensor,
                 bias: Optional[Tensor] = None,
                 backend: str = 'auto') -> Tensor:
    """Scale each pixel of ``out`` (B, O, H, W) by its region's channel scales,
    then add the optional (O,) ``bias``.

    Args:
        out: (B, O, H, W), typically ``conv(x, weight)``; fastest when
            channels-last.
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
