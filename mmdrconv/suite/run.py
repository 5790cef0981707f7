"""Run a suite: generate data, train and evaluate every cell, profile every
variant, and write the report. A finished cell is skipped only while what
produced it (its key: config, budget, seed, data, protocol, code) is
unchanged, otherwise it reruns and says why; an interrupted one resumes
from its last checkpoint under the same key; a failing cell is recorded
without stopping the others. One suite run at a time per work dir.

The steps: load the suite file, prepare the data, compute the keys, plan
the jobs (``jobs.py``), run them with the chosen launcher
(``launchers.py``: local subprocesses, or ``slurm.py``), write the report.
"""
import contextlib
import datetime
import os
import os.path as osp
import sys
import time
from functools import partial
from typing import Callable, Dict, List, Optional

from ..datasets import generate
from ..fileio import load_json
from ..runlock import hold_folder
from .cell import check_cell
from .invocations import (interrupted_invocations, invocation_record,
                          record_interrupted, timing)
from .jobs import Batch, SuiteError, cell_arguments, plan, profile_keys
from .keys import cell_key
from .launchers import Launcher, LocalLauncher, sigterm_as_interrupt
from .report import invocation, write_report
from .spec import Cell, Suite, load_suite


def cell_keys(suite: Suite, cells: List[Cell],
              processes: Callable[[Cell], int],
              digests: Optional[dict] = None) -> List:
    """Every cell's key (``processes(cell)``: its process count, the
    launcher's choice), or the error that stops computing it (a config
    that does not load: that cell fails, the others run)."""
    keys = []
    for cell in cells:
        try:
            keys.append(cell_key(suite, cell, processes(cell), digests))
        except Exception as error:  # reported as the cell's failure
            keys.append(error)
    return keys


def check_variants(suite: Suite, cells: List[Cell], keys: List,
                   batch: Batch) -> List[str]:
    """'task | variant: error' for every variant whose config does not load
    (``keys``) or whose cells to train would fail at their start: config,
    data or model (:func:`~mmdrconv.suite.cell.check_cell`, on the first
    such cell of the variant)."""
    failures = {}
    for cell, key in zip(cells, keys):
        if isinstance(key, Exception):
            failures.setdefault((cell.task.name, cell.variant),
                                f'{type(key).__name__}: {key}')
    first = {}  # (task, variant) -> its first job, when it loads
    for job in batch.cell_jobs:
        which = job.cell.task.name, job.cell.variant
        if which not in failures:
            first.setdefault(which, job)
    if first:
        print(f'[{suite.name}] checking the config, data and model of '
              f'{len(first)} variant(s) before training', flush=True)
    for which, job in first.items():
        try:
            check_cell(resume=job.resume,
                       **cell_arguments(suite, job.cell))
        except Exception as error:  # listed, then the run stops
            failures[which] = f'{type(error).__name__}: {error}'
    return [f'{task} | {variant}: {error}'
            for (task, variant), error in failures.items()]


def profile_variants(suite: Suite, digests: Optional[dict] = None,
                     launcher: Optional[Launcher] = None) -> dict:
    """Profile every variant whose profile under its current key is
    missing (``digests``: config digests of this run, see keys.py);
    (task, variant) -> its profile or error."""
    batch = plan(suite, [], [], False, profile_keys(suite, digests))
    (launcher or LocalLauncher()).run(suite, batch)
    return batch.profiles


def prepare_data(suite: Suite) -> List[str]:
    """Generate the synthetic datasets; check that the others are there.
    Returns the roots of the generated ones."""
    generated = []
    for name, data in suite.datasets.items():
        users = [t.name for t in suite.tasks if t.dataset == name]
        if not users:
            continue
        if data.get('generate', False):
            options = {k: v for k, v in data.items()
                       if k not in ('generate', 'kind', 'root')}
            print(f'[{suite.name}] dataset {name}: {data["root"]}',
                  flush=True)
            generate(data['kind'], data['root'], **options)
            generated.append(data['root'])
        elif 'root' in data and not osp.isdir(data['root']):
            raise FileNotFoundError(
                f'{suite.source}: dataset {name!r} (tasks '
                f'{", ".join(users)}): root {data["root"]!r} not found '
                f'(working directory {os.getcwd()}). Put the data there or '
                "change the dataset's root.")
    return generated


