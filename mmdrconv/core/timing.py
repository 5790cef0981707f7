"""The timing harness of every mmdrconv benchmark: time and peak memory of
callables, on the CPU or one CUDA device. Needs torch alone, so that
benchmarks/bench_drconv.py runs on GPU machines without mmcv.

Comparisons are made in *paired, interleaved rounds*
(:func:`interleaved_rounds`): each round times every candidate once, back
to back, and ratios are taken within a round. On a machine shared with
other jobs the cores' speed drifts over seconds; within a round the drift
hits all candidates alike, and the spread of the per-round ratios shows how
far it moved. Results are medians with the lowest and highest round
(:class:`Spread`).
"""
import contextlib
import ctypes
import gc
import statistics
import time
from typing import (Callable, Dict, Hashable, List, Mapping, NamedTuple,
                    Optional, Sequence)

import torch

# Clocks a measurement can read. CPU time is disturbed less than wall time
# by other jobs on the machine (thread CPU time: with one torch thread).
CLOCKS = {
    'wall': time.perf_counter,
    'thread_cpu': time.thread_time,
    'process_cpu': time.process_time,
}


class Spread(NamedTuple):
    """Median of some per-round values, with the lowest and highest."""
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> 'Spread':
        return cls(statistics.median(values), min(values), max(values))

    def format(self, spec: str = '.2f') -> str:
        return (f'{self.median:{spec}} ({self.low:{spec}}-'
                f'{self.high:{spec}})')


@contextlib.contextmanager
def num_threads(threads: Optional[int]):
    """Run the block with ``threads`` torch intra-op threads (None: as they
    are), restoring the previous count afterwards."""
    previous = torch.get_num_threads()
    if threads:
        if threads < 1:
            raise ValueError(f'threads must be at least 1, got {threads}')
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _is_cuda(device) -> bool:
    return device is not None and torch.device(device).type == 'cuda'


def synchronize(device=None) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so that a
    clock read afterwards includes it."""
    if _is_cuda(device):
        torch.cuda.synchronize(device)


def warm_up(fn: Callable[[], object], calls: int, device=None) -> None:
    """Call ``fn`` ``calls`` times untimed (lazy initialisation, allocator
    caches, cuDNN / Triton autotuning), then synchronize."""
    for _ in range(calls):
        fn()
    synchronize(device)


def sample_times(fn: Callable[[], object], repeat: int,
                 clocks: Sequence[str] = ('wall', ),
                 device=None) -> Dict[str, List[float]]:
    """Seconds of each of ``repeat`` calls of ``fn``, by every clock named.

    On a CUDA device the wall clock is read from CUDA events recorded
    around each call (no synchronisation between calls, as a training loop
    runs); CPU clocks do not measure GPU work and are refused there.
    """
    if repeat < 1:
        raise ValueError(f'repeat must be at least 1, got {repeat}')
    unknown = [c for c in clocks if c not in CLOCKS]
    if unknown:
        raise ValueError(f'unknown clock(s) {unknown}; choose from '
                         f'{sorted(CLOCKS)}')
    if _is_cuda(device):
        if tuple(clocks) != ('wall', ):
            raise ValueError(f'on {device} only the wall clock (CUDA events) '
                             f'measures the work; got clocks {list(clocks)}')
        events = [(torch.cuda.Event(enable_timing=True),
                   torch.cuda.Event(enable_timing=True))
                  for _ in range(repeat)]
        for begin, end in events:
            begin.record()
            fn()
            end.record()
        synchronize(device)
        return {'wall': [b.elapsed_time(e) / 1e3 for b, e in events]}
    readers = [CLOCKS[c] for c in clocks]
    times = {c: [] for c in clocks}
    for _ in range(repeat):
        starts = [read() for read in readers]
        fn()
        ends = [read() for read in readers]
        for clock, start, end in zip(clocks, starts, ends):
            times[clock].append(end - start)
    return times


def median_latency(fn: Callable[[], object], repeat: int = 10,
                   warmup: int = 2, clock: str = 'wall',
                   device=None) -> float:
    """Median seconds of ``fn`` over ``repeat`` calls after ``warmup``."""
    warm_up(fn, warmup, device)
    return statistics.median(sample_times(fn, repeat, (clock, ),
                                          device)[clock])


class Rounds:
    """The per-round medians (seconds) of :func:`interleaved_rounds`:
    ``times[clock][key]`` is one value per round."""

    def __init__(self, times: Dict[str, Dict[Hashable, List[float]]]):
        self.times = times

    def seconds(self, key: Hashable, clock: str = 'wall') -> Spread:
        return Spread.of(self.times[clock][key])

    def ratio(self, key: Hashable, reference: Hashable,
              clock: str = 'wall') -> Spread:
        """``key``'s time over ``reference``'s, taken within each round."""
        per_round = [a / b for a, b in zip(self.times[clock][key],
                                           self.times[clock][reference])]
        return Spread.of(per_round)


def interleaved_rounds(calls: Mapping[Hashable, Callable[[], object]],
                       rounds: int = 3, repeat: int = 5, warmup: int = 2,
                       clocks: Sequence[str] = ('wall', ), device=None,
                       log: Optional[Callable[[int, Hashable, dict],
                                              None]] = None) -> Rounds:
    """Time every call of ``calls`` in ``rounds`` rounds; in each round each
    call in turn takes the median of ``repeat`` timed calls. All are warmed
    up (``warmup`` calls each) before the first round. ``log(round, key,
    {clock: seconds})`` is called after each measurement."""
    if rounds < 1:
        raise ValueError(f'rounds must be at least 1, got {rounds}')
    for fn in calls.values():
        warm_up(fn, warmup, device)
    times = {clock: {key: [] for key in calls} for clock in clocks}
    for index in range(rounds):
        for key, fn in calls.items():
            sampled = sample_times(fn, repeat, clocks, device)
            for clock in clocks:
                times[clock][key].append(statistics.median(sampled[clock]))
            if log is not None:
                log(index, key, {c: times[c][key][-1] for c in clocks})
    return Rounds(times)


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
    in every call, so CPU timings would measure the kernel's page handling
    rather than the op (docs/benchmarks.md gives the size of the effect).
    """
    _mallopt(M_MMAP_THRESHOLD, 32 << 20)
    _mallopt(M_TRIM_THRESHOLD, 1 << 30)


def peak_memory(fn: Callable[[], object], device=None) -> int:
    """Peak memory in bytes that ``fn`` adds to what is in use before it.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU (Linux): PyTorch keeps
    no CPU allocator statistics, so glibc is told to hand every block over
    64 KiB back to the OS on free (RSS then follows the live tensors), the
    kernel's high-water mark is reset, and read after ``fn``. This slows
    later CPU allocations: measure time before memory.
    """
    if _is_cuda(device):
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
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


__all__ = [
    'CLOCKS', 'Spread', 'Rounds', 'num_threads', 'synchronize', 'warm_up',
    'sample_times', 'median_latency', 'interleaved_rounds',
    'keep_freed_memory', 'peak_memory'
]
