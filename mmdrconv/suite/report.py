"""results.json / .csv / .md and plots of a suite run."""
import csv
import glob
import json
import os.path as osp
import platform
import statistics
import time
from typing import Dict, List

import mmengine
import torch

from .spec import Cell, Suite


def _stats(values: List[float]) -> dict:
    if not values:
        return dict(mean=None, std=None, n=0, values=[])
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return dict(mean=statistics.fmean(values), std=std, n=len(values),
                values=values)


def summarize(suite: Suite, cells: List[Cell], results: List[dict],
              profiles: Dict) -> List[dict]:
    rows = []
    for task in suite.tasks:
        baseline = None
        for variant in task.variants:
            mine = [(c, r) for c, r in zip(cells, results)
                    if c.task is task and c.variant == variant]
            ok = [r for _, r in mine if r.get('status') == 'ok']
            row = dict(task=task.name, variant=variant,
                       config=task.variants[variant],
                       seeds=[c.seed for c, r in mine
                              if r.get('status') == 'ok'],
                       failed=[dict(seed=c.seed, error=r.get('error'))
                               for c, r in mine if r.get('status') != 'ok'],
                       max_iters=task.max_iters,
                       metrics={m: _stats([r['metrics'][m] for r in ok
                                           if m in r['metrics']])
                                for m in task.metrics},
                       train_time_per_iter=_stats(
                           [r['train_time_per_iter'] for r in ok
                            if r.get('train_time_per_iter')])['mean'],
                       profile=profiles.get((task.name, variant), {}))
            if baseline is None:
                baseline = row
            row['delta_vs_' + baseline['variant']] = {
                m: (row['metrics'][m]['mean'] - baseline['metrics'][m]['mean'])
                if row['metrics'][m]['mean'] is not None
                and baseline['metrics'][m]['mean'] is not None else None
                for m in task.metrics
            }
            rows.append(row)
    return rows


def _fmt(value, digits=3):
    return '-' if value is None else f'{value:.{digits}f}'


def _machine() -> str:
    return (f'{platform.processor() or platform.machine()}, '
            f'{torch.get_num_threads()} threads, torch {torch.__version__}, '
            f'Python {platform.python_version()}')


def _markdown(suite: Suite, rows: List[dict], wall_time_s: float,
              cell_time_s: float, plots: List[str]) -> str:
    lines = [f'# Suite `{suite.name}`: standard convolution vs DRConv', '',
             f'- suite file: `{suite.source}`; seeds: {suite.seeds}',
             f'- machine: {_machine()}',
             f'- report written {time.strftime("%Y-%m-%d %H:%M")}; this '
             f'invocation took {wall_time_s / 60:.1f} min; the cells '
             f'(train + eval) took {cell_time_s / 60:.1f} min in all '
             '(finished cells are not re-run)', '']
    for name, data in suite.datasets.items():
        if data.get('generate'):
            lines.append(f'- dataset `{name}`: generated at `{data["root"]}`'
                         f' ({data.get("num_train")} train / '
                         f'{data.get("num_val")} val images, seed '
                         f'{data.get("seed", 0)})')
    lines.append('')
    for task in suite.tasks:
        task_rows = [r for r in rows if r['task'] == task.name]
        budget = (f'{task.max_iters} iterations' if task.max_iters else
                  "the config's own schedule")
        lines += [f'## {task.name}', '',
                  f'Budget: {budget} per run, same for every variant; '
                  'metrics on the val split, mean ± std over seeds '
                  '(per-seed values in brackets).', '']
        header = ['variant'] + [f'{m}' for m in task.metrics] + [
            f'Δ {task.metrics[0]}', 'params (M)', 'GMACs', 'train s/iter',
            'latency (ms)', 'train peak (MiB)', 'infer peak (MiB)']
        lines.append('| ' + ' | '.join(header) + ' |')
        lines.append('|' + '---|' * len(header))
        for row in task_rows:
            cells = [row['variant']]
            for metric in task.metrics:
                s = row['metrics'][metric]
                cells.append('-' if s['mean'] is None else
                             f"{s['mean']:.3f} ± {s['std']:.3f} "
                             f"[{', '.join(f'{v:.3f}' for v in s['values'])}]")
            delta = next(v for k, v in row.items()
                         if k.startswith('delta_vs_'))[task.metrics[0]]
            p = row['profile']
            cells += [
                '-' if delta is None else f'{delta:+.3f}',
                _fmt(p.get('params') and p['params'] / 1e6, 2),
                _fmt(p.get('macs') and p['macs'] / 1e9, 2),
                _fmt(row['train_time_per_iter']),
                _fmt(p.get('latency_ms'), 1),
                _fmt(p.get('train_peak_mib'), 0),
                _fmt(p.get('infer_peak_mib'), 0)
            ]
            lines.append('| ' + ' | '.join(cells) + ' |')
        lines.append('')
        lines += _verdict(task, task_rows)
        for row in task_rows:
            for failure in row['failed']:
                lines.append(f"- FAILED {row['variant']} seed "
                             f"{failure['seed']}: `{failure['error']}`")
        lines.append('')
    lines += ['Latency and peak memory: a batch of 2 images of the task size '
              '(BatchNorm needs 2 in training), measured in a separate '
              'process per variant; peak memory is the resident-set growth '
              'of one step. GMACs count '
              'conv/linear layers, DRConv as one conv per pixel plus guide '
              'and generator.', '']
    lines += [f'![{osp.basename(p)}]({osp.basename(p)})' for p in plots]
    return '\n'.join(lines) + '\n'


