"""Run a suite: generate data, train and evaluate every cell, profile every
variant, and write the report. A finished cell is skipped only while what
produced it (its key: config, budget, seed, data, code) is unchanged,
otherwise it reruns and says why; an interrupted one resumes from its last
checkpoint under the same key; a failing cell is recorded without stopping
the others. One suite run at a time per work dir."""
import collections
import contextlib
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple

import mmengine

from ..openmmlab.atomic_save import dump_json_atomically
from ..datasets import generate
from ..runlock import hold_folder
from ..runner import NothingToResumeError, latest_checkpoint
from .keys import KEY_FILE, cell_key, key_changes, profile_key
from .report import write_report
from .spec import Cell, Suite, load_suite

# Lines of a cell's output echoed live: the progress display.
PROGRESS_MARKERS = ('Iter(train)', 'Iter(val)', 'Error', 'Traceback',
                    'resumed', 'Resumed')
_PROGRESS_FIELDS = re.compile(
    r'(Iter\((?:train|val)\)\s*\[\s*\d+/\d+\])|(eta: \S+)|'
    r'(?<![\w.])(loss: [\d.]+)|((?:coco/(?:bbox|segm)_mAP|mIoU): [\d.]+)')


def _progress(line: str) -> str:
    """The compact form of an mmengine log line: iteration, eta, loss,
    headline metrics."""
    fields = [m.group(0) for m in _PROGRESS_FIELDS.finditer(line)]
    return '  '.join(fields) if fields else line.rstrip()[-200:]


def _data_root(suite: Suite, cell: Cell) -> Optional[str]:
    """The suite's copy of a cell's dataset: passed as --data-root, which
    moves the dataloaders and the COCO evaluator's annotation file."""
    return suite.datasets[cell.task.dataset].get('root')


def _stream(command: List[str], log_file: str, prefix: str,
            threads: Optional[int] = None) -> tuple:
    """Run ``command``, echo its progress lines, keep all in ``log_file``.
    ``threads`` caps the child's intra-op threads (cells run side by side
    must not oversubscribe the cores)."""
    tail = collections.deque(maxlen=40)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    with open(log_file, 'a') as log, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=env) as process:
        for line in process.stdout:
            log.write(line)
            tail.append(line)
            if any(marker in line for marker in PROGRESS_MARKERS):
                print(f'{prefix} {_progress(line)}', flush=True)
        code = process.wait()
    return code, ''.join(tail)


def _cell_command(suite: Suite, cell: Cell, resume: bool) -> List[str]:
    options = cell.task.cfg_options
    args = [cell.config, cell.work_dir, cell.result_file, '--seed',
            str(cell.seed)]
    root = _data_root(suite, cell)
    if root:
        args += ['--data-root', root]
    if cell.task.max_iters:
        args += ['--max-iters', str(cell.task.max_iters)]
    if cell.task.evaluations:
        args += ['--evaluations', str(cell.task.evaluations)]
    # Common random numbers: every variant starts from the twin's weights.
    args += ['--paired-with', cell.task.variants[cell.task.baseline]]
    # Evaluation noise: the task's metrics on each half of the val set.
    args += ['--split-half'] + list(cell.task.metrics)
    if resume:
        args.append('--resume')
    if options:
        args += ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
    launcher = suite.launcher or {}
    if launcher.get('type') == 'torchrun':
        gpus = cell.task.gpus or launcher.get('gpus', 1)
        return [sys.executable, '-m', 'torch.distributed.run',
                f'--nproc_per_node={gpus}',
                f"--nnodes={launcher.get('nnodes', 1)}",
                '-m', 'mmdrconv.cli.suite_cell'] + args + [
                    '--launcher', 'pytorch']
    return [sys.executable, '-m', 'mmdrconv.cli.suite_cell'] + args


def missing_metrics(cell: Cell, result: dict) -> Optional[str]:
    """An error naming the task's metrics that the cell's evaluator did not
    produce (a typo would otherwise leave a blank cell in the report)."""
    produced = sorted(result.get('metrics') or {})
    missing = [m for m in cell.task.metrics if m not in produced]
    if not missing:
        return None
    return (f'metric(s) {missing} of task {cell.task.name!r} not produced by '
            f'the evaluator of {cell.config}; it produces: {produced}')


