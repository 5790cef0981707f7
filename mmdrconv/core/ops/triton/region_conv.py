"""``region_conv`` on Triton kernels (groups == 1), with its backward.

Forward: one implicit-GEMM launch over the (sample, region) tiles. Backward:
the input gradient (selected filter transposed, patch gradients added back
with atomics: no im2col buffer), the filter gradients (a grouped GEMM over
the runs, split along long runs) and every region's response for the
guide's softmax surrogate (dot product with dy fused into the GEMM, so only
an (N, m) table is stored). Four launches in all, none per run.
"""
from typing import Optional, Tuple

import torch
import triton
from torch import Tensor

from ..geometry import ConvGeometry, output_memory_format
from ..layout import filter_rows
from ..regions import surrogate_guide_grad
from ..double_backward import region_conv_gradients
from .conv_kernels import (region_conv_dw_kernel, region_conv_dx_kernel,
                           region_conv_fwd_kernel,
                           region_conv_response_kernel)
from .launch import (GEMM_CONFIGS, INTERPRET_GEMM_TILES, TILE_ROWS, Kernel,
                     backward_on_device, dot_precision, on_device_of,
                     upcast_operands)
from .tiles import RegionTiles

_KEY = ['C', 'O', 'TAPS']
_forward = Kernel(region_conv_fwd_kernel, GEMM_CONFIGS, _KEY,
                  INTERPRET_GEMM_TILES)
_input_grad = Kernel(region_conv_dx_kernel, GEMM_CONFIGS, _KEY,
                     INTERPRET_GEMM_TILES, reset_to_zero=['dx_ptr'])
_filter_grad = Kernel(region_conv_dw_kernel, GEMM_CONFIGS, _KEY,
                      INTERPRET_GEMM_TILES, reset_to_zero=['dw_ptr'])
_response = Kernel(region_conv_response_kernel, GEMM_CONFIGS, _KEY,
                   INTERPRET_GEMM_TILES)

# The filter-gradient GEMM reduces over a whole run: split runs into pieces
# of at most this many tile heights (fewer atomic adds per piece), aiming at
# ~64 pieces per call so the GPU still gets enough programs.
_MAX_SPLIT_TILES = 32
_TARGET_SPLITS = 64


class _Conv(ConvGeometry):
    """The call's geometry plus the kernel arguments of the four launches."""

    @classmethod
    def launch(cls, x: Tensor, filters: Tensor, stride, padding,
               dilation) -> '_Conv':
        conv = cls.of(x.shape, filters.shape, stride, padding, dilation)
        conv.meta = dict(PRECISION=dot_precision(x.dtype),
                         UPCAST=upcast_operands(x.dtype))
        return conv

    def shape_args(self) -> tuple:
        return (self.channels, self.height, self.width, self.out_channels,
                self.out_h, self.out_w, self.kw, self.taps, *self.stride,
                *self.padding, *self.dilation)

    def output(self, x: Tensor) -> Tensor:
        """Empty (B, O, H', W') in the memory format of a conv's output."""
        return torch.empty(self.batch, self.out_channels, self.out_h,
                           self.out_w, dtype=x.dtype, device=x.device,
                           memory_format=output_memory_format(x))


def _nhwc(x: Tensor) -> Tensor:
    return x.permute(0, 2, 3, 1).contiguous()


def _weight_rows(filters: Tensor) -> Tensor:
    """(B*m, O, kh*kw*C) contiguous, as the kernels read the filters."""
    return filter_rows(filters).flatten(0, 1).contiguous()


