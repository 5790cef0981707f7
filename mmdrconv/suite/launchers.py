"""Where a suite's jobs run (``tools/suite.py --launcher NAME``): the
launcher interface, the registry of launchers, and the local launcher.

A launcher decides how many processes a cell gets (part of the cell's
key), runs the jobs of a :class:`~mmdrconv.suite.jobs.Batch` and reports
each one's :class:`~mmdrconv.suite.jobs.Outcome` to it; what a job is, and
what its outcome becomes, is ``jobs.py``'s, the same for every launcher.
Adding one (PBS, LSF, ...) is a :class:`Launcher` subclass and its line in
:data:`LAUNCHERS`.
"""
import argparse
import collections
import contextlib
import importlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple, Type

from .jobs import Batch, Job, Outcome, cell_gpus
from .spec import Cell, Suite

# name -> 'module:class', imported on demand: a launcher's module imports
# this one for the interface, so this one cannot import it back.
LAUNCHERS = dict(local=f'{__name__}:LocalLauncher',
                 slurm='mmdrconv.suite.slurm:SlurmLauncher')

# The commands stream() runs now (several with LocalLauncher(jobs > 1)).
_RUNNING = set()
_RUNNING_LOCK = threading.Lock()

# Lines of a job's output echoed live: the progress display.
PROGRESS_MARKERS = ('Iter(train)', 'Iter(val)', 'Error', 'Traceback',
                    'resumed', 'Resumed')
_PROGRESS_FIELDS = re.compile(
    r'(Iter\((?:train|val)\)\s*\[\s*\d+/\d+\])|(eta: \S+)|'
    r'(?<![\w.])(loss: [\d.]+)|((?:coco/(?:bbox|segm)_mAP|mIoU): [\d.]+)')


def progress(line: str) -> str:
    """The compact form of an mmengine log line: iteration, eta, loss,
    headline metrics."""
    fields = [m.group(0) for m in _PROGRESS_FIELDS.finditer(line)]
    return '  '.join(fields) if fields else line.rstrip()[-200:]


def last_error(output: str) -> str:
    """The last line of ``output`` naming an error, else its last line."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if 'Error' in line or 'Exception' in line:
            return line.strip()[-300:]
    return lines[-1].strip()[-300:] if lines else 'no output'


class Launcher:
    """Runs the jobs of a suite somewhere. Subclasses set :attr:`name`,
    :attr:`cli_options` (the dests of the command-line options they add) and
    implement :meth:`processes` and :meth:`run`."""
    name = ''
    cli_options: Tuple[str, ...] = ()
    # Cells running side by side on one machine: above 1 the report marks
    # their training times as contended.
    cells_at_once = 1

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this launcher's command-line options (their dests in
        :attr:`cli_options`)."""

    @classmethod
    def from_args(cls, args: argparse.Namespace,
                  parser: argparse.ArgumentParser) -> 'Launcher':
        """The launcher the command line asks for; misuse is a usage error
        (``parser.error``) naming the option."""
        return cls()

    def check(self) -> None:
        """Raise :class:`~mmdrconv.suite.jobs.SuiteError` when this
        launcher cannot run here, before anything is planned."""

    def processes(self, suite: Suite, cell: Cell) -> int:
        """The processes that train ``cell`` (they share its batch)."""
        raise NotImplementedError

    def run(self, suite: Suite, batch: Batch) -> None:
        """Run every job of ``batch`` that :meth:`Batch.may_start`, and
        report its end to :meth:`Batch.finish`."""
        raise NotImplementedError

    def interrupted(self) -> str:
        """What became of the jobs after Ctrl-C, and how to go on."""
        return ('finished cells are kept; run the same command again to '
                'skip them and resume the others from their last '
                'checkpoints')


def get_launcher(name: str) -> Type[Launcher]:
    """The launcher class registered as ``name`` in :data:`LAUNCHERS`."""
    if name not in LAUNCHERS:
        raise ValueError(f'unknown launcher {name!r}; launchers: '
                         f'{sorted(LAUNCHERS)}')
    module, _, cls = LAUNCHERS[name].partition(':')
    return getattr(importlib.import_module(module), cls)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--launcher`` and every launcher's own options."""
    parser.add_argument('--launcher', choices=sorted(LAUNCHERS),
                        default='local',
                        help="where cells run (default: 'local')")
    for name in LAUNCHERS:
        get_launcher(name).add_arguments(parser)


def from_args(args: argparse.Namespace,
              parser: argparse.ArgumentParser) -> Launcher:
    """The launcher of ``--launcher``; another launcher's option given is a
    usage error."""
    for name in sorted(LAUNCHERS):
        if name == args.launcher:
            continue
        given = [f"--{dest.replace('_', '-')}"
                 for dest in get_launcher(name).cli_options
                 if getattr(args, dest) != parser.get_default(dest)]
        if given:
            parser.error(f'{", ".join(given)} need(s) --launcher {name}')
    return get_launcher(args.launcher).from_args(args, parser)


