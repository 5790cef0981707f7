"""Region-aware convolution: one filter per output pixel, chosen by a guide.

``region_conv`` computes, for every output pixel, only the filter its region
selects, so the forward pass costs the multiply-adds of one standard
convolution. Pixels are sorted by (sample, region); each run of equal keys is
one dense GEMM between the gathered input patches and that region's filter.

Why it is built this way (measured on a 2-core AVX-512 CPU, torch 2.13):
- The GEMMs run as 1x1 convolutions on channels-last views of the row
  matrices: oneDNN does them about 2x faster than ``torch.mm`` (MKL).
- Patches are gathered chunk by chunk into one reused buffer with
  ``index_select(out=...)``: a fresh 90 MB im2col costs ~10x more in page
  faults than the copy itself. No tensor of size m x output and no full im2col
  matrix is ever materialised; the backward pass re-gathers the patches
  instead of saving them.
- Small problems (where per-run Python overhead would dominate) are padded to
  a (B*m, longest run, K) batch and done in one ``bmm``.
"""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .export_forms import apply_eager, is_exporting, region_conv_export

IntPair = Union[int, Tuple[int, int]]

# Elements of the reused patch buffer (16 MB in float32): bounds the
# transient memory of one chunk. Kept under glibc's 32 MB mmap ceiling so the
# buffer is recycled instead of page-faulted on every call.
CHUNK_ELEMENTS = 1 << 22


def _pair(value: IntPair, name: str) -> Tuple[int, int]:
    if isinstance(value, int):
        pair = (value, value)
    else:
        pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f'{name} must be an int or a pair, got {value!r}')
    return pair


