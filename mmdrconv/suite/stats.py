"""Statistics of a suite: intervals over seeds and paired differences.

Every number a suite reports per seed (a metric, the training time per
iteration) is summarised by its mean and a Student-t confidence interval over
the seeds. A variant is compared with its standard-convolution twin seed by
seed (same seed: same data order, same initialisation of the shared layers),
and the verdict names a winner only when the interval of the paired
difference excludes zero.
"""
import math
import statistics
from typing import List, Mapping

from scipy import stats as _scipy_stats

CONFIDENCE = 0.95
AHEAD = 'ahead'
BEHIND = 'behind'
NO_DIFFERENCE = 'no difference detectable at this budget and seed count'


def t_interval(values: List[float], confidence: float = CONFIDENCE) -> dict:
    """Mean and two-sided Student-t confidence interval of ``values``.

    Returns a dict with ``values``, ``n``, ``mean``, ``std`` (sample standard
    deviation) and ``low`` / ``high``; with fewer than two values there is
    no interval (``low`` and ``high`` are None) and ``std`` is None too.
    """
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must be in (0, 1), got {confidence}')
    values = [float(v) for v in values]
    n = len(values)
    summary = dict(values=values, n=n, mean=None, std=None, low=None,
                   high=None, confidence=confidence)
    if n == 0:
        return summary
    summary['mean'] = statistics.fmean(values)
    if n < 2:
        return summary
    summary['std'] = statistics.stdev(values)
    half = _scipy_stats.t.ppf(0.5 + confidence / 2, n - 1) * \
        summary['std'] / math.sqrt(n)
    summary['low'] = summary['mean'] - half
    summary['high'] = summary['mean'] + half
    return summary


def paired_difference(values: Mapping[int, float],
                      baseline: Mapping[int, float],
                      confidence: float = CONFIDENCE) -> dict:
    """``values - baseline`` over the seeds both have, with its interval.

    ``values`` and ``baseline`` map seed -> value. Returns
    :func:`t_interval` of the per-seed differences plus ``seeds`` and a
    ``verdict`` (:func:`verdict`).
    """
    seeds = sorted(set(values) & set(baseline))
    summary = t_interval([values[s] - baseline[s] for s in seeds],
                         confidence)
    summary['seeds'] = seeds
    summary['verdict'] = verdict(summary)
    return summary


def verdict(difference: dict) -> str:
    """'ahead' / 'behind' when the interval of ``difference`` (a metric
    where higher is better) excludes zero, otherwise :data:`NO_DIFFERENCE`
    (also without an interval)."""
    low, high = difference.get('low'), difference.get('high')
    if low is None or high is None:
        return NO_DIFFERENCE
    if low > 0:
        return AHEAD
    if high < 0:
        return BEHIND
    return NO_DIFFERENCE