def stream(command: List[str], log_file: str, prefix: str,
           threads: Optional[int] = None) -> Tuple[int, str]:
    """Run ``command``, echo its progress lines, keep all in ``log_file``;
    its exit status and last lines. ``threads`` caps the child's intra-op
    threads (cells run side by side must not oversubscribe the cores).
    Interrupted (Ctrl-C), it stops the child before returning."""
    tail = collections.deque(maxlen=40)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    with open(log_file, 'a') as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True,
                                   env=env)
        with _RUNNING_LOCK:
            _RUNNING.add(process)
        try:
            for line in process.stdout:
                log.write(line)
                tail.append(line)
                if any(marker in line for marker in PROGRESS_MARKERS):
                    print(f'{prefix} {progress(line)}', flush=True)
            code = process.wait()
        finally:
            _stop(process)
            with _RUNNING_LOCK:
                _RUNNING.discard(process)
    return code, ''.join(tail)


def _stop(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    """End ``process`` if it still runs: SIGINT (as Ctrl-C in a terminal
    gives it), then SIGKILL after ``grace_s``."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.stdout.close()


class LocalLauncher(Launcher):
    """Every job a subprocess of this machine: ``jobs`` cells at a time
    (each with cores / jobs threads), then the profiles one at a time. A
    suite with ``distributed=dict(type='torchrun', ...)`` runs each cell
    under torchrun."""
    name = 'local'

    def __init__(self, jobs: int = 1):
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f'jobs must be a positive int, got {jobs!r}')
        self.jobs = self.cells_at_once = jobs
        self._stopping = threading.Event()

    @classmethod
    def from_args(cls, args, parser) -> 'LocalLauncher':
        return cls(args.jobs)

    def processes(self, suite: Suite, cell: Cell) -> int:
        distributed = suite.distributed
        if not distributed:
            return 1
        return cell_gpus(suite, cell) * distributed.get('nnodes', 1)

    def command(self, suite: Suite, job: Job) -> List[str]:
        """The job's command as this launcher starts it."""
        command = job.command + (['--resume'] if job.resume else [])
        distributed = suite.distributed
        if job.cell is None or not distributed:
            return command
        return [sys.executable, '-m', 'torch.distributed.run',
                f'--nproc_per_node={cell_gpus(suite, job.cell)}',
                f"--nnodes={distributed.get('nnodes', 1)}"
                ] + command[1:] + ['--launcher', 'pytorch']

    def _run_job(self, suite: Suite, batch: Batch, job: Job,
                 threads: Optional[int]) -> None:
        if self._stopping.is_set() or not batch.may_start(job):
            return
        os.makedirs(job.folder, exist_ok=True)
        if job.cell is None:
            print(f'{job.prefix} profiling {job.task.name} | {job.variant}',
                  flush=True)
            log = job.output + '.log'
        else:
            print(f'{job.prefix} {job.label}: '
                  f"{'resuming from its last checkpoint' if job.resume else 'training'}"  # noqa: E501
                  f' ({job.cell.config})', flush=True)
            log = os.path.join(job.folder, 'cell.log')
        start = time.time()
        code, tail = stream(self.command(suite, job), log, job.prefix,
                            threads)
        if self._stopping.is_set():  # interrupted: nothing to record
            return
        failure = {} if job.cell is None else dict(exit_code=code)
        batch.finish(job, Outcome(code == 0, last_error(tail),
                                  time.time() - start, failure=failure))

    def run(self, suite: Suite, batch: Batch) -> None:
        cells = batch.cell_jobs
        threads = max(1, (os.cpu_count() or 1) // self.jobs) \
            if self.jobs > 1 else None
        if self.jobs == 1:
            for job in cells:
                self._run_job(suite, batch, job, None)
        else:
            pool = ThreadPoolExecutor(max_workers=self.jobs)
            try:
                list(pool.map(lambda job: self._run_job(suite, batch, job,
                                                        threads), cells))
            except BaseException:  # Ctrl-C: stop the running cells
                self._stopping.set()
                _interrupt_children()
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        # One at a time, alone on the machine: they measure latency.
        for job in batch.profile_jobs:
            self._run_job(suite, batch, job, None)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM (``kill``, a scheduler's time limit, a
    container stopping) ends the run as Ctrl-C does: running cells are
    stopped and kept resumable, instead of the suite dying alone and its
    cells training on as orphans. Only the main thread can set handlers;
    elsewhere the block changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f'signal {signum}')

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt_children() -> None:
    """SIGINT to the commands :func:`stream` runs (when Ctrl-C reached this
    process alone), which ends their streams."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for process in running:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
