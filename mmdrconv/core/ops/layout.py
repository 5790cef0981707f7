"""Memory layout of region_conv: sorted pixel runs and gathered patches.

Pixels are sorted by (sample, region) (:class:`SortedRuns`, the run plan
the Triton path cuts into tiles too); on the PyTorch path each run of equal
keys is one dense GEMM between the gathered input patches and that region's
filter (:class:`Plan`).
- Patches are gathered chunk by chunk into one reused buffer with
  ``index_select(out=...)``: a fresh im2col costs several times the copy
  itself in page faults (docs/benchmarks.md). No tensor of
  size m x output and no full im2col matrix is ever materialised; the
  backward pass re-gathers the patches instead of saving them.
- Small problems (where per-run Python overhead would dominate) are padded to
  a (B*m, longest run, K) batch and done in one ``bmm``.
"""
import functools
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .geometry import ConvGeometry
from .regions import region_keys

# Elements of the reused patch buffer (16 MB in float32): bounds the
# transient memory of one chunk. Kept under glibc's 32 MB mmap ceiling so the
# buffer is recycled instead of page-faulted on every call.
CHUNK_ELEMENTS = 1 << 22


def filter_rows(filters: Tensor) -> Tensor:
    """(B, m, O, C/g, kh, kw) -> (B, m, O, kh*kw*C/g): every filter as a row
    in patch column order (kh, kw, C), the order both paths gather patches
    in. Free when the filters already live in (kh, kw, C/g) memory order, as
    the DRConv generators produce them."""
    b, m, o, c, kh, kw = filters.shape
    return filters.permute(0, 1, 2, 4, 5, 3).reshape(b, m, o, kh * kw * c)


class Geometry(ConvGeometry):
    """The call's geometry plus the index helpers of the PyTorch path, which
    gathers patches from an explicitly zero-padded NHWC copy of the input."""

    def __post_init__(self):
        super().__post_init__()
        self.padded_h = self.height + 2 * self.padding[0]
        self.padded_w = self.width + 2 * self.padding[1]
        # Offset of every kernel tap in the flattened padded NHWC input.
        self.tap_offsets = [
            dy * self.dilation[0] * self.padded_w + dx * self.dilation[1]
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
        out = buffer[:n * self.patch_size].view(n * self.taps, self.channels)
        torch.index_select(x_rows, 0, self.tap_rows(pix), out=out)
        return out.view(n, self.patch_size)

    def scatter_patches(self, grad_rows: Tensor, grad_patch: Tensor,
                        pix: Tensor) -> None:
        """col2im for gathered rows: add patch gradients back to the input."""
        origins = self.patch_origins(pix)
        grad_patch = grad_patch.view(-1, self.taps, self.channels)
        for tap, offset in enumerate(self.tap_offsets):
            grad_rows.index_add_(0, origins + offset, grad_patch[:, tap])


def segments(counts: List[int], regions: int, chunk_rows: int):
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


class SortedRuns:
    """Pixels sorted by region key: the run plan of every ``region_conv``
    path (the PyTorch GEMMs' :class:`Plan`, the Triton kernels'
    ``triton.tiles.RegionTiles``).

    Device ops only: nothing here reads a value back to the host.

    Attributes:
        keys: (N,) ``sample * m + region`` of every output pixel, raster
            order (``regions.region_keys``).
        order: (N,) pixel indices (b * H * W + y * W + x) sorted by key;
            stable, so raster order is kept inside a run.
        counts: (B*m,) pixels per key, i.e. the length of every run.
        run_start, run_stop: (B*m,) each run's rows in ``order``.
    """

    def __init__(self, guide: Tensor):
        self.regions = guide.shape[1]
        self.num_keys = guide.shape[0] * self.regions
        self.keys = region_keys(guide)
        self.rows = self.keys.numel()
        self.order = torch.argsort(self.keys, stable=True)
        self.counts = torch.bincount(self.keys, minlength=self.num_keys)

    @functools.cached_property
    def run_stop(self) -> Tensor:
        return torch.cumsum(self.counts, 0)

    @functools.cached_property
    def run_start(self) -> Tensor:
        return self.run_stop - self.counts


class Plan(SortedRuns):
    """How the sorted pixels are laid out for the GEMMs of one call.

    Large problems walk the (sample, region) runs in bounded chunks, one GEMM
    per run. Small ones are padded to a (B*m, longest run, K) batch and done
    in one bmm.
    """

    def __init__(self, guide: Tensor, geom: Geometry):
        super().__init__(guide)
        self.longest = int(self.counts.max()) if geom.rows else 0
        padded_rows = self.num_keys * self.longest
        width = max(geom.patch_size, geom.regions * geom.out_channels)
        self.padded = (geom.groups == 1 and geom.rows > 0
                       and padded_rows * width <= CHUNK_ELEMENTS
                       and padded_rows <= 4 * geom.rows)
        if self.padded:
            sorted_key = self.keys[self.order]
            position = torch.arange(geom.rows, device=self.keys.device) - \
                self.run_start[sorted_key]
            # Row of every sorted pixel in the padded (B*m*longest) layout.
            self.slot = sorted_key * self.longest + position
            self.run_lengths = None
        else:
            self.slot = None
            self.run_lengths = self.counts.tolist()

    def pad(self, rows: Tensor) -> Tensor:
        """(N, W) sorted rows -> (B*m, longest, W), zeros where unused."""
        padded = rows.new_zeros(self.num_keys * self.longest, rows.shape[1])
        padded.index_copy_(0, self.slot, rows)
        return padded.view(self.num_keys, self.longest, -1)

    def unpad(self, padded: Tensor) -> Tensor:
        return padded.reshape(-1, padded.shape[-1]).index_select(0, self.slot)

    def unsort(self, rows: Tensor) -> Tensor:
        """(N, W) rows in sorted order -> the same rows in pixel order."""
        out = torch.empty_like(rows)
        out[self.order] = rows
        return out

    def chunks(self, geom: Geometry, width: int):
        """Chunks of the chunked plan, each with a slice of one reused buffer.
        """
        chunk_rows = max(1, CHUNK_ELEMENTS // max(width, 1))
        return segments(self.run_lengths, geom.regions, chunk_rows), \
            min(chunk_rows, geom.rows)