def _checked(cell: Cell, result: dict, prefix: str) -> dict:
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


def prepare_cell(suite: Suite, cell: Cell, prefix: str, key: dict
                 ) -> Tuple[Optional[dict], bool, Optional[str]]:
    """Decide what ``cell`` needs under ``key`` (see
    :mod:`mmdrconv.suite.keys`), for the local and the Slurm launchers:
    (its finished result, or None; whether to resume; why it reruns).
    An out-of-date folder is set aside, so that nothing of it is resumed,
    and the key is recorded before the cell starts."""
    key_file = osp.join(cell.work_dir, KEY_FILE)
    result = _load_json(cell.result_file)
    # The result's own key; else the key it was started under (the suite
    # may have stopped between the cell's end and recording it).
    recorded = (result or {}).get('key') or _load_json(key_file)
    changed = key_changes(recorded, key)
    if result is not None and result.get('status') == 'ok' and not changed:
        print(f'{prefix} {cell.label}: finished earlier, skipped',
              flush=True)
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


def run_cell(suite: Suite, cell: Cell, index: int, total: int,
             threads: Optional[int] = None, key: Optional[dict] = None
             ) -> dict:
    """Train and evaluate ``cell`` unless its result under ``key`` (None:
    computed here) is there already."""
    prefix = f'[{suite.name} {index}/{total}]'
    if key is None:
        key = cell_key(suite, cell)
    finished, resume, rerun_because = prepare_cell(suite, cell, prefix, key)
    if finished is not None:
        return _checked(cell, finished, prefix)
    print(f'{prefix} {cell.label}: '
          f"{'resuming from its last checkpoint' if resume else 'training'}"
          f" ({cell.config})", flush=True)
    start = time.time()
    code, tail = _stream(_cell_command(suite, cell, resume),
                         osp.join(cell.work_dir, 'cell.log'), prefix,
                         threads)
    result = _load_json(cell.result_file) if code == 0 else None
    if result is None:
        result = dict(status='failed', error=_last_error(tail),
                      exit_code=code)
        print(f'{prefix} {cell.label}: FAILED ({result["error"]})',
              flush=True)
    result['wall_time_s'] = result.get('wall_time_s', time.time() - start)
    result['key'] = key
    if rerun_because:
        result['rerun_because'] = rerun_because
    dump_json_atomically(result, cell.result_file)
    return _checked(cell, result, prefix)


def cell_keys(suite: Suite, cells: List[Cell],
              digests: Optional[dict] = None) -> List:
    """Every cell's key, or the error that stops computing it (a config
    that does not load: that cell fails, the others run)."""
    keys = []
    for cell in cells:
        try:
            keys.append(cell_key(suite, cell, digests))
        except Exception as error:  # reported as the cell's failure
            keys.append(error)
    return keys


