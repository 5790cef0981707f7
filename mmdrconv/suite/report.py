"""results.json / .csv / .md of a suite run (the plots: plots.py)."""
import csv
import os
import os.path as osp
import platform
import shlex
import statistics
import sys
import time
from typing import Dict, List, Optional

import mmengine
import torch

from .invocations import timing_lines
from .split_half import HALVES, half_key
from .stats import (BEHIND, CONFIDENCE, NO_DIFFERENCE, POWER,
                    corrected_verdict, evaluation_se, holm_adjusted,
                    late_gain, p_value, paired_difference, seed_plan,
                    t_interval)
from .spec import Cell, Suite, Task, load_suite

# Written under every report: how to read the cost columns.
COST_NOTES = (
    'Params and multiply-adds are counted by forward hooks on conv / linear '
    'layers (mmdrconv.analysis.count_complexity): DRConv as one convolution '
    'per output pixel plus its guide and generator, DCNv2 (mmcv '
    'ModulatedDeformConv2dPack) as one convolution plus its offset/mask conv '
    'and the bilinear sampling; normalisation, activations, pooling, RoIAlign '
    'and NMS are not counted. GMACs are per image at the task\'s profile '
    'size (H x W in the table), from one inference pass (test_step) over a '
    'batch of two divided by two. tools/analysis/get_flops.py gives other '
    'numbers on purpose: it defaults to 800 x 1344 (the COCO test size), '
    'batch 1, and counts the network forward (mode=\'tensor\') without the '
    'test-time post-processing, so pass --shape H W for the suite\'s size. '
    'Latency is the median of inference on that batch of two; train s/iter '
    'is the mean over the cells\' logged iterations after the first five '
    '(oneDNN set-up), with its interval over seeds; peak memory is the '
    'resident-set growth of one step, measured in a separate process per '
    'variant (Linux, CPU).')


def _metric_by_seed(good: Dict[int, dict], metric: str) -> Dict[int, float]:
    return {seed: r['metrics'][metric] for seed, r in sorted(good.items())
            if metric in (r.get('metrics') or {})}


def _summary_of(values: Dict[int, float]) -> dict:
    return dict(t_interval(list(values.values())), seeds=list(values))


def _halves_by_seed(good: Dict[int, dict], metric: str) -> Dict[int, tuple]:
    """Seed -> the final ``metric`` on each half of the validation set,
    for the cells that evaluated the halves."""
    keys = [half_key(metric, half) for half in HALVES]
    return {seed: tuple(r['metrics'][k] for k in keys)
            for seed, r in sorted(good.items())
            if all(k in (r.get('metrics') or {}) for k in keys)}


def _evaluation_se_of(mine: Dict[int, dict], base: Optional[Dict[int, dict]],
                      metric: str) -> dict:
    """The validation set's standard error of the variant's metric, or with
    ``base`` of its paired difference to the twin, pooled over seeds."""
    halves = _halves_by_seed(mine, metric)
    if base is not None:
        twin = _halves_by_seed(base, metric)
        halves = {seed: (a - twin[seed][0], b - twin[seed][1])
                  for seed, (a, b) in halves.items() if seed in twin}
    return evaluation_se(list(halves.values()))


def _late_gain_of(good: Dict[int, dict], metric: str) -> dict:
    """The gain of ``metric`` over the last quarter of training, per seed
    (from each cell's validation curve), with its interval over seeds."""
    gains, spans, reasons = {}, set(), set()
    for seed, result in sorted(good.items()):
        gain = late_gain(result.get('curve'), metric)
        if gain['gain'] is None:
            reasons.add(gain['reason'])
        else:
            gains[seed] = gain['gain']
            spans.add((gain['from_iter'], gain['to_iter']))
    summary = _summary_of(gains)
    # One span when every seed ran the same budget.
    span = sorted(spans)[0] if len(spans) == 1 else (None, None)
    summary.update(from_iter=span[0], to_iter=span[1],
                   reason='; '.join(sorted(reasons)) or None)
    return summary


