"""The jobs of a suite run, whatever runs them: a job per cell to train and
per variant to profile, its command, and what its outcome becomes.

:func:`plan` decides, under each cell's key (``keys.py``), which cells are
finished, which resume and which rerun, and which profiles are out of date;
a launcher (``launchers.py``) runs the jobs' commands and reports each
:class:`Outcome` to the :class:`Batch`, which records the result the same
way for every launcher (:func:`finish_result`, :func:`finish_profile`).
"""
import os
import os.path as osp
import shutil
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..fileio import dump_json_atomically, load_json
from ..runner import NothingToResumeError, latest_checkpoint
from .keys import KEY_FILE, key_changes, profile_key
from .spec import Cell, Suite, Task


class SuiteError(RuntimeError):
    """A suite that cannot run as asked (a launcher refused, variants that
    do not build): the message says why and what to do."""


@dataclass
class Job:
    """A cell to train or a variant to profile."""
    kind: str  # 'cell' or 'profile'
    label: str
    prefix: str  # of its messages, e.g. '[demo 3/18]'
    folder: str  # its work dir (a profile: its variant's folder)
    command: List[str]  # one process of it; a cell resumes with --resume
    output: str  # the JSON file the command writes
    key: dict  # what produces it (keys.py)
    cell: Optional[Cell] = None
    task: Optional[Task] = None
    variant: Optional[str] = None
    resume: bool = False
    rerun_because: Optional[str] = None

    @property
    def slot(self) -> Tuple[str, str]:
        """(task name, variant): where a profile's result goes."""
        return self.task.name, self.variant


@dataclass
class Outcome:
    """How a job's command ended, as its launcher saw it."""
    succeeded: bool  # exit status 0 (Slurm: COMPLETED)
    error: str  # its last error output: the failure when no result came
    wall_time_s: Optional[float] = None
    record: dict = field(default_factory=dict)  # kept in a cell's result
    failure: dict = field(default_factory=dict)  # kept when it failed


def data_root(suite: Suite, cell: Cell) -> Optional[str]:
    """The suite's copy of a cell's dataset: passed as --data-root, which
    moves the dataloaders and the COCO evaluator's annotation file."""
    return suite.datasets[cell.task.dataset].get('root')


def cell_gpus(suite: Suite, cell: Cell) -> int:
    """The GPUs of a cell as the suite file gives them: the task's gpus,
    else the suite's ``distributed`` gpus, else 1."""
    return cell.task.gpus or (suite.distributed or {}).get('gpus', 1)


def cell_arguments(suite: Suite, cell: Cell) -> dict:
    """What a cell is told (:func:`~mmdrconv.suite.cell.train_cell`'s
    arguments but ``resume`` and ``launcher``)."""
    task = cell.task
    return dict(
        config=cell.config, work_dir=cell.work_dir,
        result_file=cell.result_file, seed=cell.seed,
        data_root=data_root(suite, cell), max_iters=task.max_iters,
        evaluations=task.evaluations,
        # Common random numbers: every variant starts from the twin's
        # weights.
        paired_with=task.variants[task.baseline],
        # Evaluation noise: the task's metrics on each half of the val set.
        split_half=list(task.metrics),
        cfg_options=dict(task.cfg_options or {}))


def cell_command(suite: Suite, cell: Cell) -> List[str]:
    """One process of ``cell``: ``python -m mmdrconv.cli.suite_cell ...``
    with :func:`cell_arguments` (a launcher adds --resume, and how its
    processes start)."""
    given = cell_arguments(suite, cell)
    args = [given['config'], given['work_dir'], given['result_file'],
            '--seed', str(given['seed'])]
    for option in ('data_root', 'max_iters', 'evaluations'):
        if given[option]:
            args += [f"--{option.replace('_', '-')}", str(given[option])]
    args += ['--paired-with', given['paired_with']]
    args += ['--split-half'] + given['split_half']
    if given['cfg_options']:
        args += ['--cfg-options'] + [
            f'{k}={v}' for k, v in given['cfg_options'].items()]
    return [sys.executable, '-m', 'mmdrconv.cli.suite_cell'] + args


def cell_job(suite: Suite, cell: Cell, key: dict, prefix: str = '',
             resume: bool = False,
             rerun_because: Optional[str] = None) -> Job:
    return Job('cell', cell.label, prefix, cell.work_dir,
               cell_command(suite, cell), cell.result_file, key, cell=cell,
               resume=resume, rerun_because=rerun_because)


def profile_output(suite: Suite, task: Task, variant: str) -> str:
    return osp.join(suite.work_dir, task.name, variant, 'profile.json')


