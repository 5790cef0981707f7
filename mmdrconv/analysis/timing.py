"""Wall time and peak memory of a callable on the CPU (Linux, glibc)."""
import ctypes
import gc
import statistics
import time
from typing import Callable


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
