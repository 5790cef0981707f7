"""``region_scale`` on Triton: one fused kernel forward, one backward.

y[b, o, p] = out[b, o, p] * scales[b, region(p), o] + bias[o], with
region(p) = argmax_j guide[b, j, p] (lowest index on ties) computed inside
the kernels. Every tensor is addressed through its (b, c, h, w) strides, so
the channel slices of DRConv's fused conv (``both[:, :O]`` and
``both[:, O:]`` of one channels-last tensor) are read without copies.

Backward, in one pass over the pixels of a block (all output channels):
grad_out = dy * scales[b, region]; t = dy * out, from which
grad_scales[b, j] = sum of t over region j's pixels (a one-hot GEMM, added
atomically per block) and the guide's surrogate gradient with
a_j = sum_o t[o] * scales[b, j, o], dF_j = s_j (a_j - sum_i s_i a_i),
s = softmax(guide); grad_bias = sum of dy (atomic per block).
"""
from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..double_backward import region_scale_gradients
from .launch import Kernel, backward_on_device, on_device_of, tile_configs

# As in conv_kernels: sizes unspecialised; strides specialised on == 1 only.
_JIT = dict(do_not_specialize=['HW', 'W'],
            do_not_specialize_on_alignment=[
                f'{t}_stride_{d}' for t in ('o', 'g', 'y', 'dy')
                for d in 'bchw'])


@triton.jit
def _block_regions(guide_ptr, HW, W, g_stride_b, g_stride_c, g_stride_h,
                   g_stride_w, REGIONS, BLOCK_P: tl.constexpr,
                   BLOCK_R: tl.constexpr):
    """Sample b = program_id(1) and the pixel block program_id(0): pixel
    mask, (h, w), fp32 guide logits [BLOCK_P, BLOCK_R] (-inf past the m
    regions) and each pixel's region (argmax, lowest index on ties)."""
    b = tl.program_id(1).to(tl.int64)
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    p_ok = p < HW
    h = p // W
    w = p - h * W
    offs_r = tl.arange(0, BLOCK_R)
    r_ok = offs_r < REGIONS
    row = b * g_stride_b + h * g_stride_h + w * g_stride_w
    logits = tl.load(guide_ptr + row[:, None] + offs_r[None, :] * g_stride_c,
                     mask=p_ok[:, None] & r_ok[None, :], other=0.)
    logits = tl.where(r_ok[None, :], logits.to(tl.float32), float('-inf'))
    region = tl.argmax(logits, axis=1, tie_break_left=True)
    return b, p, p_ok, h, w, logits, region