def _verdict(task, rows) -> List[str]:
    """One honest sentence per variant and metric against the first variant.
    """
    if len(rows) < 2:
        return []
    out = []
    for row in rows[1:]:
        for metric in task.metrics:
            base, s = rows[0]['metrics'][metric], row['metrics'][metric]
            name = f"{row['variant']} vs {rows[0]['variant']} on {metric}"
            if s['mean'] is None or base['mean'] is None:
                out.append(f'- {name}: no result to compare.')
                continue
            delta = s['mean'] - base['mean']
            if min(s['n'], base['n']) < 2:
                out.append(f'- {name}: {delta:+.3f} from a single seed, '
                           'which cannot separate it from seed noise.')
                continue
            spread = max(s['std'], base['std'])
            if abs(delta) <= spread:
                word = 'within the seed spread'
            else:
                word = 'better' if delta > 0 else 'worse'
            out.append(f'- {name}: {delta:+.3f}, {word} (largest seed std '
                       f"{spread:.3f}; {s['n']} vs {base['n']} seeds, too "
                       'few for a significance test).')
    return out + ['']


def _training_curve(cell: Cell):
    points = {}
    for path in glob.glob(osp.join(cell.work_dir, '*', 'vis_data',
                                   'scalars.json')):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'loss' in record:
                    points[record['step']] = record['loss']
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def _task_panels(plt, count: int):
    fig, axes = plt.subplots(1, count, figsize=(4.5 * count, 3.6),
                             squeeze=False)
    return fig, axes[0]


