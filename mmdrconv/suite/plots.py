"""Plots of a suite run: metrics per variant, accuracy against cost, and
training curves. Every accuracy point is the mean over seeds with its
Student-t interval as the error bar (none with a single seed)."""
import glob
import json
import os.path as osp
from typing import Callable, Dict, List, Optional

from .spec import Cell, Suite


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _error(summary: dict) -> Optional[float]:
    """Half-width of a symmetric t interval, None without one."""
    if summary.get('low') is None:
        return None
    return summary['high'] - summary['mean']


def _colors(suite: Suite) -> Dict[str, str]:
    """One colour per variant name, the same in every panel."""
    colors = {}
    for task in suite.tasks:
        for variant in task.variants:
            colors.setdefault(variant, f'C{len(colors) % 10}')
    return colors


def _panels(plt, count: int, width: float = 4.5):
    fig, axes = plt.subplots(1, max(1, count), figsize=(width * count, 3.8),
                             squeeze=False)
    return fig, axes[0]


def _save(plt, fig, folder: str, name: str) -> str:
    fig.tight_layout()
    path = osp.join(folder, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _metric_panels(suite: Suite):
    return [(task, metric) for task in suite.tasks for metric in task.metrics]


def plot_metrics(plt, suite: Suite, rows: List[dict]) -> str:
    panels = _metric_panels(suite)
    colors = _colors(suite)
    fig, axes = _panels(plt, len(panels), 4.2)
    for ax, (task, metric) in zip(axes, panels):
        task_rows = [r for r in rows if r['task'] == task.name]
        for i, row in enumerate(task_rows):
            s = row['metrics'][metric]
            if s['mean'] is None:
                continue
            # Points, not bars from zero: the differences are small.
            ax.errorbar(i, s['mean'], yerr=_error(s), fmt='o',
                        color=colors[row['variant']], capsize=6,
                        markersize=8)
            ax.scatter([i + 0.12] * s['n'], s['values'], color='k', s=10,
                       zorder=3, label='seeds' if i == 0 else None)
        ax.set_xticks(range(len(task_rows)),
                      [r['variant'] for r in task_rows], rotation=30,
                      ha='right', fontsize=8)
        ax.set_xlim(-0.5, len(task_rows) - 0.5)
        ax.set_title(f'{task.name}\n{metric} (mean, 95% CI)', fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(plt, fig, suite.work_dir, 'metrics.png')


def plot_accuracy_vs_cost(plt, suite: Suite, rows: List[dict],
                          cost: Callable[[dict], tuple], xlabel: Callable,
                          name: str) -> str:
    """One panel per task and metric: mean accuracy (with its interval)
    against ``cost(row) -> (x, x_error or None)``."""
    panels = _metric_panels(suite)
    colors = _colors(suite)
    fig, axes = _panels(plt, len(panels))
    for ax, (task, metric) in zip(axes, panels):
        for row in (r for r in rows if r['task'] == task.name):
            x, xerr = cost(row)
            s = row['metrics'][metric]
            if x is None or s['mean'] is None:
                continue
            ax.errorbar(x, s['mean'], xerr=xerr, yerr=_error(s), fmt='o',
                        capsize=4, color=colors[row['variant']],
                        label=row['variant'])
        ax.set_xlabel(xlabel(task), fontsize=8)
        ax.set_ylabel(f'{metric} (mean, 95% CI)', fontsize=8)
        ax.set_title(task.name, fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(plt, fig, suite.work_dir, name)


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


def plot_training_curves(plt, suite: Suite, cells: List[Cell]) -> str:
    colors = _colors(suite)
    fig, axes = _panels(plt, len(suite.tasks))
    for ax, task in zip(axes, suite.tasks):
        labelled = set()
        for cell in (c for c in cells if c.task.name == task.name):
            steps, losses = _training_curve(cell)
            if not steps:
                continue
            ax.plot(steps, losses, color=colors[cell.variant], alpha=0.6,
                    label=None if cell.variant in labelled else cell.variant)
            labelled.add(cell.variant)
        ax.set_xlabel('iteration')
        ax.set_ylabel('training loss (every seed)')
        ax.set_title(task.name, fontsize=9)
        if labelled:
            ax.legend(fontsize=7)
    return _save(plt, fig, suite.work_dir, 'training_curves.png')


def plot_validation_curves(plt, suite: Suite, cells: List[Cell],
                           results: List[dict]) -> str:
    """One panel per task and metric: every cell's validation curve."""
    panels = _metric_panels(suite)
    colors = _colors(suite)
    fig, axes = _panels(plt, len(panels))
    for ax, (task, metric) in zip(axes, panels):
        labelled = set()
        for cell, result in zip(cells, results):
            points = [(p['iter'], p['metrics'][metric])
                      for p in result.get('curve') or ()
                      if metric in p['metrics']]
            if cell.task.name != task.name or not points:
                continue
            ax.plot(*zip(*points), marker='o', markersize=3, alpha=0.6,
                    color=colors[cell.variant],
                    label=None if cell.variant in labelled else cell.variant)
            labelled.add(cell.variant)
        ax.set_xlabel('iteration')
        ax.set_ylabel(f'{metric} (val, every seed)', fontsize=8)
        ax.set_title(task.name, fontsize=9)
        if labelled:
            ax.legend(fontsize=7)
    return _save(plt, fig, suite.work_dir, 'validation_curves.png')


def plot_all(suite: Suite, cells: List[Cell], rows: List[dict],
             results: List[dict]) -> List[str]:
    plt = _pyplot()
    task_size = {t.name: 'x'.join(map(str, t.image_size))
                 for t in suite.tasks}
    return [
        plot_metrics(plt, suite, rows),
        plot_accuracy_vs_cost(
            plt, suite, rows, lambda r: (r['gmacs_per_image'], None),
            lambda t: f'GMACs per image ({task_size[t.name]} input)',
            'accuracy_vs_macs.png'),
        plot_accuracy_vs_cost(
            plt, suite, rows,
            lambda r: (r['train_time_per_iter']['mean'],
                       _error(r['train_time_per_iter'])),
            lambda t: 'training time per iteration (s, this machine; '
            'mean, 95% CI)', 'accuracy_vs_train_time.png'),
        plot_training_curves(plt, suite, cells),
        plot_validation_curves(plt, suite, cells, results),
    ]