def _gmacs_per_image(profile: dict) -> Optional[float]:
    if profile.get('macs') is None:
        return None
    return profile['macs'] / profile.get('batch_size', 1) / 1e9


def summarize(suite: Suite, cells: List[Cell], results: List[dict],
              profiles: Dict) -> List[dict]:
    """One row per task and variant: per-seed values, mean and interval of
    every metric and of the training time per iteration, the paired
    difference to the task's standard twin, and the variant's profile."""
    rows = []
    for task in suite.tasks:
        good = {variant: {} for variant in task.variants}
        failed = {variant: [] for variant in task.variants}
        for cell, result in zip(cells, results):
            if cell.task.name != task.name:
                continue
            if result.get('status') == 'ok':
                good[cell.variant][cell.seed] = result
            else:
                failed[cell.variant].append(
                    dict(seed=cell.seed, error=result.get('error')))
        base = good[task.baseline]
        for variant in task.variants:
            mine = good[variant]
            row = dict(task=task.name, variant=variant,
                       config=task.variants[variant],
                       baseline=task.baseline, seeds=sorted(mine),
                       failed=failed[variant], max_iters=task.max_iters,
                       image_size=list(task.image_size))
            row['metrics'] = {
                m: _summary_of(_metric_by_seed(mine, m))
                for m in task.metrics
            }
            row['late_gain'] = {m: _late_gain_of(mine, m)
                                for m in task.metrics}
            row['evaluation_se'] = {m: _evaluation_se_of(mine, None, m)
                                    for m in task.metrics}
            row['difference'] = None if variant == task.baseline else {
                m: dict(paired_difference(_metric_by_seed(mine, m),
                                          _metric_by_seed(base, m)),
                        twin_late_gain=_late_gain_of(base, m)['mean'],
                        evaluation_se=_evaluation_se_of(mine, base, m)['se'])
                for m in task.metrics
            }
            row['train_time_per_iter'] = _summary_of({
                seed: r['train_time_per_iter']
                for seed, r in sorted(mine.items())
                if r.get('train_time_per_iter')
            })
            row['profile'] = profiles.get((task.name, variant), {})
            row['gmacs_per_image'] = _gmacs_per_image(row['profile'])
            rows.append(row)
        correct_for_multiplicity(task, [r for r in rows
                                        if r['task'] == task.name])
    return rows


SECONDARY = 'secondary metric: no verdict'


def correct_for_multiplicity(task: Task, rows: List[dict]) -> None:
    """Verdicts on the task's primary metric only, with Holm's correction
    across its variants (controls included: they are comparisons too);
    the other metrics keep their intervals as secondary results. Each
    difference keeps its uncorrected verdict and gets its p-value and
    Holm-adjusted p-value."""
    compared = [r for r in rows if r['difference'] is not None]
    primary = {r['variant']: r['difference'][task.primary_metric]
               for r in compared}
    for d in primary.values():
        d['p_value'] = p_value(d)
    adjusted = holm_adjusted({v: d['p_value'] for v, d in primary.items()})
    for row in compared:
        for metric, d in row['difference'].items():
            d['verdict_uncorrected'] = d['verdict']
            if metric == task.primary_metric:
                d['holm_p'] = adjusted[row['variant']]
                d['verdict'] = corrected_verdict(d, d['holm_p'])
            else:
                d['verdict'] = SECONDARY