def _save(plt, fig, folder: str, name: str) -> str:
    fig.tight_layout()
    path = osp.join(folder, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plots(suite: Suite, cells: List[Cell], rows: List[dict]) -> List[str]:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    paths = []
    metric_panels = [(t, m) for t in suite.tasks for m in t.metrics]
    fig, axes = plt.subplots(1, len(metric_panels),
                             figsize=(4 * len(metric_panels), 3.6),
                             squeeze=False)
    for ax, (task, metric) in zip(axes[0], metric_panels):
        task_rows = [r for r in rows if r['task'] == task.name]
        for i, row in enumerate(task_rows):
            s = row['metrics'][metric]
            if s['mean'] is None:
                continue
            # Points, not bars from zero: the differences are small.
            ax.errorbar(i, s['mean'], yerr=s['std'], fmt='o', color=f'C{i}',
                        capsize=6, markersize=8)
            ax.scatter([i + 0.08] * s['n'], s['values'], color='k', s=12,
                       zorder=3, label='seeds' if i == 0 else None)
        ax.set_xticks(range(len(task_rows)),
                      [r['variant'] for r in task_rows])
        ax.set_xlim(-0.5, len(task_rows) - 0.5)
        ax.legend(fontsize=7)
        ax.set_title(f'{task.name}\n{metric}', fontsize=9)
    paths.append(_save(plt, fig, suite.work_dir, 'metrics.png'))

    fig, axes = _task_panels(plt, len(suite.tasks))
    for ax, task in zip(axes, suite.tasks):
        metric = task.metrics[0]
        for row in (r for r in rows if r['task'] == task.name):
            macs = row['profile'].get('macs')
            s = row['metrics'][metric]
            if macs is None or s['mean'] is None:
                continue
            ax.errorbar(macs / 1e9, s['mean'], yerr=s['std'], fmt='o',
                        capsize=4, label=row['variant'])
        ax.set_xlabel('GMACs (one image)')
        ax.set_ylabel(metric)
        ax.set_title(task.name, fontsize=9)
        ax.legend(fontsize=8)
    paths.append(_save(plt, fig, suite.work_dir, 'accuracy_vs_macs.png'))

    fig, axes = _task_panels(plt, len(suite.tasks))
    colors = {}
    for ax, task in zip(axes, suite.tasks):
        for cell in (c for c in cells if c.task is task):
            steps, losses = _training_curve(cell)
            if not steps:
                continue
            color = colors.setdefault(cell.variant, f'C{len(colors)}')
            ax.plot(steps, losses, color=color, alpha=0.8,
                    label=f'{cell.variant} s{cell.seed}')
        ax.set_xlabel('iteration')
        ax.set_ylabel('training loss')
        ax.set_title(task.name, fontsize=9)
        ax.legend(fontsize=7)
    paths.append(_save(plt, fig, suite.work_dir, 'training_curves.png'))
    return paths


def write_report(suite: Suite, cells: List[Cell], results: List[dict],
                 profiles: Dict, wall_time_s: float) -> dict:
    rows = summarize(suite, cells, results, profiles)
    mmengine.mkdir_or_exist(suite.work_dir)
    plots = _plots(suite, cells, rows)
    files = dict(json=osp.join(suite.work_dir, 'results.json'),
                 csv=osp.join(suite.work_dir, 'results.csv'),
                 markdown=osp.join(suite.work_dir, 'results.md'))
    mmengine.dump(dict(suite=suite.name, source=suite.source,
                       seeds=suite.seeds, machine=_machine(),
                       wall_time_s=wall_time_s, summary=rows,
                       cells=[dict(task=c.task.name, variant=c.variant,
                                   seed=c.seed, work_dir=c.work_dir, **r)
                              for c, r in zip(cells, results)]),
                  files['json'], indent=2)
    with open(files['csv'], 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['task', 'variant', 'metric', 'mean', 'std', 'n',
                         'values', 'params', 'macs', 'train_s_per_iter',
                         'latency_ms', 'train_peak_mib', 'infer_peak_mib',
                         'failed_seeds'])
        for row in rows:
            p = row['profile']
            for metric, s in row['metrics'].items():
                writer.writerow([
                    row['task'], row['variant'], metric, s['mean'], s['std'],
                    s['n'], ' '.join(f'{v:.4f}' for v in s['values']),
                    p.get('params'), p.get('macs'),
                    row['train_time_per_iter'], p.get('latency_ms'),
                    p.get('train_peak_mib'), p.get('infer_peak_mib'),
                    ' '.join(str(f['seed']) for f in row['failed'])
                ])
    with open(files['markdown'], 'w') as f:
        cell_time_s = sum(r.get('wall_time_s', 0) for r in results)
        f.write(_markdown(suite, rows, wall_time_s, cell_time_s, plots))
    failed = sum(r.get('status') != 'ok' for r in results)
    return dict(files, plots=plots, failed=failed, summary=rows)