def _load_json(path: str) -> Optional[dict]:
    """The JSON object in the file; None when it is missing, unreadable (a
    run killed while writing it) or not an object: the work is then
    redone."""
    try:
        content = mmengine.load(path, file_format='json')
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def _last_error(tail: str) -> str:
    lines = [line for line in tail.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if 'Error' in line or 'Exception' in line:
            return line.strip()[-300:]
    return lines[-1].strip()[-300:] if lines else 'no output'


def _profile_command(suite: Suite, task, variant: str) -> tuple:
    """The profile file of a variant and the command that writes it."""
    out = osp.join(suite.work_dir, task.name, variant, 'profile.json')
    return out, [sys.executable, '-m', 'mmdrconv.cli.benchmark',
                 task.variants[variant], '--out', out, '--size',
                 *map(str, task.image_size),
                 '--repeat', str(suite.profile.get('repeat', 10))]


def _profile_key(suite: Suite, task, variant: str,
                 digests: Optional[dict] = None) -> dict:
    return profile_key(task.variants[variant], task.image_size,
                       suite.profile.get('repeat', 10), digests)


def profile_variants(suite: Suite,
                     digests: Optional[dict] = None) -> dict:
    """Profile every variant whose profile under its current key is
    missing (``digests``: config digests of this run, see keys.py)."""
    profiles = {}
    for task in suite.tasks:
        for variant in task.variants:
            out, command = _profile_command(suite, task, variant)
            try:
                key = _profile_key(suite, task, variant, digests)
            except Exception as error:  # a config that does not load
                profiles[(task.name, variant)] = dict(
                    error=f'{type(error).__name__}: {error}')
                continue
            profile = _load_json(out)
            if profile is None or profile.get('key') != key:
                os.makedirs(osp.dirname(out), exist_ok=True)
                print(f'[{suite.name}] profiling {task.name} | {variant}',
                      flush=True)
                code, tail = _stream(command, out + '.log',
                                     f'[{suite.name}]')
                if code != 0:
                    profiles[(task.name, variant)] = dict(
                        error=_last_error(tail))
                    continue
                profile = dict(mmengine.load(out), key=key)
                dump_json_atomically(profile, out)
            profiles[(task.name, variant)] = profile
    return profiles


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
              slurm=None) -> dict:
    """Run every cell of a suite, ``jobs`` at a time, then profile every
    variant (one at a time) and write the report.

    With ``jobs > 1`` each cell gets ``cpu_count // jobs`` threads and the
    cells share the machine, so their training times are not comparable
    with a one-job run (the report says so); meant for checks and for
    machines with many cores. ``slurm`` (a
    :class:`~mmdrconv.suite.slurm.SlurmOptions`): the unfinished cells and
    profiles run as Slurm jobs instead."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f'jobs must be a positive int, got {jobs!r}')
    suite = load_suite(path, work_dir)
    with hold_folder(suite.work_dir, 'suite dir'), \
            contextlib.ExitStack() as data:
        return _run_suite(suite, skip_profile, jobs, data, slurm)


def _run_suite(suite: Suite, skip_profile: bool, jobs: int,
               data: contextlib.ExitStack, slurm=None) -> dict:
    start = time.time()
    for root in prepare_data(suite):
        # Read while the cells train: regenerating it is refused meanwhile.
        data.enter_context(hold_folder(root, 'data folder', shared=True))
    cells = suite.cells()
    digests = {}  # config digests, shared by cells and profiles
    keys = cell_keys(suite, cells, digests)
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    wrong_metrics = {}  # task name -> error: its later cells are not run

    def run(i: int) -> dict:
        cell = cells[i]
        if cell.task.name in wrong_metrics:
            print(f'[{suite.name} {i + 1}/{len(cells)}] {cell.label}: not '
                  'run (fix the metric names first)', flush=True)
            return dict(status='failed', error=wrong_metrics[cell.task.name])
        if isinstance(keys[i], Exception):
            error = f'{type(keys[i]).__name__}: {keys[i]}'
            print(f'[{suite.name} {i + 1}/{len(cells)}] {cell.label}: '
                  f'FAILED ({error})', flush=True)
            return dict(status='failed', error=error)
        result = run_cell(suite, cell, i + 1, len(cells), threads, keys[i])
        if result.get('missing_metrics'):
            wrong_metrics[cell.task.name] = result['error']
        return result

    if slurm is not None:  # every cell and profile a job: slurm.py
        from .slurm import run_on_slurm
        results, profiles = run_on_slurm(suite, cells, keys, slurm,
                                         skip_profile, digests)
    elif jobs == 1:
        results = [run(i) for i in range(len(cells))]
    else:
        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            results = list(pool.map(run, range(len(cells))))
        finally:  # Ctrl-C: the running cells stop with it, no new ones
            pool.shutdown(wait=True, cancel_futures=True)
    if slurm is None:
        profiles = {} if skip_profile else profile_variants(suite, digests)
    report = write_report(suite, cells, results, profiles,
                          wall_time_s=time.time() - start, jobs=jobs)
    print(f'[{suite.name}] report: {report["markdown"]}', flush=True)
    return report
