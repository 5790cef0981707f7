"""Triton kernels of the region-aware convolution.

All four are implicit GEMMs over the tiles of ``tiles.RegionTiles``: a tile
holds up to ``BLOCK_M`` pixels of one (sample, region) run, so one filter
serves the whole tile. Pixels are gathered through the sorted ``order``; a
pixel's k x k x C patch is read straight from the NHWC input, tap by tap,
with zero padding by masks (no im2col tensor). The reduction dimension runs
over (tap, channel block) in one flat loop so that it pipelines across taps.

Layouts: x is NHWC (B, H, W, C) contiguous; filters are (B*m, O, taps, C)
contiguous (``taps = kh * kw``), so a filter row is a patch in the same
(tap, channel) order; y / dy are addressed through their (b, o, h, w)
strides, so NCHW and channels-last both work without copies. Offsets are
int64 wherever they scale with the batch (pixel indices are int64).
"""
import triton
import triton.language as tl

# Shape arguments that change between layers but not the generated code:
# not specialised, so a new layer shape reuses the compiled kernel.
_SHAPE_ARGS = ['H', 'W', 'OH', 'OW', 'KW', 'TAPS', 'stride_h', 'stride_w',
               'pad_h', 'pad_w', 'dil_h', 'dil_w']
# Tensor strides: specialised only on being 1 (the contiguous dimension),
# not on divisibility, which would compile a variant per layer shape.
_STRIDES = ['y_stride_b', 'y_stride_o', 'y_stride_h', 'y_stride_w',
            'dy_stride_b', 'dy_stride_o', 'dy_stride_h', 'dy_stride_w']
_JIT = dict(do_not_specialize=_SHAPE_ARGS,
            do_not_specialize_on_alignment=_STRIDES)


@triton.jit
def _mma(a, b, acc, PRECISION: tl.constexpr, UPCAST: tl.constexpr):
    if UPCAST:
        a = a.to(tl.float32)
        b = b.to(tl.float32)
    return tl.dot(a, b, acc, input_precision=PRECISION)


@triton.jit
def _tile_pixels(order_ptr, start, stop, OH, OW, BLOCK_M: tl.constexpr):
    """Rows [start, stop) of the sorted order: mask, pixel, (b, oy, ox)."""
    rows = start + tl.arange(0, BLOCK_M)
    row_ok = rows < stop
    pix = tl.load(order_ptr + rows, mask=row_ok, other=0)
    per_sample = OH * OW
    b = pix // per_sample
    rem = pix - b * per_sample
    oy = rem // OW
    ox = rem - oy * OW
    return row_ok, pix, b, oy, ox


@triton.jit
def _tile(tile, tile_key_ptr, tile_start_ptr, tile_stop_ptr, order_ptr, OH,
          OW, BLOCK_M: tl.constexpr):
    """Key and pixels of entry ``tile`` of a tile list; key < 0 (no rows)
    past the last tile."""
    key = tl.load(tile_key_ptr + tile)
    stop = tl.where(key < 0, 0, tl.load(tile_stop_ptr + tile))
    row_ok, pix, b, oy, ox = _tile_pixels(order_ptr,
                                          tl.load(tile_start_ptr + tile),
                                          stop, OH, OW, BLOCK_M)
    return key, row_ok, pix, b, oy, ox


