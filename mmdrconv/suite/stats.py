"""Statistics of a suite: intervals over seeds and paired differences.

Every number a suite reports per seed (a metric, the training time per
iteration) is summarised by its mean and a Student-t confidence interval over
the seeds. A variant is compared with its standard-convolution twin seed by
seed (same seed: same data order, same initial weights wherever the
parameter names and shapes match: ``pairing.py``), and the verdict names a
winner only when the interval of the paired difference excludes zero. Beside
it stands the minimum detectable difference (:func:`detectable_difference`):
how large a difference the run would have found with 80% power, which
:func:`seeds_needed` turns around into the seed count a target needs.
"""
import math
import statistics
from typing import Dict, List, Mapping, Optional, Sequence

from scipy import stats as _scipy_stats

CONFIDENCE = 0.95
POWER = 0.8
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
    summary['twin_mean'] = statistics.fmean(
        baseline[s] for s in seeds) if seeds else None
    summary['mde'] = detectable_difference(
        summary['std'], summary['n'], summary['twin_mean'], confidence)
    return summary


def p_value(difference: dict) -> Optional[float]:
    """Two-sided p-value of the paired t test of ``difference`` (a
    :func:`t_interval` of per-seed differences): None with fewer than two
    seeds; 0 or 1 for a zero spread with a non-zero or zero mean."""
    n, mean, std = difference.get('n', 0), difference.get('mean'), \
        difference.get('std')
    if n < 2 or mean is None or std is None:
        return None
    if std == 0:
        return 1.0 if mean == 0 else 0.0
    t = mean / (std / math.sqrt(n))
    return float(2 * _scipy_stats.t.sf(abs(t), n - 1))


def holm_adjusted(p_values: Mapping[str, Optional[float]]
                  ) -> Dict[str, Optional[float]]:
    """Holm's step-down adjustment of a family of p-values (one per
    comparison; None: not testable, left out of the family). A comparison
    is significant at level alpha when its adjusted p-value is at most
    alpha; the family-wise error rate is then at most alpha, whatever the
    dependence between the tests."""
    tested = sorted((p, name) for name, p in p_values.items()
                    if p is not None)
    m = len(tested)
    adjusted, running = {}, 0.0
    for i, (p, name) in enumerate(tested):
        running = max(running, min(1.0, (m - i) * p))
        adjusted[name] = running
    return {name: adjusted.get(name) for name in p_values}


def evaluation_se(halves: Sequence[tuple]) -> dict:
    """Standard error from the finite validation set, pooled over cells.

    ``halves`` holds one ``(half0, half1)`` pair per cell: a value (a
    metric, or a paired difference) computed on each half of the
    validation set (split_half.py). Each half has about twice the whole
    set's variance, so ``E[(half0 - half1)^2] = 4 var(whole)``:
    ``se = sqrt(mean((half0 - half1)^2) / 4)``. Returns ``se`` (None
    without pairs) and ``n``, the pairs pooled.
    """
    pairs = [(float(a), float(b)) for a, b in halves]
    se = math.sqrt(statistics.fmean((a - b) ** 2 for a, b in pairs) / 4) \
        if pairs else None
    return dict(se=se, n=len(pairs))


def _power_factor(n: int, confidence: float, power: float) -> float:
    """t(1 - alpha/2, n - 1) + t(power, n - 1): the mean difference, in
    standard errors, that a two-sided paired t test at level alpha detects
    with probability ``power``."""
    return (_scipy_stats.t.ppf(0.5 + confidence / 2, n - 1) +
            _scipy_stats.t.ppf(power, n - 1))


