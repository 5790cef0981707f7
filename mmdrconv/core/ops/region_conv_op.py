"""Region-aware convolution: one filter per output pixel, chosen by a guide.

``region_conv`` computes, for every output pixel, only the filter its region
selects, so the forward pass costs the multiply-adds of one standard
convolution (see ``layout`` for how pixels and patches are arranged). The
GEMMs run as 1x1 convolutions on channels-last views of the row matrices:
oneDNN does them faster than ``torch.mm`` (MKL) on the CPU
(docs/benchmarks.md).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import IntPair, check_region_conv_inputs
from .double_backward import region_conv_gradients, twice_differentiable
from .export_forms import (apply_eager, autocast_enabled, is_exporting,
                           region_conv_export)
from .geometry import output_memory_format
from .layout import Geometry, Plan, filter_rows
from .regions import surrogate_guide_grad
from .triton import triton_region_conv, use_triton


# Row-matrix products. With groups == 1 they run as 1x1 convolutions over a
# channels-last (1, K, n, 1) view of the rows, which oneDNN does faster
# than torch.mm (docs/benchmarks.md); float64 falls back to PyTorch's own
# kernels.
def _rows_as_image(rows: Tensor) -> Tensor:
    n, k = rows.shape
    return rows.view(1, n, 1, k).permute(0, 3, 1, 2)


def _image_as_rows(image: Tensor) -> Tensor:
    return image.permute(0, 2, 3, 1).reshape(image.shape[2], image.shape[1])


def _apply_filter(patch: Tensor, weight: Tensor, geom: Geometry) -> Tensor:
    """patch (n, kh*kw*C) x weight (O, kh*kw*C/g) -> (n, O)."""
    if geom.groups == 1:
        out = F.conv2d(_rows_as_image(patch), weight[:, :, None, None])
        return _image_as_rows(out)
    g, n = geom.groups, patch.shape[0]
    p = patch.view(n, geom.kh * geom.kw, g, geom.group_channels)
    w = weight.view(g, -1, geom.kh * geom.kw, geom.group_channels)
    return torch.einsum('nkgc,gokc->ngo', p, w).reshape(n, weight.shape[0])


def _filter_input_grad(grad_out: Tensor, weight: Tensor,
                       geom: Geometry) -> Tensor:
    """grad wrt patch of _apply_filter: (n, O) x (O, K/g) -> (n, K)."""
    if geom.groups == 1:
        out = F.conv_transpose2d(_rows_as_image(grad_out),
                                 weight[:, :, None, None])
        return _image_as_rows(out)
    g, n = geom.groups, grad_out.shape[0]
    go = grad_out.view(n, g, geom.out_channels // g)
    w = weight.view(g, geom.out_channels // g, geom.kh * geom.kw,
                    geom.group_channels)
    return torch.einsum('ngo,gokc->nkgc', go, w).reshape(n, geom.patch_size)


def _filter_weight_grad(grad_out: Tensor, patch: Tensor,
                        geom: Geometry) -> Tensor:
    """grad wrt weight of _apply_filter: -> (O, K/g)."""
    if geom.groups == 1:
        return grad_out.t() @ patch
    g, n = geom.groups, patch.shape[0]
    go = grad_out.view(n, g, geom.out_channels // g)
    p = patch.view(n, geom.kh * geom.kw, g, geom.group_channels)
    return torch.einsum('ngo,nkgc->gokc', go, p).reshape(
        geom.out_channels, -1)


def _stack_regions(weights: Tensor, geom: Geometry) -> Tensor:
    """(B, m, O, K/g) -> (B, g*m*O/g, K/g): one filter bank, group-major."""
    b, m, g = weights.shape[0], geom.regions, geom.groups
    k = weights.shape[-1]
    w = weights.view(b, m, g, geom.out_channels // g, k).transpose(1, 2)
    return w.reshape(b, m * geom.out_channels, k)


def _all_region_response(patch: Tensor, grad_out: Tensor, stacked: Tensor,
                         geom: Geometry) -> Tensor:
    """a_j = <grad_out, (filter_j * patch)> for every region j: (n, m)."""
    n, g, m = patch.shape[0], geom.groups, geom.regions
    resp = _apply_filter(patch, stacked, geom)
    return torch.einsum('ngmo,ngo->nm',
                        resp.view(n, g, m, geom.out_channels // g),
                        grad_out.view(n, g, geom.out_channels // g))


class RegionConvFunction(torch.autograd.Function):
    """Autograd op of ``region_conv``; the guide gets the softmax surrogate."""

    @staticmethod
    def forward(ctx, x, filters, guide, bias, stride, padding, dilation,
                groups):
        geom = Geometry.of(x.shape, filters.shape, stride, padding, dilation,
                           groups)
        plan = Plan(guide, geom)
        weights = filter_rows(filters)
        x_rows = geom.padded_rows(x)
        out = x.new_empty(geom.rows, geom.out_channels)
        if plan.padded:
            patch = plan.pad(geom.gather_patches(x_rows, plan.order))
            result = torch.bmm(patch, weights.flatten(0, 1).transpose(1, 2))
            out.index_copy_(0, plan.order, plan.unpad(result))
        elif geom.rows:
            chunks, buffer_rows = plan.chunks(geom, geom.patch_size)
            buffer = x.new_empty(buffer_rows * geom.patch_size)
            for start, end, pieces in chunks:
                rows = plan.order[start:end]
                patch = geom.gather_patches(x_rows, rows, buffer)
                result = out.new_empty(end - start, geom.out_channels)
                for p_start, p_end, b, r in pieces:
                    s, e = p_start - start, p_end - start
                    result[s:e] = _apply_filter(patch[s:e], weights[b, r],
                                                geom)
                out.index_copy_(0, rows, result)
        if bias is not None:
            out += bias
        y = out.view(geom.batch, geom.out_h, geom.out_w,
                     geom.out_channels).permute(0, 3, 1, 2)
        ctx.save_for_backward(x, filters, guide)
        ctx.geom, ctx.plan, ctx.has_bias = geom, plan, bias is not None
        ctx.conv_args = (stride, padding, dilation, groups)
        return y.contiguous(memory_format=output_memory_format(x))

    @staticmethod
    @twice_differentiable(region_conv_gradients)
    def backward(ctx, grad_y):
        x, filters, guide = ctx.saved_tensors
        geom, plan = ctx.geom, ctx.plan
        need_x, need_w, need_g, need_b = ctx.needs_input_grad[:4]
        if geom.rows == 0:  # empty batch (e.g. no RoIs): all gradients zero
            grads = [
                torch.zeros_like(t) if need else None
                for t, need in zip((x, filters, guide), (need_x, need_w,
                                                         need_g))
            ]
            grad_bias = grad_y.new_zeros(geom.out_channels) \
                if need_b and ctx.has_bias else None
            return (*grads, grad_bias, None, None, None, None)

        grad_rows = grad_y.permute(0, 2, 3, 1).reshape(geom.rows,
                                                       geom.out_channels)
        weights = filter_rows(filters)
        x_rows = geom.padded_rows(x)
        grad_x_rows = torch.zeros_like(x_rows) if need_x else None
        backward = _padded_backward if plan.padded else _chunked_backward
        grad_w, response = backward(plan, geom, x_rows, grad_rows, weights,
                                    grad_x_rows, need_w, need_g)

        grad_x = grad_filters = grad_guide = grad_bias = None
        if need_x:
            ph, pw = geom.padding
            grad_x = grad_x_rows.view(geom.batch, geom.padded_h,
                                      geom.padded_w, geom.channels)
            grad_x = grad_x[:, ph:ph + geom.height, pw:pw + geom.width]
            grad_x = grad_x.permute(0, 3, 1, 2).contiguous(
                memory_format=output_memory_format(x))
        if need_w:
            grad_filters = grad_w.view(
                geom.batch, geom.regions, geom.out_channels, geom.kh,
                geom.kw, geom.group_channels).permute(0, 1, 2, 5, 3, 4)
        if need_g:
            grad_guide = surrogate_guide_grad(guide, plan.unsort(response))
        if need_b and ctx.has_bias:
            grad_bias = grad_rows.sum(0)
        return grad_x, grad_filters, grad_guide, grad_bias, None, None, \
            None, None


def _padded_backward(plan, geom, x_rows, grad_rows, weights, grad_x_rows,
                     need_w, need_g):
    m = geom.regions
    patch = plan.pad(geom.gather_patches(x_rows, plan.order))
    grad_out = plan.pad(grad_rows.index_select(0, plan.order))
    w = weights.flatten(0, 1)  # (B*m, O, K)
    grad_w = response = None
    if need_w:
        grad_w = torch.bmm(grad_out.transpose(1, 2), patch).view_as(weights)
    if grad_x_rows is not None:
        grad_patch = plan.unpad(torch.bmm(grad_out, w))
        geom.scatter_patches(grad_x_rows, grad_patch, plan.order)
    if need_g:
        # Every region's response for all of a sample's rows at once.
        stacked = weights.flatten(1, 2)  # (B, m*O, K)
        per_sample = patch.view(geom.batch, m * plan.longest, -1)
        resp = torch.bmm(per_sample, stacked.transpose(1, 2))
        resp = resp.view(-1, m, geom.out_channels)
        go = grad_out.reshape(-1, 1, geom.out_channels)
        response = plan.unpad((resp * go).sum(-1))
    return grad_w, response


def _chunked_backward(plan, geom, x_rows, grad_rows, weights, grad_x_rows,
                      need_w, need_g):
    regions = geom.regions
    grad_w = torch.zeros_like(weights) if need_w else None
    response = grad_rows.new_empty(geom.rows, regions) if need_g else None
    stacked = _stack_regions(weights, geom) if need_g else None
    # The guide gradient needs every region's response (m outputs per row),
    # so its chunks are m times smaller.
    width = max(geom.patch_size,
                regions * geom.out_channels if need_g else 0)
    chunks, buffer_rows = plan.chunks(geom, width)
    buffer = x_rows.new_empty(buffer_rows * geom.patch_size)
    for start, end, pieces in chunks:
        rows = plan.order[start:end]
        patch = geom.gather_patches(x_rows, rows, buffer)
        grad_out = grad_rows.index_select(0, rows)
        grad_patch = torch.empty_like(patch) if grad_x_rows is not None \
            else None
        for p_start, p_end, b, r in pieces:
            s, e = p_start - start, p_end - start
            if need_w:
                grad_w[b, r] += _filter_weight_grad(grad_out[s:e],
                                                    patch[s:e], geom)
            if grad_patch is not None:
                grad_patch[s:e] = _filter_input_grad(grad_out[s:e],
                                                     weights[b, r], geom)
            if need_g:
                response[p_start:p_end] = _all_region_response(
                    patch[s:e], grad_out[s:e], stacked[b], geom)
        if grad_patch is not None:
            geom.scatter_patches(grad_x_rows, grad_patch, rows)
    return grad_w, response


def region_conv(x: Tensor,
                filters: Tensor,
                guide: Tensor,
                bias: Optional[Tensor] = None,
                stride: IntPair = 1,
                padding: IntPair = 0,
                dilation: IntPair = 1,
                groups: int = 1,
                backend: str = 'auto') -> Tensor:
    """Convolve each output pixel with the filter of its guide-chosen region.

    Args:
        x: input, (B, C, H, W).
        filters: per-sample region filters, (B, m, O, C // groups, kh, kw).
        guide: guide logits, (B, m, H_out, W_out); the region of a pixel is
            their argmax (lowest index on ties). Its gradient is the softmax
            surrogate of DRConv.
        bias: optional (O,) bias.
        backend: ``'auto'`` (Triton kernels for CUDA tensors when triton
            imports, else PyTorch), ``'triton'`` or ``'torch'``; see
            ``mmdrconv.core.ops.triton``. ``groups > 1`` always runs on PyTorch.

    Returns:
        (B, O, H_out, W_out), channels-last if ``x`` is.
    """
    geom = check_region_conv_inputs(x, filters, guide, bias, stride,
                                    padding, dilation, groups)
    stride, padding, dilation = geom.stride, geom.padding, geom.dilation
    if x.is_meta:  # shapes only (the run plan needs the guide's values)
        dtype = torch.promote_types(x.dtype, filters.dtype)
        return x.new_empty((x.shape[0], filters.shape[2], geom.out_h,
                            geom.out_w), dtype=dtype)
    device_type = x.device.type
    if autocast_enabled(device_type):
        # Autocast runs convolutions in its lower precision; so do we.
        dtype = torch.get_autocast_dtype(device_type)
    else:
        dtype = torch.promote_types(x.dtype, filters.dtype)
    x, filters = x.to(dtype), filters.to(dtype)
    bias = bias.to(dtype) if bias is not None else None
    # torch.export / torch.onnx.export cannot trace the sorted-run Function:
    # the all-regions form of the same math (mmdrconv.core.ops.export_forms).
    if is_exporting():
        return region_conv_export(x, filters, guide, bias, stride, padding,
                                  dilation, groups)
    on_triton = use_triton(backend, x, groups)
    with torch.autocast(device_type, enabled=False):
        if on_triton:
            return triton_region_conv(x, filters, guide, bias, stride,
                                      padding, dilation)
        return apply_eager(RegionConvFunction, x, filters, guide, bias,
                           stride, padding, dilation, groups)
