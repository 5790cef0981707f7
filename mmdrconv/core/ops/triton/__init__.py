"""Triton kernels of ``region_conv`` and ``region_scale`` (optional).

Importing this package does not import triton: the kernels load on first
use, so ``mmdrconv.core.ops`` works without triton installed. The public ops
choose a backend per call with :func:`use_triton`:

- ``'auto'`` (default): Triton for CUDA tensors when triton imports (and,
  for ``region_conv``, groups == 1); the PyTorch path otherwise.
- ``'triton'``: always the kernels; on CPU tensors they need
  ``TRITON_INTERPRET=1`` set before the first call (the test suite does).
- ``'torch'``: always the PyTorch path.
"""
import functools
import os

import torch
from torch import Tensor

BACKENDS = ('auto', 'triton', 'torch')
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@functools.lru_cache(maxsize=None)
def triton_available() -> bool:
    """Whether triton imports (tried once per process)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def use_triton(backend: str, x: Tensor, groups: int = 1,
               op: str = 'region_conv') -> bool:
    """Whether ``op`` runs on the Triton kernels for input ``x``.

    Raises ValueError for an unknown backend, and for ``'triton'`` when the
    kernels cannot run (triton missing, an unsupported dtype, CPU tensors
    without ``TRITON_INTERPRET=1``). ``groups > 1`` always takes the
    PyTorch path.
    """
    if backend not in BACKENDS:
        raise ValueError(f'{op}: backend must be one of {BACKENDS}, got '
                         f'{backend!r}')
    if backend == 'torch' or groups != 1:
        return False
    if backend == 'auto':
        return x.is_cuda and x.dtype in KERNEL_DTYPES and \
            triton_available()
    if not triton_available():
        raise ValueError(f"{op}: backend='triton' needs the triton package "
                         f'(pip install triton); it does not import here')
    if x.dtype not in KERNEL_DTYPES:
        raise ValueError(f"{op}: backend='triton' supports float32, float16 "
                         f'and bfloat16 inputs, got {x.dtype}')
    if not x.is_cuda and os.environ.get('TRITON_INTERPRET', '0') != '1':
        raise ValueError(f"{op}: backend='triton' on {x.device.type} "
                         'tensors needs TRITON_INTERPRET=1 set before the '
                         'first call (or CUDA tensors)')
    return True


def triton_region_conv(*args, **kwargs):
    from .region_conv import triton_region_conv as impl
    return impl(*args, **kwargs)


def triton_region_scale(*args, **kwargs):
    from .region_scale import triton_region_scale as impl
    return impl(*args, **kwargs)