def profile_command(suite: Suite, task: Task, variant: str) -> List[str]:
    """The command that profiles a variant into :func:`profile_output`."""
    return [sys.executable, '-m', 'mmdrconv.cli.benchmark',
            task.variants[variant], '--out',
            profile_output(suite, task, variant), '--size',
            *map(str, task.image_size),
            '--repeat', str(suite.profile.get('repeat', 10))]


def missing_metrics(cell: Cell, result: dict) -> Optional[str]:
    """An error naming the task's metrics that the cell's evaluator did not
    produce (a typo would otherwise leave a blank cell in the report)."""
    produced = sorted(result.get('metrics') or {})
    missing = [m for m in cell.task.metrics if m not in produced]
    if not missing:
        return None
    return (f'metric(s) {missing} of task {cell.task.name!r} not produced by '
            f'the evaluator of {cell.config}; it produces: {produced}')


def counted(cell: Cell, result: dict, prefix: str) -> dict:
    """The result as the suite counts it: failed when a metric is missing.
    The cell's own result file stays 'ok', so a corrected suite file reuses
    it."""
    if result.get('status') != 'ok':
        return result
    error = missing_metrics(cell, result)
    if error is None:
        return result
    print(f'{prefix} {cell.label}: FAILED ({error})', flush=True)
    return dict(result, status='failed', error=error, missing_metrics=True)


def _set_aside(cell: Cell) -> str:
    """Move an out-of-date cell's folder (checkpoints, log, result) to
    ``<work_dir>.stale``, replacing an older one, so nothing resumes from
    it and nothing is lost at once."""
    stale = cell.work_dir + '.stale'
    shutil.rmtree(stale, ignore_errors=True)
    os.replace(cell.work_dir, stale)
    return stale


def prepare_cell(cell: Cell, prefix: str, key: dict
                 ) -> Tuple[Optional[dict], bool, Optional[str]]:
    """Decide what ``cell`` needs under ``key`` (see
    :mod:`mmdrconv.suite.keys`): (its finished result, or None; whether to
    resume; why it reruns). An out-of-date folder is set aside, so that
    nothing of it is resumed, and the key is recorded before the cell
    starts."""
    key_file = osp.join(cell.work_dir, KEY_FILE)
    result = load_json(cell.result_file)
    # The result's own key; else the key it was started under (the suite
    # may have stopped between the cell's end and recording it).
    recorded = (result or {}).get('key') or load_json(key_file)
    changed = key_changes(recorded, key)
    if result is not None and result.get('status') == 'ok' and not changed:
        print(f'{prefix} {cell.label}: finished earlier, skipped',
              flush=True)
        # Why it was rerun then is no news now (the file keeps it).
        result.pop('rerun_because', None)
        return result, False, None
    checkpoint = osp.join(cell.work_dir, 'last_checkpoint')
    rerun_because = None
    if changed and (result is not None or osp.isfile(checkpoint)):
        rerun_because = changed
        stale = _set_aside(cell)
        print(f'{prefix} {cell.label}: earlier run out of date, rerunning: '
              f'{changed} (moved to {stale})', flush=True)
    os.makedirs(cell.work_dir, exist_ok=True)
    dump_json_atomically(key, key_file)
    try:
        resume = latest_checkpoint(cell.work_dir) is not None
    except NothingToResumeError as error:  # its checkpoint was deleted
        print(f'{prefix} {cell.label}: {error}; training from scratch',
              flush=True)
        os.remove(checkpoint)
        resume = False
    return None, resume, rerun_because


def _key_error(error: Exception) -> str:
    return f'{type(error).__name__}: {error}'


def finish_result(job: Job, outcome: Outcome,
                  invocation: Optional[str] = None) -> dict:
    """A cell's result as the suite records it in its ``cell_result.json``
    (the cell's own, or its failure), with its key, what the launcher
    measured and the ``invocation`` that ran it (``invocations.py``); then
    as the suite counts it (:func:`counted`)."""
    result = load_json(job.output) if outcome.succeeded else None
    if result is None:
        result = dict(status='failed', error=outcome.error, **outcome.failure)
        print(f'{job.prefix} {job.label}: FAILED ({result["error"]})',
              flush=True)
    result.update(outcome.record)
    if outcome.wall_time_s is not None:
        result.setdefault('wall_time_s', outcome.wall_time_s)
    result['key'] = job.key
    if invocation is not None:
        result['invocation'] = invocation
    if job.rerun_because:
        result['rerun_because'] = job.rerun_because
    dump_json_atomically(result, job.output)
    return counted(job.cell, result, job.prefix)


