"""Complexity, timing and region maps of DRConv models.

``complexity``, ``timing`` (the one timing harness of the benchmarks) and
``capture_region_maps`` need torch alone; ``profile`` (a config's model end
to end), ``inputs``, ``onnx_benchmark`` and ``render_region_maps`` use
OpenMMLab and are imported from their modules.
"""
from .complexity import count_complexity, run_with_hooks
from .region_maps import capture_region_maps, overlay
from .timing import (Rounds, Spread, interleaved_rounds, keep_freed_memory,
                     median_latency, num_threads, peak_memory)

__all__ = [
    'count_complexity', 'run_with_hooks', 'capture_region_maps', 'overlay',
    'interleaved_rounds', 'Rounds', 'Spread', 'num_threads',
    'keep_freed_memory', 'median_latency', 'peak_memory'
]