@triton.jit(**_JIT)
def region_scale_fwd_kernel(
        out_ptr, scales_ptr, guide_ptr, bias_ptr, y_ptr, O, HW, W, REGIONS,
        o_stride_b, o_stride_c, o_stride_h, o_stride_w, g_stride_b,
        g_stride_c, g_stride_h, g_stride_w, y_stride_b, y_stride_c,
        y_stride_h, y_stride_w, HAS_BIAS: tl.constexpr,
        BLOCK_P: tl.constexpr, BLOCK_O: tl.constexpr,
        BLOCK_R: tl.constexpr):
    """Grid: (pixel blocks, B, output-channel blocks)."""
    b, p, p_ok, h, w, logits, region = _block_regions(
        guide_ptr, HW, W, g_stride_b, g_stride_c, g_stride_h, g_stride_w,
        REGIONS, BLOCK_P, BLOCK_R)
    offs_o = tl.program_id(2) * BLOCK_O + tl.arange(0, BLOCK_O)
    mask = p_ok[:, None] & (offs_o < O)[None, :]
    scale_row = (b * REGIONS + region).to(tl.int64) * O
    scale = tl.load(scales_ptr + scale_row[:, None] + offs_o[None, :],
                    mask=mask, other=0.).to(tl.float32)
    o_row = b * o_stride_b + h * o_stride_h + w * o_stride_w
    value = tl.load(out_ptr + o_row[:, None] + offs_o[None, :] * o_stride_c,
                    mask=mask, other=0.).to(tl.float32)
    y = value * scale
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_o, mask=offs_o < O, other=0.)
        y += bias.to(tl.float32)[None, :]
    y_row = b * y_stride_b + h * y_stride_h + w * y_stride_w
    tl.store(y_ptr + y_row[:, None] + offs_o[None, :] * y_stride_c,
             y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit(**_JIT)
def region_scale_bwd_kernel(
        grad_y_ptr, out_ptr, scales_ptr, guide_ptr, grad_out_ptr,
        grad_scales_ptr, grad_guide_ptr, grad_bias_ptr, O, HW, W, REGIONS,
        dy_stride_b, dy_stride_c, dy_stride_h, dy_stride_w, o_stride_b,
        o_stride_c, o_stride_h, o_stride_w, g_stride_b, g_stride_c,
        g_stride_h, g_stride_w, NEED_OUT: tl.constexpr,
        NEED_SCALES: tl.constexpr, NEED_GUIDE: tl.constexpr,
        NEED_BIAS: tl.constexpr, BLOCK_P: tl.constexpr,
        BLOCK_O: tl.constexpr, BLOCK_R: tl.constexpr):
    """Grid: (pixel blocks, B). grad_out and grad_guide are channels-last
    (B, H, W, O) / (B, H, W, m); grad_scales (B, m, O) and grad_bias (O,)
    are fp32 accumulators."""
    b, p, p_ok, h, w, logits, region = _block_regions(
        guide_ptr, HW, W, g_stride_b, g_stride_c, g_stride_h, g_stride_w,
        REGIONS, BLOCK_P, BLOCK_R)
    offs_r = tl.arange(0, BLOCK_R)
    r_ok = offs_r < REGIONS
    one_hot = ((region[:, None] == offs_r[None, :]) &
               p_ok[:, None]).to(tl.float32)
    scale_row = (b * REGIONS + region).to(tl.int64) * O
    table = scales_ptr + b * REGIONS * O
    pixel = b * HW + p  # row of the channels-last outputs
    dy_row = b * dy_stride_b + h * dy_stride_h + \
        w * dy_stride_w
    o_row = b * o_stride_b + h * o_stride_h + w * o_stride_w
    response = tl.zeros([BLOCK_P, BLOCK_R], dtype=tl.float32)
    for o0 in range(0, O, BLOCK_O):
        offs_o = o0 + tl.arange(0, BLOCK_O)
        o_ok = offs_o < O
        mask = p_ok[:, None] & o_ok[None, :]
        dy = tl.load(grad_y_ptr + dy_row[:, None] +
                     offs_o[None, :] * dy_stride_c, mask=mask,
                     other=0.).to(tl.float32)
        if NEED_OUT:
            scale = tl.load(scales_ptr + scale_row[:, None] + offs_o[None, :],
                            mask=mask, other=0.).to(tl.float32)
            tl.store(grad_out_ptr + pixel[:, None] * O + offs_o[None, :],
                     (dy * scale).to(grad_out_ptr.dtype.element_ty),
                     mask=mask)
        if NEED_SCALES or NEED_GUIDE:
            value = tl.load(out_ptr + o_row[:, None] +
                            offs_o[None, :] * o_stride_c, mask=mask,
                            other=0.).to(tl.float32)
            t = dy * value
            if NEED_SCALES:
                per_region = tl.dot(tl.trans(one_hot), t,
                                    input_precision='ieee')
                tl.atomic_add(grad_scales_ptr + b * REGIONS * O +
                              offs_r[:, None] * O + offs_o[None, :],
                              per_region, mask=r_ok[:, None] & o_ok[None, :],
                              sem='relaxed')
            if NEED_GUIDE:
                table_t = tl.load(table + offs_r[None, :] * O +
                                  offs_o[:, None],
                                  mask=o_ok[:, None] & r_ok[None, :],
                                  other=0.).to(tl.float32)
                response = tl.dot(t, table_t, response,
                                  input_precision='ieee')
        if NEED_BIAS:
            tl.atomic_add(grad_bias_ptr + offs_o, tl.sum(dy, axis=0),
                          mask=o_ok, sem='relaxed')
    if NEED_GUIDE:
        soft = tl.exp(logits - tl.max(logits, axis=1)[:, None])
        soft = soft / tl.sum(soft, axis=1)[:, None]
        mean = tl.sum(soft * response, axis=1)
        grad = soft * (response - mean[:, None])
        tl.store(grad_guide_ptr + pixel[:, None] * REGIONS + offs_r[None, :],
                 grad.to(grad_guide_ptr.dtype.element_ty),
                 mask=p_ok[:, None] & r_ok[None, :])


# (BLOCK_P, BLOCK_O, num_warps, num_stages): pixels x output channels.
_FORWARD_CONFIGS = tile_configs(('BLOCK_P', 'BLOCK_O'),
                                [(64, 64, 4, 1), (32, 128, 4, 1),
                                 (128, 32, 4, 1)])
_BACKWARD_CONFIGS = tile_configs(('BLOCK_P', 'BLOCK_O'),
                                 [(64, 64, 4, 2), (32, 128, 4, 2),
                                  (64, 128, 8, 2)])
_INTERPRET_TILES = dict(BLOCK_P=16, BLOCK_O=16)
_scale_forward = Kernel(region_scale_fwd_kernel, _FORWARD_CONFIGS,
                        ['O', 'REGIONS'], _INTERPRET_TILES)
_scale_backward = Kernel(region_scale_bwd_kernel, _BACKWARD_CONFIGS,
                         ['O', 'REGIONS'], _INTERPRET_TILES,
                         reset_to_zero=['grad_scales_ptr', 'grad_bias_ptr'])


def _region_block(regions: int) -> int:
    """Regions padded to a power of two of at least 16 (tl.dot's minimum)."""
    return max(16, triton.next_power_of_2(regions))


def _channels_last(shape, like: Tensor, dtype=None) -> Tensor:
    return torch.empty(shape, dtype=dtype or like.dtype, device=like.device,
                       memory_format=torch.channels_last)


def _backward(ctx, grad_y):
    """grad_out, grad_scales, grad_guide, grad_bias in one launch."""
    out, scales, guide = ctx.saved_tensors
    need_out, need_scales, need_guide, need_bias = ctx.needs_input_grad
    need_bias = need_bias and ctx.has_bias
    batch, channels, height, width = out.shape
    regions = scales.shape[1]
    grad_out = _channels_last(out.shape, out) if need_out else None
    grad_guide = _channels_last(guide.shape, guide) if need_guide \
        else None
    # fp32 accumulators, always allocated: the autotuner zeroes them.
    grad_scales = torch.zeros(scales.shape, dtype=torch.float32,
                              device=out.device)
    grad_bias = torch.zeros(channels, dtype=torch.float32,
                            device=out.device)
    if out.numel():
        _scale_backward[lambda meta: (
            triton.cdiv(height * width, meta['BLOCK_P']), batch)](
                grad_y, out, scales, guide,
                grad_out if need_out else grad_y, grad_scales,
                grad_guide if need_guide else grad_y, grad_bias,
                channels, height * width, width, regions,
                *grad_y.stride(), *out.stride(), *guide.stride(),
                NEED_OUT=need_out, NEED_SCALES=need_scales,
                NEED_GUIDE=need_guide, NEED_BIAS=need_bias,
                BLOCK_R=_region_block(regions))
    elif need_guide:
        grad_guide.zero_()
    return (grad_out, grad_scales.to(scales.dtype) if need_scales else
            None, grad_guide,
            grad_bias.to(out.dtype) if need_bias else None)


class TritonRegionScaleFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, out, scales, guide, bias):
        batch, channels, height, width = out.shape
        regions = scales.shape[1]
        scales = scales.contiguous()
        # channels-last, as the PyTorch path returns
        y = _channels_last(out.shape, out)
        if y.numel():
            _scale_forward[lambda meta: (
                triton.cdiv(height * width, meta['BLOCK_P']), batch,
                triton.cdiv(channels, meta['BLOCK_O']))](
                    out, scales, guide, bias if bias is not None else out, y,
                    channels, height * width, width, regions, *out.stride(),
                    *guide.stride(), *y.stride(), HAS_BIAS=bias is not None,
                    BLOCK_R=_region_block(regions))
        ctx.save_for_backward(out, scales, guide)
        ctx.has_bias = bias is not None
        return y

    backward = backward_on_device(_backward, region_scale_gradients)


def triton_region_scale(out: Tensor, scales: Tensor, guide: Tensor,
                        bias: Optional[Tensor]) -> Tensor:
    """``region_scale`` on the Triton kernels; inputs checked and cast by
    the caller."""
    with on_device_of(out):
        return TritonRegionScaleFunction.apply(out, scales, guide, bias)