def _check_power(confidence: float, power: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must be in (0, 1), got {confidence}')
    if not 0 < power < 1:
        raise ValueError(f'power must be in (0, 1), got {power}')


def detectable_difference(std: Optional[float], n: int,
                          reference: Optional[float] = None,
                          confidence: float = CONFIDENCE,
                          power: float = POWER) -> dict:
    """Minimum detectable paired difference (MDE) of ``n`` seeds whose
    per-seed differences have sample standard deviation ``std``:
    ``(t(1 - alpha/2, n-1) + t(power, n-1)) * std / sqrt(n)`` (docs/suite.md).

    Returns ``absolute``, ``relative`` (to ``|reference|``, the twin's mean)
    and ``reason``: why a value is None (fewer than two seeds, no reference
    or a zero one), else None.
    """
    _check_power(confidence, power)
    out = dict(absolute=None, relative=None, reference=reference, n=n,
               confidence=confidence, power=power, reason=None)
    if n < 2 or std is None:
        out['reason'] = (f'{n} paired seed{"" if n == 1 else "s"}: the '
                         'spread of the differences needs at least 2')
        return out
    out['absolute'] = _power_factor(n, confidence, power) * std / math.sqrt(n)
    if not reference:
        out['reason'] = ("no relative value: the twin's mean is "
                         f'{reference!r}')
        return out
    out['relative'] = out['absolute'] / abs(reference)
    return out


def seeds_needed(std: float, difference: float,
                 confidence: float = CONFIDENCE, power: float = POWER,
                 max_seeds: int = 10000) -> Optional[int]:
    """The fewest seeds (at least 2) whose minimum detectable difference
    (:func:`detectable_difference` with the standard deviation ``std`` of
    the per-seed differences) is at most ``difference``; None when more than
    ``max_seeds`` would be needed."""
    _check_power(confidence, power)
    if not difference > 0:
        raise ValueError(f'the difference to detect must be positive, got '
                         f'{difference}')
    if std is None or std < 0:
        raise ValueError(f'std must be a non-negative number, got {std!r}')
    for n in range(2, max_seeds + 1):
        # The MDE falls with n (both quantiles fall, sqrt(n) grows).
        if _power_factor(n, confidence, power) * std / math.sqrt(n) <= \
                difference:
            return n
    return None


def seed_plan(rows: Sequence[dict], relative: float,
              confidence: float = CONFIDENCE, power: float = POWER,
              max_seeds: int = 10000) -> List[dict]:
    """Seeds needed per task, variant and metric to detect a difference of
    ``relative`` times the twin's mean, from the spread of the paired
    differences of a finished run (``rows``: its results.json ``summary``).

    Each entry: ``task``, ``variant``, ``metric``, ``twin_mean``, ``target``
    (the absolute difference), ``std`` and ``n`` (seeds the spread is
    from), ``seeds`` (None when not computable or above ``max_seeds``) and
    ``note`` (why, or that the spread is from fewer than 3 seeds).
    """
    if not relative > 0:
        raise ValueError(f'the relative difference to plan for must be '
                         f'positive, e.g. 0.03 for 3%, got {relative}')
    twins = {(r['task'], r['variant']): r for r in rows}
    plan = []
    for row in rows:
        for metric, d in (row.get('difference') or {}).items():
            twin_mean = d.get('twin_mean')
            if twin_mean is None:  # results written before the MDE
                twin = twins.get((row['task'], row['baseline']))
                twin_mean = twin['metrics'][metric]['mean'] if twin else None
            entry = dict(task=row['task'], variant=row['variant'],
                         metric=metric, twin_mean=twin_mean, target=None,
                         std=d.get('std'), n=d.get('n', 0), seeds=None,
                         note=None)
            plan.append(entry)
            if entry['n'] < 2 or entry['std'] is None:
                entry['note'] = (f"{entry['n']} paired seed(s): no spread to "
                                 'plan from (needs at least 2)')
                continue
            if not twin_mean:
                entry['note'] = f"the twin's mean is {twin_mean!r}"
                continue
            entry['target'] = relative * abs(twin_mean)
            entry['seeds'] = seeds_needed(entry['std'], entry['target'],
                                          confidence, power, max_seeds)
            if entry['seeds'] is None:
                entry['note'] = f'more than {max_seeds} seeds'
            elif entry['n'] < 3:
                entry['note'] = (f"spread from {entry['n']} seeds only: a "
                                 'rough estimate')
    return plan


def late_gain(curve: Sequence[dict], metric: str,
              fraction: float = 0.25) -> dict:
    """How much ``metric`` rose over the last ``fraction`` of training, from
    a validation curve (``[{'iter': N, 'metrics': {...}}, ...]``): the last
    value minus the value at ``(1 - fraction) * last iteration``, linearly
    interpolated between the evaluations around it.

    Returns ``gain``, ``from_iter``, ``to_iter`` and ``reason`` (why
    ``gain`` is None: too few evaluations, none early enough).
    """
    if not 0 < fraction < 1:
        raise ValueError(f'fraction must be in (0, 1), got {fraction}')
    # One value per iteration (the latest, should one repeat).
    points = sorted({p['iter']: p['metrics'][metric] for p in curve or ()
                     if metric in p.get('metrics', {})}.items())
    out = dict(gain=None, from_iter=None, to_iter=None, reason=None)
    if len(points) < 2:
        out['reason'] = (f'{len(points)} evaluation(s) of {metric}: a gain '
                         'needs at least 2')
        return out
    last_iter, last = points[-1]
    start = (1 - fraction) * last_iter
    out.update(from_iter=start, to_iter=last_iter)
    if points[0][0] > start:
        out['reason'] = (f'first evaluation at iteration {points[0][0]}, '
                         f'after the start of the last {fraction:.0%} '
                         f'({start:g})')
        return out
    for (i0, v0), (i1, v1) in zip(points, points[1:]):
        if i0 <= start <= i1:  # i0 < i1: the iterations are distinct
            at_start = v0 + (v1 - v0) * (start - i0) / (i1 - i0)
            break
    out['gain'] = last - at_start
    return out


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


def corrected_verdict(difference: dict, adjusted_p: Optional[float],
                      confidence: float = CONFIDENCE) -> str:
    """The verdict of ``difference`` under a multiplicity correction:
    'ahead' / 'behind' (by the sign of the mean) only when its adjusted
    p-value is at most 1 - ``confidence``."""
    if adjusted_p is None or adjusted_p > 1 - confidence:
        return NO_DIFFERENCE
    return AHEAD if difference['mean'] > 0 else BEHIND