@triton.jit
def _tap_rows(b, oy, ox, row_ok, tap, H, W, KW, stride_h, stride_w, pad_h,
              pad_w, dil_h, dil_w):
    """Input row (b * H + iy) * W + ix of each pixel's ``tap``, and whether
    it lies inside the image (outside it the padding reads zero)."""
    ty = tap // KW
    tx = tap - ty * KW
    iy = oy * stride_h - pad_h + ty * dil_h
    ix = ox * stride_w - pad_w + tx * dil_w
    inside = row_ok & (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
    return (b * H + iy) * W + ix, inside


@triton.jit
def _load_patch(x_ptr, b, oy, ox, row_ok, kk, C, H, W, KW, stride_h,
                stride_w, pad_h, pad_w, dil_h, dil_w,
                BLOCK_K: tl.constexpr):
    """Step ``kk`` of the flat (tap, channel block) loop: the
    [BLOCK_M, BLOCK_K] patch slice, its tap and its channels."""
    blocks = tl.cdiv(C, BLOCK_K)
    tap = kk // blocks
    offs_c = (kk - tap * blocks) * BLOCK_K + tl.arange(0, BLOCK_K)
    in_row, inside = _tap_rows(b, oy, ox, row_ok, tap, H, W, KW, stride_h,
                               stride_w, pad_h, pad_w, dil_h, dil_w)
    a = tl.load(x_ptr + in_row[:, None] * C + offs_c[None, :],
                mask=inside[:, None] & (offs_c < C)[None, :], other=0.)
    return a, tap, offs_c


@triton.jit
def _patch_times_filter(x_ptr, w_rows, n_ok, b, oy, ox, row_ok, C, H, W, KW,
                        TAPS, stride_h, stride_w, pad_h, pad_w, dil_h,
                        dil_w, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                        BLOCK_K: tl.constexpr):
    """[BLOCK_M, BLOCK_N] fp32 products of the tile's patches with filter
    rows ``w_rows`` (pointers to the rows' starts, (tap, channel) order)."""
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for kk in range(0, TAPS * tl.cdiv(C, BLOCK_K)):
        a, tap, offs_c = _load_patch(x_ptr, b, oy, ox, row_ok, kk, C, H, W,
                                     KW, stride_h, stride_w, pad_h, pad_w,
                                     dil_h, dil_w, BLOCK_K)
        w = tl.load(w_rows[None, :] + (tap * C + offs_c)[:, None],
                    mask=(offs_c < C)[:, None] & n_ok[None, :], other=0.)
        acc = _mma(a, w, acc, PRECISION, UPCAST)
    return acc


@triton.jit(**_JIT)
def region_conv_fwd_kernel(
        x_ptr, w_ptr, bias_ptr, y_ptr, order_ptr, tile_key_ptr,
        tile_start_ptr, tile_stop_ptr, C, H, W, O, OH, OW, KW, TAPS,
        stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, y_stride_b,
        y_stride_o, y_stride_h, y_stride_w, HAS_BIAS: tl.constexpr,
        PRECISION: tl.constexpr, UPCAST: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr):
    """y[p] = W[key] . patch(p) (+ bias) for the pixels of one tile.
    Grid: (tiles, output-channel blocks)."""
    key, row_ok, pix, b, oy, ox = _tile(tl.program_id(0), tile_key_ptr,
                                        tile_start_ptr, tile_stop_ptr,
                                        order_ptr, OH, OW, BLOCK_M)
    if key < 0:  # past the last tile
        return
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    n_ok = offs_n < O
    patch_size = TAPS * C
    w_rows = w_ptr + key.to(tl.int64) * O * patch_size + \
        offs_n.to(tl.int64) * patch_size
    acc = _patch_times_filter(x_ptr, w_rows, n_ok, b, oy, ox, row_ok, C, H,
                              W, KW, TAPS, stride_h, stride_w, pad_h, pad_w,
                              dil_h, dil_w, PRECISION, UPCAST, BLOCK_M,
                              BLOCK_N, BLOCK_K)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_n, mask=n_ok, other=0.)
        acc += bias.to(tl.float32)[None, :]
    y_row = b * y_stride_b + oy * y_stride_h + ox * y_stride_w
    tl.store(y_ptr + y_row[:, None] + offs_n[None, :] * y_stride_o,
             acc.to(y_ptr.dtype.element_ty),
             mask=row_ok[:, None] & n_ok[None, :])


@triton.jit(**_JIT)
def region_conv_dx_kernel(
        dy_ptr, w_ptr, dx_ptr, order_ptr, tile_key_ptr, tile_start_ptr,
        tile_stop_ptr, C, H, W, O, OH, OW, KW, TAPS, stride_h, stride_w,
        pad_h, pad_w, dil_h, dil_w, dy_stride_b, dy_stride_o, dy_stride_h,
        dy_stride_w, ATOMIC: tl.constexpr, PRECISION: tl.constexpr,
        UPCAST: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr):
    """dx[tap(p)] += dy[p] . W[key][:, tap] for every tap of every pixel of
    one tile, into an fp32 NHWC buffer. Patches overlap (kernel larger than
    the stride), so the adds are atomic; with ``ATOMIC`` off (each input
    pixel is read by at most one (pixel, tap)) they are plain stores.
    Grid: (tiles, input-channel blocks)."""
    key, row_ok, pix, b, oy, ox = _tile(tl.program_id(0), tile_key_ptr,
                                        tile_start_ptr, tile_stop_ptr,
                                        order_ptr, OH, OW, BLOCK_M)
    if key < 0:  # past the last tile
        return
    offs_c = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)
    c_ok = offs_c < C
    patch_size = TAPS * C
    w_key = w_ptr + key.to(tl.int64) * O * patch_size
    dy_row = dy_ptr + b * dy_stride_b + oy * dy_stride_h + ox * dy_stride_w
    for tap in range(0, TAPS):
        acc = tl.zeros([BLOCK_M, BLOCK_K], dtype=tl.float32)
        for o0 in range(0, O, BLOCK_N):
            offs_o = o0 + tl.arange(0, BLOCK_N)
            o_ok = offs_o < O
            g = tl.load(dy_row[:, None] + offs_o[None, :] * dy_stride_o,
                        mask=row_ok[:, None] & o_ok[None, :], other=0.)
            w = tl.load(w_key + offs_o.to(tl.int64)[:, None] * patch_size +
                        (tap * C + offs_c)[None, :],
                        mask=o_ok[:, None] & c_ok[None, :], other=0.)
            acc = _mma(g, w, acc, PRECISION, UPCAST)
        in_row, inside = _tap_rows(b, oy, ox, row_ok, tap, H, W, KW,
                                   stride_h, stride_w, pad_h, pad_w, dil_h,
                                   dil_w)
        ptrs = dx_ptr + in_row[:, None] * C + offs_c[None, :]
        mask = inside[:, None] & c_ok[None, :]
        if ATOMIC:
            tl.atomic_add(ptrs, acc, mask=mask, sem='relaxed')
        else:
            tl.store(ptrs, acc, mask=mask)