def run_suite(path: str, work_dir: Optional[str] = None,
              skip_profile: bool = False, jobs: int = 1,
              launcher: Optional[Launcher] = None,
              task_seeds: Optional[Dict[str, List[int]]] = None) -> dict:
    """Run every cell of a suite with ``launcher`` (default: this machine,
    ``jobs`` cells at a time: :class:`~.launchers.LocalLauncher`), profile
    every variant and write the report.

    With ``jobs > 1`` each cell gets ``cpu_count // jobs`` threads and the
    cells share the machine, so their training times are not comparable
    with a one-job run (the report says so); meant for checks and for
    machines with many cores. ``task_seeds``: task name -> its seeds
    (:func:`~.spec.load_suite`). Ctrl-C ends the run with exit status 130 and
    says what became of its jobs; so does SIGTERM."""
    if launcher is None:
        launcher = LocalLauncher(jobs)
    elif jobs != 1:
        raise ValueError('jobs is the local launcher\'s; pass '
                         'LocalLauncher(jobs) as the launcher')
    suite = load_suite(path, work_dir, task_seeds)
    with hold_folder(suite.work_dir, 'suite dir'), \
            contextlib.ExitStack() as data, sigterm_as_interrupt():
        try:
            return _run_suite(suite, launcher, skip_profile, data)
        except KeyboardInterrupt:
            print(f'\n[{suite.name}] interrupted: {launcher.interrupted()}',
                  file=sys.stderr, flush=True)
            raise SystemExit(130) from None


def _run_suite(suite: Suite, launcher: Launcher, skip_profile: bool,
               data: contextlib.ExitStack) -> dict:
    start = time.time()
    # The stamp identifies the invocation (invocations.py), so it keeps the
    # microseconds: two invocations a second apart must not share it.
    started = datetime.datetime.fromtimestamp(start).isoformat(
        sep=' ', timespec='microseconds')
    launcher.check()
    for root in prepare_data(suite):
        # Read while the cells train: regenerating it is refused meanwhile.
        data.enter_context(hold_folder(root, 'data folder', shared=True))
    cells = suite.cells()
    digests = {}  # config digests, shared by cells and profiles
    processes = partial(launcher.processes, suite)
    keys = cell_keys(suite, cells, processes, digests)
    batch = plan(suite, cells, keys, skip_profile,
                 None if skip_profile else profile_keys(suite, digests),
                 invocation=started)
    failures = check_variants(suite, cells, keys, batch)
    if failures:
        raise SuiteError(
            f'{len(failures)} variant(s) cannot train, so no cell was '
            'started:\n' + '\n'.join(f'  - {f}' for f in failures) +
            "\nFix their config files, the task's cfg_options or the data "
            '(or leave them out of the suite file), then run again.')
    try:
        launcher.run(suite, batch)
    except KeyboardInterrupt:
        # No report now, but the cells it finished will be reused: keep
        # the time it took for the run's wall time.
        record_interrupted(suite.work_dir, invocation_record(
            started, invocation(), time.time() - start, batch.ran['cell'],
            batch.ran['profile']))
        raise
    wall_time_s = time.time() - start
    this = invocation_record(started, invocation(), wall_time_s,
                             batch.ran['cell'], batch.ran['profile'])
    times = timing(load_json(osp.join(suite.work_dir, 'results.json')),
                   batch.results, batch.profiles, this,
                   interrupted_invocations(suite.work_dir))
    report = write_report(suite, cells, batch.results, batch.profiles,
                          wall_time_s=wall_time_s,
                          jobs=launcher.cells_at_once, timing=times)
    print(f'[{suite.name}] report: {report["markdown"]}', flush=True)
    return report