def finish_profile(job: Job, outcome: Outcome,
                   invocation: Optional[str] = None) -> dict:
    """A variant's profile with its key and the invocation that ran it, or
    its failure."""
    profile = load_json(job.output) if outcome.succeeded else None
    if profile is None:
        return dict(error=outcome.error)
    profile = dict(profile, key=job.key)
    if invocation is not None:
        profile['invocation'] = invocation
    dump_json_atomically(profile, job.output)
    return profile


class Batch:
    """The jobs of one suite run and every cell's and profile's result.
    A launcher asks :meth:`may_start` before it starts a job and reports
    its end to :meth:`finish`."""

    def __init__(self, suite: Suite, cells: List[Cell],
                 invocation: Optional[str] = None):
        self.suite = suite
        self.cells = cells
        self.invocation = invocation  # recorded in what it finishes
        self.ran = dict(cell=0, profile=0)  # jobs finished, by kind
        self.jobs: List[Job] = []
        self.results: List[Optional[dict]] = [None] * len(cells)
        self.profiles: Dict[Tuple[str, str], dict] = {}
        self._wrong_metrics: Dict[str, str] = {}  # task name -> error
        self._index = {id(cell): i for i, cell in enumerate(cells)}

    def record(self, cell: Cell, result: dict) -> dict:
        """Set ``cell``'s result (as the suite counts it)."""
        self.results[self._index[id(cell)]] = result
        if result.get('missing_metrics'):
            self._wrong_metrics.setdefault(cell.task.name, result['error'])
        return result

    @property
    def cell_jobs(self) -> List[Job]:
        return [j for j in self.jobs if j.kind == 'cell']

    @property
    def profile_jobs(self) -> List[Job]:
        return [j for j in self.jobs if j.kind == 'profile']

    def may_start(self, job: Job) -> bool:
        """False, with the cell recorded as not run, when a cell of its
        task named a metric its evaluator does not produce."""
        error = self._wrong_metrics.get(job.cell.task.name) \
            if job.cell else None
        if error is None:
            return True
        print(f'{job.prefix} {job.label}: not run (fix the metric names '
              'first)', flush=True)
        self.record(job.cell, dict(status='failed', error=error))
        return False

    def finish(self, job: Job, outcome: Outcome) -> dict:
        self.ran[job.kind] += 1
        if job.kind == 'profile':
            self.profiles[job.slot] = finish_profile(job, outcome,
                                                     self.invocation)
            return self.profiles[job.slot]
        return self.record(job.cell,
                           finish_result(job, outcome, self.invocation))


def plan(suite: Suite, cells: List[Cell], keys: List, skip_profile: bool,
         profile_keys: Optional[Dict[Tuple[str, str], object]] = None,
         invocation: Optional[str] = None) -> Batch:
    """The batch of this run: every cell's finished result or its job, in
    the cells' order (``keys``: each cell's key or the error computing
    it), then a job per variant whose profile is missing or out of date
    (``profile_keys``: (task, variant) -> key or error); ``invocation``:
    see :class:`Batch`."""
    batch = Batch(suite, cells, invocation)
    for i, (cell, key) in enumerate(zip(cells, keys)):
        prefix = f'[{suite.name} {i + 1}/{len(cells)}]'
        if isinstance(key, Exception):  # its config does not load
            error = _key_error(key)
            print(f'{prefix} {cell.label}: FAILED ({error})', flush=True)
            batch.record(cell, dict(status='failed', error=error))
            continue
        finished, resume, because = prepare_cell(cell, prefix, key)
        if finished is not None:
            batch.record(cell, counted(cell, finished, prefix))
            continue
        batch.jobs.append(cell_job(suite, cell, key, prefix, resume, because))
    for (task_name, variant), key in ({} if skip_profile else
                                      profile_keys or {}).items():
        task = next(t for t in suite.tasks if t.name == task_name)
        if isinstance(key, Exception):
            batch.profiles[task_name, variant] = dict(error=_key_error(key))
            continue
        out = profile_output(suite, task, variant)
        profile = load_json(out)
        if profile is not None and profile.get('key') == key:
            batch.profiles[task_name, variant] = profile
            continue
        batch.jobs.append(Job(
            'profile', f'profile {task.name} | {variant}', f'[{suite.name}]',
            osp.dirname(out), profile_command(suite, task, variant), out,
            key, task=task, variant=variant))
    return batch


def profile_keys(suite: Suite, digests: Optional[dict] = None
                 ) -> Dict[Tuple[str, str], object]:
    """(task, variant) -> the key of its profile, or the error computing
    it (a config that does not load)."""
    keys = {}
    for task in suite.tasks:
        for variant, config in task.variants.items():
            try:
                keys[task.name, variant] = profile_key(
                    config, task.image_size, suite.profile.get('repeat', 10),
                    digests)
            except Exception as error:  # reported as the profile's error
                keys[task.name, variant] = error
    return keys
