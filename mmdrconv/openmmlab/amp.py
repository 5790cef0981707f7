"""Mixed precision on machines without a GPU: bfloat16 autocast on the CPU.

mmengine's AmpOptimWrapper refuses to start without CUDA (or NPU/MLU/MUSA),
although ``torch.autocast('cpu', dtype=torch.bfloat16)`` works. bfloat16 has
float32's exponent range, so no loss scaling is needed: this wrapper is
mmengine's plain OptimWrapper with the forward pass under CPU autocast.
"""
from contextlib import contextmanager
from typing import Optional

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module(force=True)
class CPUBFloat16OptimWrapper(OptimWrapper):
    """OptimWrapper whose forward pass runs under bfloat16 CPU autocast."""

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=torch.bfloat16):
            yield


def amp_optim_wrapper(optim_wrapper: dict, cuda: bool,
                      codebase: str = 'mmseg') -> dict:
    """``optim_wrapper`` for ``--amp``: mmengine's AmpOptimWrapper (float16
    with dynamic loss scaling) on CUDA, bfloat16 CPU autocast without it.

    Raises ValueError for a request the CPU cannot honour: float16, or a
    detector (mmcv's CPU nms has no bfloat16 kernel: training would stop at
    the first iteration with "expected scalar type Float but found
    BFloat16").
    """
    if not cuda and codebase == 'mmdet':
        raise ValueError(
            '--amp without CUDA means bfloat16 autocast on the CPU, which '
            "cannot train detectors: mmcv's CPU ops (nms in the RPN / "
            'box post-processing) have no bfloat16 kernels. Train without '
            '--amp, or on a GPU.')
    optim_wrapper = dict(optim_wrapper)
    kind = optim_wrapper.get('type', 'OptimWrapper')
    if kind not in ('OptimWrapper', 'AmpOptimWrapper',
                    'CPUBFloat16OptimWrapper'):
        raise ValueError(f'--amp: the config uses optim_wrapper type '
                         f'{kind!r}; --amp replaces only OptimWrapper')
    if cuda:
        if kind == 'CPUBFloat16OptimWrapper':
            optim_wrapper.pop('type')
        if kind != 'AmpOptimWrapper':
            optim_wrapper.update(type='AmpOptimWrapper')
            optim_wrapper.setdefault('loss_scale', 'dynamic')
        return optim_wrapper
    dtype = optim_wrapper.pop('dtype', None)
    if dtype not in (None, 'bfloat16', torch.bfloat16):
        raise ValueError(
            f'--amp on the CPU: autocast supports bfloat16 only, but the '
            f'config asks for dtype={dtype!r} (float16 needs a GPU); remove '
            'optim_wrapper.dtype or train without --amp')
    optim_wrapper.pop('loss_scale', None)  # bfloat16 needs no scaling
    optim_wrapper.pop('use_fsdp', None)
    optim_wrapper['type'] = 'CPUBFloat16OptimWrapper'
    return optim_wrapper


def cpu_has_native_bfloat16() -> Optional[bool]:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX);
    None where /proc/cpuinfo cannot tell (not Linux)."""
    try:
        with open('/proc/cpuinfo') as f:
            flags = f.read()
    except OSError:
        return None
    return any(flag in flags for flag in ('avx512_bf16', 'amx_bf16'))


SLOW_BFLOAT16 = (
    '--amp without CUDA trains with bfloat16 autocast on the CPU, but this '
    'CPU has no native bfloat16 instructions (avx512_bf16 / amx_bf16): '
    'PyTorch emulates them, which is several times slower than float32 '
    '(README, Tools: --amp). '
    'Train without --amp here.')
