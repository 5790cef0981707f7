"""Pixels sorted by (sample, region) and cut into GEMM tiles, on the device.

The layout of vLLM's ``moe_align_block_size`` with pixels as tokens and
(sample, region) pairs as experts: every run of equal keys is split into
tiles of at most ``height`` rows, and each tile records its key and its row
range in the sorted order. Only indices are padded, never data (as in
ScatterMoE): a kernel gathers a tile's pixels through ``order``.

Nothing here synchronises with the host: the tile list has a fixed upper
bound of entries, and entries past the real tiles carry key -1 (their
programs return at once).
"""
import torch
from torch import Tensor


def region_keys(guide: Tensor) -> Tensor:
    """``b * m + argmax_j guide[b, j, p]`` for every pixel, (B*H*W,) int64.

    ``torch.max`` returns the first maximal index: the lowest region on
    ties, as ``argmax``.
    """
    batch, regions = guide.shape[:2]
    region = guide.max(dim=1).indices
    base = torch.arange(batch, device=guide.device).view(-1, 1, 1) * regions
    return (region + base).reshape(-1)


class RegionTiles:
    """Sorted pixel order and tile lists of one call.

    Attributes:
        order: (N,) pixel indices (b * H * W + y * W + x) sorted by key;
            stable, so raster order is kept inside a run.
        counts: (B*m,) pixels per key.
    """

    def __init__(self, guide: Tensor):
        batch, regions = guide.shape[:2]
        self.num_keys = batch * regions
        key = region_keys(guide)
        self.rows = key.numel()
        self.order = torch.argsort(key, stable=True)
        self.counts = torch.bincount(key, minlength=self.num_keys)
        self.run_stop = torch.cumsum(self.counts, 0)
        self.run_start = self.run_stop - self.counts
        self._tiles = {}

    def tiles(self, height: int):
        """(key, start, stop) of runs cut into ``height`` rows: key int32,
        start / stop int64 rows of ``order``. Built once per height.

        ``sum_k ceil(count_k / height) <= ceil(N / height) + B*m``, so that
        many entries hold every tile; the unused tail has key -1.
        """
        if height not in self._tiles:
            self._tiles[height] = self._cut(height)
        return self._tiles[height]

    def _cut(self, height: int):
        device = self.counts.device
        per_key = torch.div(self.counts + height - 1, height,
                            rounding_mode='floor')
        tile_stop = torch.cumsum(per_key, 0)
        bound = min(self.rows, -(-self.rows // height) + self.num_keys)
        index = torch.arange(bound, device=device)
        key = torch.searchsorted(tile_stop, index, right=True)
        valid = key < self.num_keys
        key = key.clamp(max=self.num_keys - 1)
        first_tile = tile_stop[key] - per_key[key]
        start = self.run_start[key] + (index - first_tile) * height
        stop = torch.minimum(start + height, self.run_stop[key])
        key = torch.where(valid, key, torch.full_like(key, -1))
        return key.to(torch.int32), start, stop