def task_checks(task: Task, rows: List[dict]) -> dict:
    """What a verdict of the task rests on, on its primary metric: the
    median and largest relative MDE of the non-control variants, each
    control behind (after the correction, and on every seed), the twin on
    a plateau (its last-quarter gain below half the median MDE) and the
    evaluation noise below the seed noise."""
    metric = task.primary_metric
    by_variant = {r['variant']: r for r in rows}
    mdes = [((by_variant[v]['difference'] or {}).get(metric, {}).get('mde')
             or {}) for v in task.compared if v in by_variant]
    relative = sorted(m['relative'] for m in mdes
                      if m.get('relative') is not None)
    absolute = sorted(m['absolute'] for m in mdes
                      if m.get('absolute') is not None)
    controls = {}
    for variant in task.controls:
        d = ((by_variant.get(variant) or {}).get('difference') or {}).get(
            metric) or {}
        controls[variant] = dict(
            verdict=d.get('verdict'),
            behind_every_seed=bool(d.get('values')) and all(
                v < 0 for v in d['values']),
            seeds=d.get('n', 0))
    twin = by_variant.get(task.baseline) or {}
    gain = ((twin.get('late_gain') or {}).get(metric) or {}).get('mean')
    half_mde = statistics.median(absolute) / 2 if absolute else None
    se = ((twin.get('evaluation_se') or {}).get(metric) or {}).get('se')
    sd = ((twin.get('metrics') or {}).get(metric) or {}).get('std')
    return dict(
        metric=metric,
        seeds=sorted(set(twin.get('seeds') or [])),
        median_relative_mde=statistics.median(relative) if relative else None,
        max_relative_mde=relative[-1] if relative else None,
        controls=controls,
        controls_behind=bool(controls) and all(
            c['verdict'] == BEHIND and c['behind_every_seed']
            for c in controls.values()),
        twin_late_gain=gain,
        twin_plateau=None if gain is None or half_mde is None else
        gain < half_mde,
        half_mde=half_mde,
        evaluation_se=se, seed_std=sd,
        evaluation_below_seed_noise=None if se is None or sd is None else
        se < sd)


# ------------------------------------------------------------------ text
def _fmt(value, digits=3, sign=False):
    if value is None:
        return '-'
    return f'{value:+.{digits}f}' if sign else f'{value:.{digits}f}'


def format_interval(summary: dict, digits: int = 3,
                    sign: bool = False) -> str:
    """'mean [low, high]', or just the mean when there is no interval."""
    if summary['mean'] is None:
        return '-'
    text = _fmt(summary['mean'], digits, sign)
    if summary['low'] is not None:
        text += (f" [{_fmt(summary['low'], digits, sign)}, "
                 f"{_fmt(summary['high'], digits, sign)}]")
    return text


def _per_seed(summary: dict, digits: int = 3) -> str:
    return ', '.join(f'{v:.{digits}f}' for v in summary['values']) or '-'


def machine() -> str:
    load = ', '.join(f'{v:.1f}' for v in os.getloadavg())
    return (f'{platform.processor() or platform.machine()}, '
            f'{os.cpu_count()} cores, {torch.get_num_threads()} threads, '
            f'torch {torch.__version__}, Python '
            f'{platform.python_version()}; load average {load} when the '
            'report was written')


