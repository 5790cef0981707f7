"""mmdrconv.core.timing, the benchmarks' harness: interleaved rounds,
per-round ratios, warm-up and thread control, on a clock that the test
drives (so the expected values are exact)."""
import pytest
import torch

from mmdrconv.core import timing


class FakeClock:
    """A clock that only the calls under test advance."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setitem(timing.CLOCKS, 'wall', fake)
    return fake


def test_interleaved_rounds_ratios_within_each_round(clock):
    # The machine slows down round by round (drift); b costs 3x a.
    calls, log = [], []
    speed = {'round': 1.0}

    def make(name, cost):
        def call():
            calls.append(name)
            clock.now += cost * speed['round']
        return call

    a, b = make('a', 1e-3), make('b', 3e-3)

    def on_measured(index, key, seconds):
        log.append((index, key, round(seconds['wall'], 9)))
        if key == 'b':  # next round: the machine is twice as slow
            speed['round'] *= 2

    rounds = timing.interleaved_rounds(dict(a=a, b=b), rounds=3, repeat=2,
                                       warmup=1, log=on_measured)
    # Warm-up once each, then a then b, two calls each, per round.
    assert calls == ['a', 'b'] + ['a', 'a', 'b', 'b'] * 3
    assert log == [(0, 'a', 1e-3), (0, 'b', 3e-3), (1, 'a', 2e-3),
                   (1, 'b', 6e-3), (2, 'a', 4e-3), (2, 'b', 12e-3)]
    # Per-round ratios cancel the drift exactly; the times do not.
    assert rounds.ratio('b', 'a') == pytest.approx((3.0, 3.0, 3.0))
    assert rounds.seconds('a') == pytest.approx((2e-3, 1e-3, 4e-3))
    assert rounds.seconds('b').format('.3f') == '0.006 (0.003-0.012)'


def test_median_latency_and_sample_times(clock):
    costs = iter([5.0, 1.0, 2.0, 9.0, 3.0])

    def call():
        clock.now += next(costs)

    # Warm-up takes the first cost (5); the median of 1, 2, 9, 3 is 2.5.
    assert timing.median_latency(call, repeat=4, warmup=1) == 2.5
    with pytest.raises(ValueError, match='unknown clock'):
        timing.sample_times(call, 1, clocks=('sundial', ))
    with pytest.raises(ValueError, match='repeat must be at least 1'):
        timing.sample_times(call, 0)
    with pytest.raises(ValueError, match='rounds must be at least 1'):
        timing.interleaved_rounds(dict(c=call), rounds=0)


def test_two_clocks_read_the_same_calls(monkeypatch):
    wall, cpu = FakeClock(), FakeClock()
    monkeypatch.setitem(timing.CLOCKS, 'wall', wall)
    monkeypatch.setitem(timing.CLOCKS, 'process_cpu', cpu)

    def call():  # waits 1 s, computes 0.25 s
        wall.now += 1.0
        cpu.now += 0.25

    rounds = timing.interleaved_rounds(dict(c=call), 2, 3, 0,
                                       clocks=('wall', 'process_cpu'))
    assert rounds.times == {'wall': {'c': [1.0, 1.0]},
                            'process_cpu': {'c': [0.25, 0.25]}}


def test_num_threads_sets_and_restores():
    before = torch.get_num_threads()
    with timing.num_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with timing.num_threads(None):  # None: leave as it is
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match='threads must be at least 1'):
        with timing.num_threads(-2):
            pass
    assert torch.get_num_threads() == before


def test_cpu_clocks_are_refused_on_cuda():
    with pytest.raises(ValueError, match='only the wall clock'):
        timing.sample_times(lambda: None, 1, clocks=('thread_cpu', ),
                            device='cuda')