def _backward(ctx, grad_y):
    """The four gradients, each by its own kernel where needed."""
    x, filters, guide = ctx.saved_tensors
    conv, layout = ctx.conv, ctx.layout
    need_x, need_w, need_g, need_b = ctx.needs_input_grad[:4]
    grad_x = grad_filters = grad_guide = grad_bias = None
    if need_b and ctx.has_bias:
        grad_bias = grad_y.sum((0, 2, 3))
    if conv.rows == 0:  # empty batch: every gradient is zero
        zeros = [
            torch.zeros_like(t) if need else None
            for t, need in ((x, need_x), (filters, need_w),
                            (guide, need_g))
        ]
        return (*zeros, grad_bias, None, None, None)
    x_rows = _nhwc(x) if need_w or need_g else None
    weights = _weight_rows(filters) if need_x or need_g else None
    tiles = layout.tiles(TILE_ROWS)
    shape = conv.shape_args()
    dy = (grad_y, *grad_y.stride())
    if need_x:
        grad_x = _input_gradient(conv, weights, layout, tiles, shape, dy)
        grad_x = grad_x.permute(0, 3, 1, 2).to(
            x.dtype, memory_format=output_memory_format(x))
    if need_w:
        grad_filters = _filter_gradient(conv, x_rows, layout, shape, dy)
        grad_filters = grad_filters.view(
            *filters.shape[:3], conv.kh, conv.kw,
            conv.channels).permute(0, 1, 2, 5, 3, 4).to(filters.dtype)
    if need_g:
        response = x.new_empty(conv.rows, conv.regions,
                               dtype=torch.float32)
        _response[lambda meta: (tiles[0].numel(), conv.regions)](
            x_rows, weights, grad_y, response, layout.order, *tiles,
            *shape, *dy[1:], conv.regions, BLOCK_M=TILE_ROWS,
            **conv.meta)
        grad_guide = surrogate_guide_grad(guide, response)
    return grad_x, grad_filters, grad_guide, grad_bias, None, None, None


class TritonRegionConvFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, filters, guide, bias, stride, padding, dilation):
        conv = _Conv.launch(x, filters, stride, padding, dilation)
        y = conv.output(x)
        layout = RegionTiles(guide)
        if conv.rows:
            tiles = layout.tiles(TILE_ROWS)
            _forward[lambda meta: (
                tiles[0].numel(),
                triton.cdiv(conv.out_channels, meta['BLOCK_N']))](
                    _nhwc(x), _weight_rows(filters),
                    bias if bias is not None else y, y, layout.order, *tiles,
                    *conv.shape_args(), *y.stride(),
                    HAS_BIAS=bias is not None, BLOCK_M=TILE_ROWS,
                    **conv.meta)
        ctx.save_for_backward(x, filters, guide)
        ctx.conv, ctx.layout, ctx.has_bias = conv, layout, bias is not None
        ctx.conv_args = (stride, padding, dilation, 1)
        return y

    backward = backward_on_device(_backward, region_conv_gradients)


def _input_gradient(conv: _Conv, weights: Tensor, layout: RegionTiles,
                    tiles, shape, dy) -> Tensor:
    """dx as an fp32 (B, H, W, C) tensor."""
    dx = torch.zeros(conv.batch, conv.height, conv.width, conv.channels,
                     dtype=torch.float32, device=weights.device)
    _input_grad[lambda meta: (tiles[0].numel(),
                              triton.cdiv(conv.channels, meta['BLOCK_K']))](
        dy[0], weights, dx, layout.order, *tiles, *shape, *dy[1:],
        ATOMIC=conv.patches_overlap, BLOCK_M=TILE_ROWS, **conv.meta)
    return dx


def _filter_gradient(conv: _Conv, x_rows: Tensor, layout: RegionTiles,
                     shape, dy) -> Tensor:
    """dW as an fp32 (B*m, O, kh*kw*C) tensor."""
    dw = torch.zeros(conv.batch * conv.regions, conv.out_channels,
                     conv.patch_size, dtype=torch.float32,
                     device=x_rows.device)
    split = TILE_ROWS * max(1, min(_MAX_SPLIT_TILES, conv.rows //
                                   (TILE_ROWS * _TARGET_SPLITS)))
    splits = layout.tiles(split)
    _filter_grad[lambda meta: (
        splits[0].numel(), triton.cdiv(conv.out_channels, meta['BLOCK_N']),
        conv.taps * triton.cdiv(conv.channels, meta['BLOCK_K']))](
            x_rows, dy[0], dw, layout.order, *splits, *shape, *dy[1:],
            BLOCK_M=TILE_ROWS, **conv.meta)
    return dw


def triton_region_conv(x: Tensor, filters: Tensor, guide: Tensor,
                       bias: Optional[Tensor], stride: Tuple[int, int],
                       padding: Tuple[int, int],
                       dilation: Tuple[int, int]) -> Tensor:
    """``region_conv`` (groups == 1) on the Triton kernels; inputs checked
    and cast to one dtype by the caller."""
    with on_device_of(x):
        return TritonRegionConvFunction.apply(x, filters, guide, bias,
                                              stride, padding, dilation)