@triton.jit(**_JIT)
def region_conv_dw_kernel(
        x_ptr, dy_ptr, dw_ptr, order_ptr, tile_key_ptr, tile_start_ptr,
        tile_stop_ptr, C, H, W, O, OH, OW, KW, TAPS, stride_h, stride_w,
        pad_h, pad_w, dil_h, dil_w, dy_stride_b, dy_stride_o, dy_stride_h,
        dy_stride_w, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr):
    """dW[key][o, (tap, c)] += sum_p dy[p, o] patch(p)[tap, c]: one grouped
    GEMM over the runs. A tile here is a longer split of one run, walked
    ``BLOCK_M`` rows at a time; splits of the same run add atomically into
    the fp32 buffer. Grid: (splits, output-channel blocks,
    taps * input-channel blocks)."""
    tile = tl.program_id(0)
    key = tl.load(tile_key_ptr + tile)
    if key < 0:
        return
    start = tl.load(tile_start_ptr + tile)
    stop = tl.load(tile_stop_ptr + tile)
    offs_o = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    o_ok = offs_o < O
    kk = tl.program_id(2)
    acc = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.float32)
    for row0 in range(start, stop, BLOCK_M):
        row_ok, pix, b, oy, ox = _tile_pixels(order_ptr, row0, stop, OH, OW,
                                              BLOCK_M)
        a, tap, offs_c = _load_patch(x_ptr, b, oy, ox, row_ok, kk, C, H, W,
                                     KW, stride_h, stride_w, pad_h, pad_w,
                                     dil_h, dil_w, BLOCK_K)
        dy_row = b * dy_stride_b + oy * dy_stride_h + ox * dy_stride_w
        g = tl.load(dy_ptr + dy_row[None, :] + offs_o[:, None] * dy_stride_o,
                    mask=o_ok[:, None] & row_ok[None, :], other=0.)
        acc = _mma(g, a, acc, PRECISION, UPCAST)
    blocks = tl.cdiv(C, BLOCK_K)
    tap = kk // blocks
    offs_c = (kk - tap * blocks) * BLOCK_K + tl.arange(0, BLOCK_K)
    patch_size = TAPS * C
    ptrs = dw_ptr + key.to(tl.int64) * O * patch_size + \
        offs_o.to(tl.int64)[:, None] * patch_size + (tap * C + offs_c)[None, :]
    tl.atomic_add(ptrs, acc, mask=o_ok[:, None] & (offs_c < C)[None, :],
                  sem='relaxed')


@triton.jit(**_JIT)
def region_conv_response_kernel(
        x_ptr, w_ptr, dy_ptr, resp_ptr, order_ptr, tile_key_ptr,
        tile_start_ptr, tile_stop_ptr, C, H, W, O, OH, OW, KW, TAPS,
        stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, dy_stride_b,
        dy_stride_o, dy_stride_h, dy_stride_w, REGIONS,
        PRECISION: tl.constexpr, UPCAST: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr):
    """a_j(p) = <dy[p], W[b, j] . patch(p)> for region j = program_id(1):
    the response of every region, as the guide's surrogate gradient needs.
    The dot product with dy is the GEMM's epilogue, per output-channel
    block, so nothing of size m x output is stored: only a (N, m) table.
    Grid: (tiles, m)."""
    key, row_ok, pix, b, oy, ox = _tile(tl.program_id(0), tile_key_ptr,
                                        tile_start_ptr, tile_stop_ptr,
                                        order_ptr, OH, OW, BLOCK_M)
    if key < 0:  # past the last tile
        return
    region = tl.program_id(1)
    patch_size = TAPS * C
    w_region = w_ptr + ((key // REGIONS) * REGIONS + region).to(
        tl.int64) * O * patch_size
    dy_row = dy_ptr + b * dy_stride_b + oy * dy_stride_h + ox * dy_stride_w
    response = tl.zeros([BLOCK_M], dtype=tl.float32)
    for o0 in range(0, O, BLOCK_N):
        offs_o = o0 + tl.arange(0, BLOCK_N)
        o_ok = offs_o < O
        acc = _patch_times_filter(
            x_ptr, w_region + offs_o.to(tl.int64) * patch_size, o_ok, b, oy,
            ox, row_ok, C, H, W, KW, TAPS, stride_h, stride_w, pad_h, pad_w,
            dil_h, dil_w, PRECISION, UPCAST, BLOCK_M, BLOCK_N, BLOCK_K)
        g = tl.load(dy_row[:, None] + offs_o[None, :] * dy_stride_o,
                    mask=row_ok[:, None] & o_ok[None, :], other=0.)
        response += tl.sum(acc * g.to(tl.float32), axis=1)
    tl.store(resp_ptr + pix * REGIONS + region, response, mask=row_ok)
