"""Seeds until the run can decide (``tools/suite.py SUITE --until-mde REL
--max-seeds N``).

After each round, a task whose median relative MDE over its non-control
variants (primary metric) is above ``REL`` gets one more seed, until it
meets the target or holds ``max_seeds``; finished cells are reused. The
rule reads only the spread of the paired differences (the MDE is a
function of their standard deviation and count), never their mean or
sign, so the decision to stop carries no information about which way a
difference goes; docs/suite.md ("Seeds until the run can decide") says why
that keeps the test's error rates.
"""
from typing import Callable, Dict, List, Optional

from .spec import load_suite


def next_seeds(checks: Dict[str, dict], seeds: Dict[str, List[int]],
               target: float, max_seeds: int) -> Dict[str, List[int]]:
    """The tasks that need another seed, with their seeds after it: those
    whose median relative MDE is unknown or above ``target`` and that hold
    fewer than ``max_seeds``."""
    grow = {}
    for task, task_seeds in seeds.items():
        mde = (checks.get(task) or {}).get('median_relative_mde')
        if (mde is None or mde > target) and len(task_seeds) < max_seeds:
            grow[task] = task_seeds + [max(task_seeds) + 1]
    return grow


def stop_reason(check: dict, n_seeds: int, target: float,
                max_seeds: int) -> str:
    mde = check.get('median_relative_mde')
    if mde is not None and mde <= target:
        return (f'median relative MDE {mde:.1%} <= {target:.1%} with '
                f'{n_seeds} seeds')
    shown = '-' if mde is None else f'{mde:.1%}'
    return (f'stopped at the cap of {max_seeds} seeds with median relative '
            f'MDE {shown} (target {target:.1%})')


def run_until_mde(path: str, target: float, max_seeds: int,
                  run: Callable[..., dict], work_dir: Optional[str] = None,
                  **run_options) -> dict:
    """Run the suite at ``path`` with ``run`` (:func:`~.run.run_suite`),
    adding seeds task by task until each meets ``target`` or holds
    ``max_seeds``. Returns the last round's report with ``seeding``: per
    task, its seeds and why it stopped."""
    if not 0 < target < 1:
        raise ValueError(f'--until-mde is a relative difference in (0, 1), '
                         f'e.g. 0.05 for 5%, got {target}')
    suite = load_suite(path, work_dir)
    seeds = {t.name: suite.seeds_of(t) for t in suite.tasks}
    if max_seeds < max(len(s) for s in seeds.values()):
        raise ValueError(f'--max-seeds {max_seeds} is below the seeds the '
                         f'suite file already asks for: {seeds}')
    rounds = 0
    while True:
        rounds += 1
        report = run(path, work_dir=work_dir, task_seeds=seeds,
                     **run_options)
        grow = next_seeds(report['checks'], seeds, target, max_seeds)
        if not grow:
            break
        for task, task_seeds in grow.items():
            print(f'[{suite.name}] {task}: median relative MDE '
                  f"{report['checks'][task]['median_relative_mde']} above "
                  f'{target:.1%}: adding seed {task_seeds[-1]}', flush=True)
        seeds.update(grow)
    report['seeding'] = {
        task: dict(seeds=task_seeds, target=target, max_seeds=max_seeds,
                   rounds=rounds,
                   reason=stop_reason(report['checks'][task],
                                      len(task_seeds), target, max_seeds))
        for task, task_seeds in seeds.items()}
    return report
