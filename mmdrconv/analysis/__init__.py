"""Complexity, timing and region maps of DRConv models.

``complexity``, ``timing`` and ``capture_region_maps`` need torch alone;
``profile`` (a config's model end to end), ``inputs`` and
``render_region_maps`` use OpenMMLab.
"""
from .complexity import count_complexity, run_with_hooks
from .region_maps import capture_region_maps, overlay
from .timing import keep_freed_memory, median_latency, peak_memory

__all__ = [
    'count_complexity', 'run_with_hooks', 'capture_region_maps', 'overlay',
    'keep_freed_memory', 'median_latency', 'peak_memory'
]
