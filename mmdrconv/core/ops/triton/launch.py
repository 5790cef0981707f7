"""How the Triton kernels are launched.

On a GPU every kernel is autotuned over a few tile shapes (keyed on the
channel counts and kernel size, so each layer shape is tuned once per
process). Under ``TRITON_INTERPRET=1`` (the CPU tests) kernels run with fixed
small tiles, so that the shapes of the tests span several tiles.
"""
import contextlib
import functools
import os
from typing import Callable, Dict, List, Optional, Sequence

import torch
import triton

try:  # triton >= 3.4
    from triton import knobs
    INTERPRET = bool(knobs.runtime.interpret)
except (ImportError, AttributeError):  # pragma: no cover
    INTERPRET = os.environ.get('TRITON_INTERPRET', '0') == '1'

# Rows of the sorted pixels per tile (the GEMM M dimension). Fixed rather
# than tuned: the tile list is built for it before the launch.
TILE_ROWS = 32 if INTERPRET else 64
# Tiles of the GEMM kernels when interpreted (sizes the tests cross).
INTERPRET_GEMM_TILES = dict(BLOCK_N=16, BLOCK_K=16)


def on_device_of(tensor: torch.Tensor):
    """Launch on the tensor's GPU (Triton uses the current device)."""
    if tensor.is_cuda:
        return torch.cuda.device(tensor.device)
    return contextlib.nullcontext()


def backward_on_device(backward: Callable, reference: Callable) -> Callable:
    """An autograd ``backward(ctx, grad)`` that launches on grad's GPU; its
    double backward (``create_graph=True``) goes through ``reference`` (see
    mmdrconv.core.ops.double_backward)."""
    from ..double_backward import twice_differentiable

    @functools.wraps(backward)
    def run(ctx, grad):
        with on_device_of(grad):
            return backward(ctx, grad)
    return staticmethod(twice_differentiable(reference)(run))


def dot_precision(dtype: torch.dtype) -> str:
    """fp32 products on tensor cores in TF32 when PyTorch allows it for
    convolutions (``torch.backends.cudnn.allow_tf32``, on by default)."""
    if dtype == torch.float32 and torch.backends.cudnn.allow_tf32 and \
            torch.version.hip is None:
        return 'tf32'
    return 'ieee'


def upcast_operands(dtype: torch.dtype) -> bool:
    """Whether kernels must convert bf16 tiles to fp32 before ``tl.dot``:
    triton 3.9's interpreter multiplies bf16 as raw 16-bit integers. On a
    GPU bf16 goes to the tensor cores as is (products are exact in fp32
    either way)."""
    return INTERPRET and dtype == torch.bfloat16


def tile_configs(names: Sequence[str],
                 rows: Sequence[tuple]) -> List[triton.Config]:
    """Configs from rows of (block sizes named ``names``..., num_warps,
    num_stages)."""
    return [
        triton.Config(dict(zip(names, row[:len(names)])),
                      num_warps=row[-2], num_stages=row[-1]) for row in rows
    ]


# Modest sets: every config costs a compile and a timing per layer shape.
GEMM_CONFIGS = tile_configs(('BLOCK_N', 'BLOCK_K'),
                            [(64, 64, 4, 3), (128, 32, 4, 4),
                             (128, 64, 8, 3)])


class Kernel:
    """A ``triton.jit`` function, autotuned over ``configs`` on a GPU, run
    with ``interpret_meta`` when interpreted. Call as
    ``kernel[grid](*args, **constexprs)``; ``grid`` is a function of the
    meta-parameters. Arguments named in ``reset_to_zero`` are accumulators
    that the autotuner's trial runs must not leave dirty."""

    def __init__(self, fn, configs: List[triton.Config], key: List[str],
                 interpret_meta: Dict,
                 reset_to_zero: Optional[List[str]] = None):
        self.fn = fn
        self.interpret_meta = interpret_meta
        self.tuned = None if INTERPRET else triton.autotune(
            configs=configs, key=key, reset_to_zero=reset_to_zero)(fn)

    def __getitem__(self, grid: Callable[[Dict], tuple]):
        if INTERPRET:
            launch = self.fn[grid]
            return lambda *args, **meta: launch(*args, **meta,
                                                **self.interpret_meta)
        return self.tuned[grid]
