"""Parameters, multiply-adds, latency and peak memory of a model.

Multiply-adds are counted with forward hooks on the layers that carry
almost all of a CNN's arithmetic: nn.Conv2d, nn.Linear and DRConv. DRConv is
counted as what it computes: one standard convolution per output pixel
(its selected filter), plus its guide conv and generator (their own
nn.Conv2d / nn.Linear hooks), plus the filter synthesis of the 'mixture'
and 'paper' generators. mmcv's deformable convolutions (DCN, DCNv2) are not
nn.Conv2d subclasses: they are counted as one convolution plus the bilinear
sampling of every input value they read (their offset conv is an nn.Conv2d
with its own hook). Normalisation, activations, pooling, RoIAlign and
NMS are not counted (as in most detection papers' FLOPs).
"""
import ctypes
import gc
import statistics
import time
from typing import Callable, Dict

import torch
import torch.nn as nn

from .layers import DRConv


def _conv_macs(module, output: torch.Tensor) -> int:
    kh, kw = module.kernel_size
    return output.numel() * (module.in_channels // module.groups) * kh * kw


def _drconv_macs(module: DRConv, inputs, output) -> int:
    macs = _conv_macs(module, output)
    if module.generator == 'mixture':
        gen = module.filter_generator
        macs += inputs[0].shape[0] * module.region_num * gen.num_bases * \
            gen.bases[0].numel()
    elif module.generator == 'modulated':
        macs += output.numel()  # the per-pixel region scale
        if module.groups == 1:
            # The guide runs fused into the main conv (no hook fires for it).
            macs += _conv_macs(module, output) * module.region_num // \
                module.out_channels
    return macs


def _deformable_convs() -> dict:
    """mmcv's deformable convolution classes -> multiply-adds per sampled
    input value ({} without mmcv's ops): a bilinear sample is 4, and DCNv2
    also scales it by its modulation mask."""
    try:
        from mmcv.ops import DeformConv2d, ModulatedDeformConv2d
    except ImportError:
        return {}
    return {ModulatedDeformConv2d: 5, DeformConv2d: 4}


def _deformable_conv_macs(module, output, per_value: int) -> int:
    # Every (output pixel, input channel, tap) samples one value, then the
    # convolution proper runs over the sampled values.
    batch, _, height, width = output.shape
    taps = module.kernel_size[0] * module.kernel_size[1]
    sampling = batch * height * width * module.in_channels * taps * per_value
    return _conv_macs(module, output) + sampling


def run_with_hooks(model: nn.Module, types: tuple,
                   make_hook: Callable[[str], Callable],
                   run: Callable[[], object]) -> None:
    """Call ``run()`` without grad, with a forward hook (``make_hook(name)``)
    on every submodule of ``types``; the hooks are removed afterwards."""
    handles = [
        module.register_forward_hook(make_hook(name))
        for name, module in model.named_modules()
        if isinstance(module, types)
    ]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()


def count_complexity(model: nn.Module, run: Callable[[], object]) -> Dict:
    """Params and multiply-adds of ``model`` during one call of ``run``."""
    counts = dict(macs=0)
    deformable = _deformable_convs()

    def hook(module, inputs, output):
        if isinstance(output, (tuple, list)):
            output = output[0]
        if isinstance(module, DRConv):
            counts['macs'] += _drconv_macs(module, inputs, output)
        elif isinstance(module, tuple(deformable)):
            per_value = next(v for cls, v in deformable.items()
                             if isinstance(module, cls))
            counts['macs'] += _deformable_conv_macs(module, output, per_value)
        elif isinstance(module, nn.Conv2d):
            counts['macs'] += _conv_macs(module, output)
        elif isinstance(module, nn.Linear):
            counts['macs'] += output.numel() * module.in_features

    run_with_hooks(model, (nn.Conv2d, nn.Linear, DRConv) + tuple(deformable),
                   lambda name: hook, run)
    counts['params'] = sum(p.numel() for p in model.parameters())
    return counts


def median_latency(fn: Callable[[], object], repeat: int = 10,
                   warmup: int = 2) -> float:
    """Median wall time of ``fn`` in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# glibc mallopt parameters.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def _status_kib(field: str) -> int:
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def _mallopt(param: int, value: int) -> None:
    ctypes.CDLL('libc.so.6').mallopt(param, value)


def keep_freed_memory() -> None:
    """Make glibc keep freed blocks (up to its 32 MiB mmap ceiling) for
    reuse instead of returning them to the OS, as a caching allocator does.

    Without it, a multi-megabyte tensor allocated in every call page-faults
    in every call (here ~10 ms for a 19 MB conv output that computes in
    1 ms), so timings would measure the kernel's page handling, not the op.
    """
    _mallopt(M_MMAP_THRESHOLD, 32 << 20)
    _mallopt(M_TRIM_THRESHOLD, 1 << 30)


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak resident memory in bytes that ``fn`` adds (Linux, CPU).

    PyTorch keeps no CPU allocator statistics, so glibc is told to hand every
    block over 64 KiB back to the OS on free (RSS then follows the live
    tensors), the kernel's high-water mark is reset, and read after ``fn``.
    This slows later allocations: measure time before memory.
    """
    _mallopt(M_MMAP_THRESHOLD, 1 << 16)
    _mallopt(M_TRIM_THRESHOLD, 1 << 16)
    gc.collect()
    ctypes.CDLL('libc.so.6').malloc_trim(0)
    with open('/proc/self/clear_refs', 'w') as refs:
        refs.write('5')  # reset VmHWM to the current RSS
    base = _status_kib('VmRSS')
    try:
        fn()
        return (_status_kib('VmHWM') - base) * 1024
    finally:
        keep_freed_memory()


def profile_config(config: str, size=(128, 128), batch_size: int = 2,
                   repeat: int = 10) -> dict:
    """Params, multiply-adds, inference latency, training-step time and peak
    memory of ``config``'s model on a random batch, on this machine."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import OptimWrapper

    from .apis import build_model, demo_batch, load_config
    torch.manual_seed(0)
    cfg = load_config(config)
    model = revert_sync_batchnorm(build_model(cfg))
    model.init_weights()
    batch = demo_batch(cfg, batch_size=batch_size, size=tuple(size))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-4))

    def infer():
        with torch.no_grad():
            model.test_step(batch)

    def train():
        model.train_step(batch, optim)

    model.eval()
    keep_freed_memory()
    complexity = count_complexity(model, infer)
    latency = median_latency(infer, repeat)
    model.train()
    train_time = median_latency(train, max(2, repeat // 2))
    # Memory last: its allocator settings slow allocation.
    train_memory = peak_memory(train)
    model.eval()
    infer_memory = peak_memory(infer)
    return dict(params=complexity['params'], macs=complexity['macs'],
                latency_ms=latency * 1e3, train_step_ms=train_time * 1e3,
                infer_peak_mib=infer_memory / 2**20,
                train_peak_mib=train_memory / 2**20,
                image_size=list(size), batch_size=batch_size,
                threads=torch.get_num_threads())