def conv_output_size(size: int, kernel: int, stride: int, padding: int,
                     dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class _Geometry:
    """Shapes and index helpers shared by the forward and backward passes."""

    def __init__(self, x_shape, filter_shape, stride, padding, dilation,
                 groups):
        self.batch, self.channels, self.height, self.width = x_shape
        (_, self.regions, self.out_channels, self.group_channels, self.kh,
         self.kw) = filter_shape
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups = groups
        self.out_h = conv_output_size(self.height, self.kh, stride[0],
                                      padding[0], dilation[0])
        self.out_w = conv_output_size(self.width, self.kw, stride[1],
                                      padding[1], dilation[1])
        self.pixels = self.out_h * self.out_w
        self.rows = self.batch * self.pixels
        # Patch columns are ordered (kh, kw, C): channels last, contiguous.
        self.patch_size = self.kh * self.kw * self.channels
        self.padded_h = self.height + 2 * padding[0]
        self.padded_w = self.width + 2 * padding[1]
        # Offset of every kernel tap in the flattened padded NHWC input.
        self.tap_offsets = [
            dy * dilation[0] * self.padded_w + dx * dilation[1]
            for dy in range(self.kh) for dx in range(self.kw)
        ]

    def padded_rows(self, x: Tensor) -> Tensor:
        """Zero-padded input as channels-last rows, (B*Hp*Wp, C)."""
        x = x.permute(0, 2, 3, 1)
        ph, pw = self.padding
        if ph or pw:
            x = F.pad(x, (0, 0, pw, pw, ph, ph))
        return x.contiguous().view(-1, self.channels)

    def patch_origins(self, pix: Tensor) -> Tensor:
        """Row of each output pixel's top-left tap in ``padded_rows``."""
        b = torch.div(pix, self.pixels, rounding_mode='floor')
        rem = pix - b * self.pixels
        iy = torch.div(rem, self.out_w, rounding_mode='floor')
        ix = rem - iy * self.out_w
        return (b * self.padded_h + iy * self.stride[0]) * self.padded_w + \
            ix * self.stride[1]

    def tap_rows(self, pix: Tensor) -> Tensor:
        """(n * kh * kw,) rows of ``padded_rows`` forming pixels' patches."""
        offsets = torch.tensor(self.tap_offsets, device=pix.device)
        return (self.patch_origins(pix)[:, None] + offsets).view(-1)

    def gather_patches(self, x_rows: Tensor, pix: Tensor,
                       buffer: Optional[Tensor] = None) -> Tensor:
        """(n, kh*kw*C) patches of pixels ``pix``, into ``buffer`` if given."""
        n = pix.numel()
        if buffer is None:
            buffer = x_rows.new_empty(n * self.patch_size)
        out = buffer[:n * self.patch_size].view(n * self.kh * self.kw,
                                                self.channels)
        torch.index_select(x_rows, 0, self.tap_rows(pix), out=out)
        return out.view(n, self.patch_size)

    def scatter_patches(self, grad_rows: Tensor, grad_patch: Tensor,
                        pix: Tensor) -> None:
        """col2im for gathered rows: add patch gradients back to the input."""
        taps = self.kh * self.kw
        origins = self.patch_origins(pix)
        grad_patch = grad_patch.view(-1, taps, self.channels)
        for tap, offset in enumerate(self.tap_offsets):
            grad_rows.index_add_(0, origins + offset, grad_patch[:, tap])


# Row-matrix products. With groups == 1 they run as 1x1 convolutions over a
# channels-last (1, K, n, 1) view of the rows, which oneDNN does ~2x faster
# than torch.mm; float64 falls back to PyTorch's own kernels.
def _rows_as_image(rows: Tensor) -> Tensor:
    n, k = rows.shape
    return rows.view(1, n, 1, k).permute(0, 3, 1, 2)


def _image_as_rows(image: Tensor) -> Tensor:
    return image.permute(0, 2, 3, 1).reshape(image.shape[2], image.shape[1])


def _apply_filter(patch: Tensor, weight: Tensor, geom: _Geometry) -> Tensor:
    """patch (n, kh*kw*C) x weight (O, kh*kw*C/g) -> (n, O)."""
    if geom.groups == 1:
        out = F.conv2d(_rows_as_image(patch), weight[:, :, None, None])
        return _image_as_rows(out)
    g, n = geom.groups, patch.shape[0]
    p = patch.view(n, geom.kh * geom.kw, g, geom.group_channels)
    w = weight.view(g, -1, geom.kh * geom.kw, geom.group_channels)
    return torch.einsum('nkgc,gokc->ngo', p, w).reshape(n, weight.shape[0])


def _filter_input_grad(grad_out: Tensor, weight: Tensor,
                       geom: _Geometry) -> Tensor:
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
                        geom: _Geometry) -> Tensor:
    """grad wrt weight of _apply_filter: -> (O, K/g)."""
    if geom.groups == 1:
        return grad_out.t() @ patch
    g, n = geom.groups, patch.shape[0]
    go = grad_out.view(n, g, geom.out_channels // g)
    p = patch.view(n, geom.kh * geom.kw, g, geom.group_channels)
    return torch.einsum('ngo,nkgc->gokc', go, p).reshape(
        geom.out_channels, -1)


def _matrix_filters(filters: Tensor, geom: _Geometry) -> Tensor:
    """(B, m, O, C/g, kh, kw) -> (B, m, O, kh*kw*C/g), patch column order.

    Free when the filters already live in (kh, kw, C/g) memory order, as the
    DRConv generators produce them.
    """
    b, m = filters.shape[:2]
    return filters.permute(0, 1, 2, 4, 5, 3).reshape(
        b, m, geom.out_channels, geom.kh * geom.kw * geom.group_channels)


def _stack_regions(weights: Tensor, geom: _Geometry) -> Tensor:
    """(B, m, O, K/g) -> (B, g*m*O/g, K/g): one filter bank, group-major."""
    b, m, g = weights.shape[0], geom.regions, geom.groups
    k = weights.shape[-1]
    w = weights.view(b, m, g, geom.out_channels // g, k).transpose(1, 2)
    return w.reshape(b, m * geom.out_channels, k)


def _all_region_response(patch: Tensor, grad_out: Tensor, stacked: Tensor,
                         geom: _Geometry) -> Tensor:
    """a_j = <grad_out, (filter_j * patch)> for every region j: (n, m)."""
    n, g, m = patch.shape[0], geom.groups, geom.regions
    resp = _apply_filter(patch, stacked, geom)
    return torch.einsum('ngmo,ngo->nm',
                        resp.view(n, g, m, geom.out_channels // g),
                        grad_out.view(n, g, geom.out_channels // g))


def _segments(counts: List[int], regions: int, chunk_rows: int):
    """Yield (start, end, [(piece_start, piece_end, sample, region), ...]).

    Sorted rows are cut into chunks of at most ``chunk_rows``; each chunk lists
    the pieces of (sample, region) runs that fall inside it.
    """
    pieces = []
    start = 0
    for key, count in enumerate(counts):
        offset = start
        while offset < start + count:
            end = min(start + count, offset + chunk_rows)
            pieces.append((offset, end, key // regions, key % regions))
            offset = end
        start += count
    chunk: list = []
    chunk_start = 0
    for piece in pieces:
        if chunk and piece[1] - chunk_start > chunk_rows:
            yield chunk_start, chunk[-1][1], chunk
            chunk, chunk_start = [], piece[0]
        chunk.append(piece)
    if chunk:
        yield chunk_start, chunk[-1][1], chunk


class _Plan:
    """How the sorted pixels are laid out for the GEMMs of one call.

    Large problems walk the (sample, region) runs in bounded chunks, one GEMM
    per run. Small ones are padded to a (B*m, longest run, K) batch and done
    in one bmm.
    """

    def __init__(self, guide: Tensor, geom: _Geometry):
        regions = geom.regions
        # torch.max(dim) returns the first maximal index: the lowest region
        # on ties, like argmax, and is ~20x faster for a non-inner dimension.
        region = guide.max(dim=1).indices
        base = torch.arange(geom.batch, device=guide.device).view(-1, 1, 1)
        key = (region + base * regions).reshape(-1)
        # A stable sort keeps raster order inside each run.
        self.order = torch.argsort(key, stable=True)
        counts = torch.bincount(key, minlength=geom.batch * regions)
        self.longest = int(counts.max()) if geom.rows else 0
        padded_rows = geom.batch * regions * self.longest
        width = max(geom.patch_size, regions * geom.out_channels)
        self.padded = (geom.groups == 1 and geom.rows > 0
                       and padded_rows * width <= CHUNK_ELEMENTS
                       and padded_rows <= 4 * geom.rows)
        if self.padded:
            starts = torch.cumsum(counts, 0) - counts
            sorted_key = key[self.order]
            position = torch.arange(geom.rows, device=key.device) - \
                starts[sorted_key]
            # Row of every sorted pixel in the padded (B*m*longest) layout.
            self.slot = sorted_key * self.longest + position
            self.counts = None
        else:
            self.slot = None
            self.counts = counts.tolist()

    def pad(self, rows: Tensor, geom: _Geometry) -> Tensor:
        """(N, W) sorted rows -> (B*m, longest, W), zeros where unused."""
        padded = rows.new_zeros(geom.batch * geom.regions * self.longest,
                                rows.shape[1])
        padded.index_copy_(0, self.slot, rows)
        return padded.view(geom.batch * geom.regions, self.longest, -1)

    def unpad(self, padded: Tensor) -> Tensor:
        return padded.reshape(-1, padded.shape[-1]).index_select(0, self.slot)

    def chunks(self, geom: _Geometry, width: int):
        """Chunks of the chunked plan, each with a slice of one reused buffer.
        """
        chunk_rows = max(1, CHUNK_ELEMENTS // max(width, 1))
        return _segments(self.counts, geom.regions, chunk_rows), \
            min(chunk_rows, geom.rows)


class RegionConvFunction(torch.autograd.Function):
    """Autograd op of ``region_conv``; the guide gets the softmax surrogate."""

    @staticmethod
    def forward(ctx, x, filters, guide, bias, stride, padding, dilation,
                groups):
        geom = _Geometry(x.shape, filters.shape, stride, padding, dilation,
                         groups)
        plan = _Plan(guide, geom)
        weights = _matrix_filters(filters, geom)
        x_rows = geom.padded_rows(x)
        out = x.new_empty(geom.rows, geom.out_channels)
        if plan.padded:
            patch = plan.pad(geom.gather_patches(x_rows, plan.order), geom)
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
        return _like_input(y, x)

    @staticmethod
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
        weights = _matrix_filters(filters, geom)
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
            grad_x = _like_input(grad_x.permute(0, 3, 1, 2), x)
        if need_w:
            grad_filters = grad_w.view(
                geom.batch, geom.regions, geom.out_channels, geom.kh,
                geom.kw, geom.group_channels).permute(0, 1, 2, 5, 3, 4)
        if need_g:
            grad_guide = _guide_gradient(guide, response, plan.order, geom)
        if need_b and ctx.has_bias:
            grad_bias = grad_rows.sum(0)
        return grad_x, grad_filters, grad_guide, grad_bias, None, None, \
            None, None


def _like_input(y: Tensor, x: Tensor) -> Tensor:
    """Follow nn.Conv2d: channels_last in, channels_last out."""
    if x.is_contiguous(memory_format=torch.channels_last) and \
            not x.is_contiguous():
        return y.contiguous(memory_format=torch.channels_last)
    return y.contiguous()


def _guide_gradient(guide: Tensor, response: Tensor, order: Tensor,
                    geom: _Geometry) -> Tensor:
    """Softmax surrogate: s_j (a_j - sum_i s_i a_i), from sorted a (N, m)."""
    a = torch.empty_like(response)
    a[order] = response
    soft = guide.permute(0, 2, 3, 1).reshape(geom.rows, geom.regions)
    soft = torch.softmax(soft.to(a.dtype), dim=1)
    grad = soft * (a - (soft * a).sum(dim=1, keepdim=True))
    grad = grad.view(geom.batch, geom.out_h, geom.out_w, geom.regions)
    return grad.permute(0, 3, 1, 2).to(guide.dtype)


def _padded_backward(plan, geom, x_rows, grad_rows, weights, grad_x_rows,
                     need_w, need_g):
    m = geom.regions
    patch = plan.pad(geom.gather_patches(x_rows, plan.order), geom)
    grad_out = plan.pad(grad_rows.index_select(0, plan.order), geom)
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


def _check_inputs(x: Tensor, filters: Tensor, guide: Tensor,
                  bias: Optional[Tensor], groups: int) -> None:
    if x.dim() != 4:
        raise ValueError('region_conv expects x of shape (B, C, H, W), got '
                         f'{tuple(x.shape)}')
    if filters.dim() != 6:
        raise ValueError('region_conv expects filters of shape '
                         f'(B, m, O, C // groups, kh, kw), got '
                         f'{tuple(filters.shape)}')
    if guide.dim() != 4:
        raise ValueError('region_conv expects guide of shape '
                         f'(B, m, H_out, W_out), got {tuple(guide.shape)}')
    batch, channels = x.shape[:2]
    f_batch, regions, out_channels, group_channels = filters.shape[:4]
    if groups < 1 or channels % groups or out_channels % groups:
        raise ValueError(f'groups={groups} must divide the input channels '
                         f'({channels}) and output channels ({out_channels})')
    if group_channels * groups != channels:
        raise ValueError(
            f'filters expect {group_channels * groups} input channels '
            f'(C // groups = {group_channels}, groups={groups}) but x has '
            f'{channels}')
    if f_batch != batch or guide.shape[0] != batch:
        raise ValueError(f'batch sizes differ: x {batch}, filters {f_batch}, '
                         f'guide {guide.shape[0]}')
    if guide.shape[1] != regions:
        raise ValueError(f'guide has {guide.shape[1]} channels but filters '
                         f'hold {regions} regions')
    if regions < 1:
        raise ValueError('filters must hold at least one region')
    if bias is not None and tuple(bias.shape) != (out_channels, ):
        raise ValueError(f'bias must have shape ({out_channels},), got '
                         f'{tuple(bias.shape)}')


def region_conv(x: Tensor,
                filters: Tensor,
                guide: Tensor,
                bias: Optional[Tensor] = None,
                stride: IntPair = 1,
                padding: IntPair = 0,
                dilation: IntPair = 1,
                groups: int = 1) -> Tensor:
    """Convolve each output pixel with the filter of its guide-chosen region.

    Args:
        x: input, (B, C, H, W).
        filters: per-sample region filters, (B, m, O, C // groups, kh, kw).
        guide: guide logits, (B, m, H_out, W_out); the region of a pixel is
            their argmax (lowest index on ties). Its gradient is the softmax
            surrogate of DRConv.
        bias: optional (O,) bias.

    Returns:
        (B, O, H_out, W_out), channels-last if ``x`` is.
    """
    _check_inputs(x, filters, guide, bias, groups)
    stride, padding = _pair(stride, 'stride'), _pair(padding, 'padding')
    dilation = _pair(dilation, 'dilation')
    kh, kw = filters.shape[-2:]
    out_hw = tuple(
        conv_output_size(size, k, s, p, d) for size, k, s, p, d in zip(
            x.shape[2:], (kh, kw), stride, padding, dilation))
    if min(out_hw) < 1:
        raise ValueError(f'input of size {tuple(x.shape[2:])} is too small '
                         f'for kernel {(kh, kw)} with padding {padding} and '
                         f'dilation {dilation}')
    if tuple(guide.shape[2:]) != out_hw:
        raise ValueError(f'guide spatial size {tuple(guide.shape[2:])} does '
                         f'not match the output size {out_hw}')
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        # Autocast runs convolutions in its lower precision; so do we.
        dtype = torch.get_autocast_dtype(device_type)
    else:
        dtype = torch.promote_types(x.dtype, filters.dtype)
    x, filters = x.to(dtype), filters.to(dtype)
    bias = bias.to(dtype) if bias is not None else None
    # --- export dispatch (issue 12): torch.export / torch.onnx.export cannot
    # trace the sorted-run Function; use the all-regions form of the same math.
    if is_exporting():
        return region_conv_export(x, filters, guide, bias, stride, padding,
                                  dilation, groups)
    # --- end export dispatch
    with torch.autocast(device_type, enabled=False):
        return apply_eager(RegionConvFunction, x, filters, guide, bias,
                           stride, padding, dilation, groups)