def _row_table(header: List[str], rows: List[List[str]]) -> List[str]:
    return (['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)] +
            ['| ' + ' | '.join(r) + ' |' for r in rows] + [''])


def _task_section(task: Task, rows: List[dict], digits: Dict[str,
                                                             int]) -> list:
    budget = (f'{task.max_iters} iterations' if task.max_iters else
              "the config's own schedule")
    pct = round(CONFIDENCE * 100)
    lines = [
        f'## {task.name}', '',
        f'Budget: {budget} per run, the same for every variant; metrics on '
        f'the val split. Standard twin: `{task.baseline}`. Cells: mean '
        f'[{pct}% Student-t interval over seeds] and the per-seed values. '
        f'Primary metric: `{task.primary_metric}` (verdicts, with Holm\'s '
        'correction across the variants)' +
        (f"; secondary: {', '.join(f'`{m}`' for m in task.metrics if m != task.primary_metric)}"
         ' (intervals only)' if len(task.metrics) > 1 else '') + '.',
        ''
    ]
    lines += _row_table(
        ['variant', 'seeds'] + [f'{m}' for m in task.metrics] +
        [f'{m} per seed' for m in task.metrics],
        [[r['variant'], ' '.join(map(str, r['seeds'])) or '-'] +
         [format_interval(r['metrics'][m], digits[m])
          for m in task.metrics] +
         [_per_seed(r['metrics'][m], digits[m]) for m in task.metrics]
         for r in rows])
    compared = [r for r in rows if r['difference'] is not None]
    if compared:
        lines += [
            f'Paired difference to `{task.baseline}` (variant minus twin, '
            f'seed by seed over the seeds both finished; {pct}% interval):',
            ''
        ]
        lines += _row_table(
            ['variant'] + [f'Δ {m}' for m in task.metrics] +
            [f'MDE {m} (% of twin)' for m in task.metrics] +
            [f'verdict {m}' for m in task.metrics],
            [[r['variant']] +
             [format_interval(r['difference'][m], digits[m], sign=True)
              for m in task.metrics] +
             [format_mde(r['difference'][m].get('mde'), digits[m])
              for m in task.metrics] +
             [r['difference'][m]['verdict'] for m in task.metrics]
             for r in compared])
        lines += _twin_gain_lines(task, rows, digits)
        lines += _noise_lines(task, rows, digits)
    size = 'x'.join(map(str, task.image_size))
    lines += _row_table(
        ['variant', 'params (M)', f'GMACs / image ({size})',
         'train s/iter', 'latency (ms, batch 2)', 'train peak (MiB)',
         'infer peak (MiB)'],
        [[r['variant'], _fmt(r['profile'].get('params') and
                             r['profile']['params'] / 1e6, 2),
          _fmt(r['gmacs_per_image'], 3),
          format_interval(r['train_time_per_iter'], 3),
          _fmt(r['profile'].get('latency_ms'), 1),
          _fmt(r['profile'].get('train_peak_mib'), 0),
          _fmt(r['profile'].get('infer_peak_mib'), 0)] for r in rows])
    lines += verdict_lines(task, rows, digits)
    lines += check_lines(task_checks(task, rows), digits[task.primary_metric])
    for row in rows:
        if row['profile'].get('error'):
            lines.append(f"- PROFILE FAILED {row['variant']}: "
                         f"`{row['profile']['error']}`")
        for failure in row['failed']:
            lines.append(f"- FAILED {row['variant']} seed "
                         f"{failure['seed']}: `{failure['error']}`")
    return lines + ['']


def format_mde(mde: Optional[dict], digits: int = 3) -> str:
    """'0.040 (7.7%)': the minimum detectable difference, absolute and
    relative to the twin's mean; '-' without one."""
    if not mde or mde.get('absolute') is None:
        return '-'
    text = _fmt(mde['absolute'], digits)
    if mde.get('relative') is not None:
        text += f" ({mde['relative']:.1%})"
    return text


def _twin_gain_lines(task: Task, rows: List[dict],
                     digits: Dict[str, int]) -> List[str]:
    """How much the twin still gained over the last quarter of training,
    beside the detectable difference: a gain as large as the MDE means the
    budget ends mid-climb."""
    twin = next((r for r in rows if r['variant'] == task.baseline), {})
    gains = twin.get('late_gain') or {}
    parts = []
    for metric in task.metrics:
        g = gains.get(metric) or {}
        if g.get('mean') is None:
            parts.append(f"{metric} - ({g.get('reason') or 'no curve'})")
            continue
        span = '' if g['from_iter'] is None else \
            f" (iterations {g['from_iter']:g}-{g['to_iter']:g})"
        parts.append(
            f'{metric} {format_interval(g, digits[metric], True)}{span}')
    return [f'Gain of `{task.baseline}` over the last quarter of training '
            '(from its validation curves; mean [interval] over seeds), '
            'beside the MDE above: ' + '; '.join(parts) + '.', '']


def _noise_lines(task: Task, rows: List[dict],
                 digits: Dict[str, int]) -> List[str]:
    """Evaluation noise (the finite validation set, from its two halves)
    beside seed noise, for the twin's metric and each paired difference."""
    twin = next((r for r in rows if r['variant'] == task.baseline), {})
    parts = []
    for metric in task.metrics:
        se = ((twin.get('evaluation_se') or {}).get(metric) or {}).get('se')
        sd = twin['metrics'][metric]['std'] if twin else None
        if se is None:
            continue
        differences = [(r['variant'], r['difference'][metric])
                       for r in rows if r['difference'] is not None]
        pairs = [f"{variant} {_fmt(d['evaluation_se'], digits[metric])} / "
                 f"{_fmt(d['std'], digits[metric])}"
                 for variant, d in differences
                 if d.get('evaluation_se') is not None]
        parts.append(
            f'{metric}: `{task.baseline}` {_fmt(se, digits[metric])} / '
            f'{_fmt(sd, digits[metric])}' +
            (f"; paired differences {', '.join(pairs)}" if pairs else ''))
    if not parts:
        return []
    return ['Evaluation noise / seed noise (standard error from the finite '
            'validation set, from its two halves, pooled over seeds / '
            'standard deviation over seeds): ' + '. '.join(parts) + '.', '']


def verdict_lines(task: Task, rows: List[dict],
                  digits: Dict[str, int]) -> List[str]:
    """One sentence per compared variant and metric."""
    out = []
    for row in rows:
        if row['difference'] is None:
            continue
        for metric in (task.primary_metric, ):
            d = row['difference'][metric]
            name = f"{row['variant']} vs {task.baseline} on {metric}"
            if d['n'] == 0:
                out.append(f'- {name}: no seed finished on both; nothing '
                           'to compare.')
                continue
            seeds = f"seed{'s' if d['n'] > 1 else ''} " + \
                ', '.join(map(str, d['seeds']))
            if d['low'] is None:
                out.append(f"- {name}: {_fmt(d['mean'], digits[metric], True)}"
                           f' from {seeds} alone, no interval: '
                           f"{d['verdict']}.")
                continue
            out.append(f'- {name}: '
                       f'{format_interval(d, digits[metric], sign=True)} '
                       f"over {seeds}{_p_values(d)}: {d['verdict']}"
                       f'{_ruled_out(d, digits[metric])}'
                       f'{_evaluation_caveat(d, digits[metric])}.')
    return out + [''] if out else []


def _p_values(difference: dict) -> str:
    if difference.get('holm_p') is None:
        return ''
    return (f" (p {difference['p_value']:.3g}, Holm-adjusted "
            f"{difference['holm_p']:.3g})")


def _yes_no(value: Optional[bool]) -> str:
    return '-' if value is None else ('yes' if value else 'NO')


def check_lines(checks: dict, digits: int) -> List[str]:
    """The task's checks (:func:`task_checks`) as a list."""
    pct = (lambda v: '-' if v is None else f'{v:.1%}')
    lines = [f"Checks on `{checks['metric']}` ({len(checks['seeds'])} "
             'seeds):', '',
             f"- MDE of the non-control variants, relative to the twin: "
             f"median {pct(checks['median_relative_mde'])}, largest "
             f"{pct(checks['max_relative_mde'])}"]
    for variant, c in checks['controls'].items():
        lines.append(f"- control `{variant}`: {c['verdict']}; behind on "
                     f"every seed: {_yes_no(c['behind_every_seed'])}")
    if not checks['controls']:
        lines.append('- no control: nothing shows that this budget '
                     'detects a known harm')
    lines.append(
        f"- twin on a plateau (last-quarter gain "
        f"{_fmt(checks['twin_late_gain'], digits, True)} below half the "
        f"median MDE, {_fmt(checks['half_mde'], digits)}): "
        f"{_yes_no(checks['twin_plateau'])}")
    lines.append(
        f"- evaluation noise below seed noise ("
        f"{_fmt(checks['evaluation_se'], digits)} vs "
        f"{_fmt(checks['seed_std'], digits)}): "
        f"{_yes_no(checks['evaluation_below_seed_noise'])}")
    return lines + ['']


def _evaluation_caveat(difference: dict, digits: int) -> str:
    """For an "ahead" / "behind": whether the validation set's own noise
    could have made it. The seeds' interval leaves out the sampling error of
    the one validation set all seeds share; when a 95% band of that error
    alone (1.96 se) reaches zero, the verdict may belong to the set."""
    se = difference.get('evaluation_se')
    if difference['verdict'] == NO_DIFFERENCE or se is None or \
            1.96 * se < abs(difference['mean']):
        return ''
    return ('; but the validation set\'s own standard error of this '
            f'difference, {_fmt(se, digits)}, is as large as that: confirm '
            'it on more or other validation images')


def _ruled_out(difference: dict, digits: int) -> str:
    """For a verdict that finds no difference: which differences the run
    would have found (the MDE)."""
    mde = difference.get('mde') or {}
    if difference['verdict'] != NO_DIFFERENCE or mde.get('absolute') is None:
        return ''
    size = _fmt(mde['absolute'], digits)
    if mde.get('relative') is not None:
        size += (f" ({mde['relative']:.1%} of the twin's "
                 f"{_fmt(mde['reference'], digits)})")
    return (f'; differences larger than {size} either way would have been '
            f"detected with {mde['power']:.0%} power")


def _digits(rows: List[dict]) -> Dict[str, int]:
    """3 decimals for metrics in [0, 1] (COCO mAP), 2 for percentages."""
    digits = {}
    for row in rows:
        for metric, s in row['metrics'].items():
            if any(abs(v) > 1 for v in s['values']):
                digits[metric] = 2
            else:
                digits.setdefault(metric, 3)
    return digits


def invocation() -> str:
    """The command line of this process, as it could be typed again from
    the working directory (the interpreter relative to it when inside)."""
    python = sys.executable
    relative = osp.relpath(python)
    if not relative.startswith('..'):
        python = relative
    return shlex.join([python] + sys.argv)


def markdown(suite: Suite, rows: List[dict], wall_time_s: float,
             cell_time_s: float, plots: List[str], jobs: int = 1,
             reruns: List[str] = (), timing: Optional[dict] = None) -> str:
    """The report; ``reruns``: one line per cell rerun this time because
    what produced its earlier result changed; ``timing``: which invocation
    measured what (:mod:`~.invocations`; without it, this invocation's
    ``wall_time_s``)."""
    lines = [f'# Suite `{suite.name}`', '',
             f'- suite file: `{suite.source}`; seeds: {suite.seeds}' + ''.join(
                 f'; {t.name}: {t.seeds}' for t in suite.tasks
                 if t.seeds is not None and t.seeds != suite.seeds),
             f'- command: `{invocation()}`',
             f'- machine: {machine()}',
             f'- report written {time.strftime("%Y-%m-%d %H:%M")}' + (
                 '' if timing else
                 f'; this invocation took {wall_time_s / 60:.1f} min; the '
                 f'cells (train + eval) took {cell_time_s / 60:.1f} min in '
                 'all (finished cells are not re-run)')]
    lines += timing_lines(timing) if timing else []
    if jobs > 1:
        lines.append(f'- cells ran {jobs} at a time, sharing the machine: '
                     'their training times are contended, not comparable '
                     'with a one-job run')
    lines += [f'- rerun (earlier result out of date): {line}'
              for line in reruns]
    lines.append('')
    for name, data in suite.datasets.items():
        if data.get('generate') and any(t.dataset == name
                                        for t in suite.tasks):
            lines.append(f'- dataset `{name}`: generated at `{data["root"]}`'
                         f' ({data.get("num_train")} train / '
                         f'{data.get("num_val")} val images, seed '
                         f'{data.get("seed", 0)})')
    lines.append('')
    digits = _digits(rows)
    for task in suite.tasks:
        lines += _task_section(
            task, [r for r in rows if r['task'] == task.name], digits)
    lines += [
        'Verdicts are made on each task\'s primary metric only: "ahead" or '
        '"behind" when the paired t test of the difference to the twin '
        'rejects zero after Holm\'s correction across the task\'s variants '
        f'(family-wise error at most {1 - CONFIDENCE:.0%}); with one seed '
        f'there is no test. The {CONFIDENCE:.0%} intervals are per '
        'comparison, uncorrected; secondary metrics get intervals and no '
        'verdict (docs/suite.md, "One primary metric"). MDE '
        '(minimum detectable difference): the smallest paired difference '
        f'this run would detect with {POWER:.0%} power at the two-sided '
        f'{CONFIDENCE:.0%} level, (t(1-α/2, n-1) + t(power, n-1)) s_d / '
        '√n over the n paired seeds with standard deviation s_d of their '
        'differences (docs/suite.md).', '',
        COST_NOTES, ''
    ]
    lines += [f'![{osp.basename(p)}]({osp.basename(p)})' for p in plots]
    return '\n'.join(lines) + '\n'


def write_csv(path: str, rows: List[dict]) -> None:
    """One line per task, variant and metric."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow([
            'task', 'variant', 'baseline', 'metric', 'mean', 'ci_low',
            'ci_high', 'std', 'n', 'seeds', 'values', 'diff_mean',
            'diff_ci_low', 'diff_ci_high', 'verdict', 'params',
            'gmacs_per_image', 'image_size', 'train_s_per_iter',
            'train_s_per_iter_ci_low', 'train_s_per_iter_ci_high',
            'latency_ms', 'train_peak_mib', 'infer_peak_mib', 'failed_seeds',
            'mde', 'mde_relative', 'late_gain', 'twin_late_gain',
            'evaluation_se', 'diff_evaluation_se'
        ])
        for row in rows:
            p, t = row['profile'], row['train_time_per_iter']
            for metric, s in row['metrics'].items():
                d = (row['difference'] or {}).get(metric, {})
                writer.writerow([
                    row['task'], row['variant'], row['baseline'], metric,
                    s['mean'], s['low'], s['high'], s['std'], s['n'],
                    ' '.join(map(str, s['seeds'])),
                    ' '.join(f'{v:.6g}' for v in s['values']),
                    d.get('mean'), d.get('low'), d.get('high'),
                    d.get('verdict'), p.get('params'),
                    row['gmacs_per_image'],
                    'x'.join(map(str, row['image_size'])), t['mean'],
                    t['low'], t['high'], p.get('latency_ms'),
                    p.get('train_peak_mib'), p.get('infer_peak_mib'),
                    ' '.join(str(f['seed']) for f in row['failed']),
                    (d.get('mde') or {}).get('absolute'),
                    (d.get('mde') or {}).get('relative'),
                    row['late_gain'][metric]['mean'],
                    d.get('twin_late_gain'),
                    row['evaluation_se'][metric]['se'],
                    d.get('evaluation_se')
                ])


def write_report(suite: Suite, cells: List[Cell], results: List[dict],
                 profiles: Dict, wall_time_s: float, jobs: int = 1,
                 timing: Optional[dict] = None) -> dict:
    """``timing``: which invocation measured what (:mod:`~.invocations`);
    then ``wall_time_s`` in results.json is the whole run's."""
    from .plots import plot_all
    rows = summarize(suite, cells, results, profiles)
    mmengine.mkdir_or_exist(suite.work_dir)
    plots = plot_all(suite, cells, rows, results)
    files = dict(json=osp.join(suite.work_dir, 'results.json'),
                 csv=osp.join(suite.work_dir, 'results.csv'),
                 markdown=osp.join(suite.work_dir, 'results.md'))
    mmengine.dump(dict(suite=suite.name, source=suite.source,
                       command=invocation(),
                       seeds=suite.seeds, machine=machine(),
                       confidence=CONFIDENCE,
                       wall_time_s=timing['run_wall_time_s'] if timing
                       else wall_time_s, timing=timing, jobs=jobs,
                       summary=rows,
                       checks={t.name: task_checks(
                           t, [r for r in rows if r['task'] == t.name])
                           for t in suite.tasks},
                       cells=[dict(task=c.task.name, variant=c.variant,
                                   seed=c.seed, work_dir=c.work_dir, **r)
                              for c, r in zip(cells, results)]),
                  files['json'], indent=2)
    write_csv(files['csv'], rows)
    with open(files['markdown'], 'w') as f:
        cell_time_s = sum(r.get('wall_time_s', 0) for r in results)
        reruns = [f'{c.label}: {r["rerun_because"]}'
                  for c, r in zip(cells, results) if r.get('rerun_because')]
        f.write(markdown(suite, rows, wall_time_s, cell_time_s, plots,
                         jobs, reruns, timing))
    failed = sum(r.get('status') != 'ok' for r in results)
    return dict(files, plots=plots, failed=failed, summary=rows,
                checks=mmengine.load(files['json'])['checks'])


def record_seeding(report: dict) -> None:
    """Add ``report['seeding']`` (--until-mde: per task, its seeds and why
    they stopped) to the report's results.json and results.md."""
    data = mmengine.load(report['json'])
    data['seeding'] = report['seeding']
    mmengine.dump(data, report['json'], indent=2)
    lines = ['', '## Seeds until the run can decide (--until-mde)', '']
    lines += [f"- {task}: seeds {s['seeds']}: {s['reason']}"
              for task, s in report['seeding'].items()]
    with open(report['markdown'], 'a') as f:
        f.write('\n'.join(lines) + '\n')


def seed_plan_lines(plan: List[dict], relative: float,
                    source: str) -> List[str]:
    """The planning aid as a table (:func:`~.stats.seed_plan`)."""
    lines = [f'Seeds needed to detect a paired difference of {relative:.1%} '
             f"of the twin's mean with {POWER:.0%} power at the two-sided "
             f'{CONFIDENCE:.0%} level, from the spread s_d of the per-seed '
             f'differences in {source} (the same budget assumed):', '']
    lines += _row_table(
        ['task', 'variant', 'metric', "twin's mean", 'target Δ',
         's_d (seeds)', 'seeds needed', 'note'],
        [[p['task'], p['variant'], p['metric'], _fmt(p['twin_mean'], 4),
          _fmt(p['target'], 4),
          f"{_fmt(p['std'], 4)} ({p['n']})",
          '-' if p['seeds'] is None else str(p['seeds']),
          p['note'] or ''] for p in plan])
    return lines


def seed_plan_report(path: str, work_dir: Optional[str],
                     relative: float) -> str:
    """The planning aid for the suite file ``path``: its finished run's
    results.json (in ``work_dir``, default the suite's) as a table."""
    if not relative > 0:
        raise ValueError(f'--plan-seeds: the relative difference must be '
                         f'positive, e.g. 0.03 for 3%, got {relative}')
    results = osp.join(load_suite(path, work_dir).work_dir, 'results.json')
    if not osp.isfile(results):
        raise FileNotFoundError(
            f'--plan-seeds: no {results}: it plans from a finished run; run '
            f'the suite first, or pass the --work-dir it wrote to')
    rows = mmengine.load(results)['summary']
    return '\n'.join(seed_plan_lines(seed_plan(rows, relative), relative,
                                      results))
