"""Pixels sorted by (sample, region) and cut into GEMM tiles, on the device.

The layout of vLLM's ``moe_align_block_size`` with pixels as tokens and
(sample, region) pairs as experts: every run of equal keys of the sorted-run
plan (``mmdrconv.core.ops.layout.SortedRuns``, shared with the PyTorch path) is
split into tiles of at most ``height`` rows, and each tile records its key
and its row range in the sorted order. Only indices are padded, never data
(as in ScatterMoE): a kernel gathers a tile's pixels through ``order``.

Nothing here synchronises with the host: the tile list has a fixed upper
bound of entries, and entries past the real tiles carry key -1 (their
programs return at once).
"""
import torch

from ..layout import SortedRuns


class RegionTiles(SortedRuns):
    """The sorted-run plan of one call and its tile lists, per tile height.
    """

    def __init__(self, guide):
        super().__init__(guide)
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
