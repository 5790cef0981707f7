"""Run a suite's cells and profiles as Slurm jobs (``--launcher slurm``).

Plain ``sbatch`` scripts, not submitit: submitit pickles the callable and
later unpickles its result from the shared folder, and loading a pickle runs
whatever code the file names, against the project's rule that nothing loaded
may run code from a file. A batch script is a readable file the user can
inspect and resubmit by hand; the results come back as JSON.

Every job has a folder (a cell's work dir; for a profile its variant's
folder) holding, with ``KIND`` = ``cell`` or ``profile``:

- ``KIND_job.sh``: the batch script. It decides at start whether to resume
  (a ``last_checkpoint`` in the work dir), so a requeued job resumes too.
- ``KIND_job.json``: the id of the job of this folder. A rerun attaches to
  that job while it is queued or running instead of submitting another:
  never two jobs for one folder (a job found by its name, when the record
  was lost, is attached to as well).
- ``slurm-JOBID.log``: the job's output.
- ``KIND_exit.json``: written by the script when its command ends (exit
  code, host, start and end): the job's outcome where ``sacct`` is not
  available and the scheduler has forgotten the job.

This launcher only plans the Slurm side of the jobs (GPUs, tasks, nodes),
submits or attaches, waits and collects each job's outcome: which cells
and profiles need a job, and what an outcome becomes, is ``jobs.py``'s, as
for a local run (finished cells and profiles are never resubmitted; an
out-of-date one is set aside and run again). A job that failed, was
cancelled, ran out of time or was preempted is reported with the
scheduler's state and its log; the next run resubmits it and a cell
resumes from its last checkpoint. Ctrl-C stops the waiting only: the jobs
keep running, and running the same command again attaches to them
(``scancel`` cancels them).
"""
import argparse
import getpass
import hashlib
import math
import os
import os.path as osp
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..fileio import dump_json_atomically, load_json
from .jobs import Batch, Job, Outcome, SuiteError, cell_gpus
from .launchers import PROGRESS_MARKERS, Launcher, last_error, progress
from .spec import Cell, Suite

# States in which a job may still run (squeue's long names); any other
# state is final.
ACTIVE_STATES = frozenset((
    'PENDING', 'CONFIGURING', 'RUNNING', 'COMPLETING', 'SUSPENDED',
    'REQUEUED', 'REQUEUE_FED', 'REQUEUE_HOLD', 'RESIZING', 'SIGNALING',
    'STAGE_OUT', 'STOPPED', 'RESV_DEL_HOLD'))
QUEUED_STATES = frozenset(('PENDING', 'REQUEUED', 'REQUEUE_FED',
                           'REQUEUE_HOLD', 'CONFIGURING'))
# Options the suite sets itself: given again they would break attaching to
# a job (its name) or finding its log.
OWN_SBATCH_OPTIONS = ('--job-name', '-J', '--output', '-o', '--error', '-e',
                      '--parsable', '--open-mode')


@dataclass
class SlurmOptions:
    partition: str
    gpus_per_cell: Optional[int] = None  # None: the task's / launcher's
    gpus_per_node: int = 8
    cpus_per_task: Optional[int] = None
    time: Optional[str] = None
    requeue: bool = False
    sbatch_args: List[str] = field(default_factory=list)
    poll_s: float = 30.0


@dataclass
class SlurmJob:
    """A suite job as a Slurm job."""
    job: Job
    gpus: int  # 0: no GPU requested
    tasks: int
    command: List[str]
    job_id: Optional[str] = None
    state: str = ''
    reason: str = ''
    log_offset: int = 0

    @property
    def kind(self) -> str:
        return self.job.kind

    @property
    def label(self) -> str:
        return self.job.label

    @property
    def folder(self) -> str:
        return self.job.folder

    def path(self, suffix: str) -> str:
        return osp.join(self.folder, f'{self.kind}_{suffix}')

    @property
    def name(self) -> str:
        """Unique per folder: a rerun finds its job by this name."""
        digest = hashlib.sha1(osp.abspath(self.folder).encode()).hexdigest()
        words = self.label.replace(' | ', '-').replace(' ', '-')
        return f'mmdrconv-{words}-{digest[:8]}'

    @property
    def log(self) -> str:
        return osp.join(osp.abspath(self.folder), f'slurm-{self.job_id}.log')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        'Slurm (--launcher slurm): every unfinished cell and profile is a '
        'job; see mmdrconv/suite/slurm.py')
    group.add_argument('--partition', help='Slurm partition (sbatch -p)')
    group.add_argument(
        '--gpus-per-cell', type=int,
        help="GPUs, and so processes, per cell (default: the task's gpus, "
        "else the suite's distributed gpus, else 1); 0 requests no GPU "
        '(one CPU process)')
    group.add_argument('--gpus-per-node', type=int, default=8,
                       help='GPUs of a node: cells with more span nodes '
                       '(default 8)')
    group.add_argument('--cpus-per-cell', type=int, metavar='N',
                       help='CPU cores per process of a cell (sbatch '
                       '--cpus-per-task; also its thread count)')
    group.add_argument('--time', help='time limit per job (sbatch --time, '
                       'e.g. 1-00:00:00)')
    group.add_argument('--requeue', action='store_true',
                       help='let Slurm requeue preempted or failed-node '
                       'jobs (sbatch --requeue); they resume')
    group.add_argument('--sbatch-args', default='',
                       help='more sbatch options, one string, e.g. '
                       '"--qos=high --account=lab"')
    group.add_argument('--poll', type=float, default=30.0, metavar='S',
                       help='seconds between queue checks (default 30)')


def options_from_args(args: argparse.Namespace,
                      parser: argparse.ArgumentParser) -> SlurmOptions:
    """The Slurm options of the command line (``--launcher slurm``).
    Misuse is a usage error naming the option."""
    if not args.partition:
        parser.error('--launcher slurm needs --partition P')
    if args.jobs != 1:
        parser.error('--jobs is for local runs; under --launcher slurm '
                     'every cell is a job and Slurm decides how many run')
    for name, value, least in (('--gpus-per-cell', args.gpus_per_cell, 0),
                               ('--gpus-per-node', args.gpus_per_node, 1),
                               ('--cpus-per-cell', args.cpus_per_cell, 1)):
        if value is not None and value < least:
            parser.error(f'{name} must be at least {least}, got {value}')
    if args.poll <= 0:
        parser.error(f'--poll must be positive, got {args.poll}')
    try:
        extra = shlex.split(args.sbatch_args)
    except ValueError as error:
        parser.error(f'--sbatch-args: {error}')
    own = [a for a in extra if a.split('=')[0] in OWN_SBATCH_OPTIONS]
    if own:
        parser.error(f'--sbatch-args: {own} set by the suite itself '
                     '(job name and log path identify each cell\'s job)')
    return SlurmOptions(partition=args.partition,
                        gpus_per_cell=args.gpus_per_cell,
                        gpus_per_node=args.gpus_per_node,
                        cpus_per_task=args.cpus_per_cell, time=args.time,
                        requeue=args.requeue, sbatch_args=extra,
                        poll_s=args.poll)


def job_script(job: SlurmJob, options: SlurmOptions) -> str:
    """The batch script of ``job``: sbatch header, then its command (under
    srun when it has several processes), then its exit-status file."""
    nodes = math.ceil(job.tasks / options.gpus_per_node) if job.gpus else 1
    header = [f'--job-name={job.name}', f'--partition={options.partition}',
              f'--output={osp.abspath(job.folder)}/slurm-%j.log',
              '--open-mode=append', f'--ntasks={job.tasks}']
    if job.gpus:
        per_node = min(job.gpus, options.gpus_per_node)
        header += [f'--nodes={nodes}', f'--ntasks-per-node={per_node}',
                   f'--gres=gpu:{per_node}']
    if options.cpus_per_task:
        header.append(f'--cpus-per-task={options.cpus_per_task}')
    if options.time:
        header.append(f'--time={options.time}')
    if options.requeue:
        header.append('--requeue')
    command = ' '.join(shlex.quote(c) for c in job.command)
    if job.tasks > 1:
        command = f'srun --kill-on-bad-exit=1 {command}'
    work_dir = shlex.quote(osp.abspath(job.folder))
    exit_file = shlex.quote(osp.abspath(job.path('exit.json')))
    lines = ['#!/bin/bash',
             f'# {job.label}: written by mmdrconv/suite/slurm.py']
    lines += [f'#SBATCH {h}' for h in header]
    lines += [
        f'cd {shlex.quote(os.getcwd())} || exit 1',
        f'rm -f {exit_file}  # from a run before a requeue',
        'START=$(date +%s)',
        'export PYTHONUNBUFFERED=1',
        '[ -n "${SLURM_CPUS_PER_TASK:-}" ] && '
        'export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK',
        '# jobs sharing a node must not share a rendezvous port',
        'export MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))',
        'RESUME=()',
        f'[ -f {work_dir}/last_checkpoint ] && RESUME=(--resume)'
        if job.kind == 'cell' else '',
        f'{command} "${{RESUME[@]}}"',
        'CODE=$?',
        "printf '{\"job_id\": \"%s\", \"exit_code\": %d, \"host\": \"%s\", "
        "\"start\": %s, \"end\": %s}\\n' \"$SLURM_JOB_ID\" $CODE "
        f"\"$(hostname)\" $START $(date +%s) > {exit_file}.tmp && "
        f'mv {exit_file}.tmp {exit_file}',
        'exit $CODE']
    return '\n'.join(line for line in lines if line) + '\n'


def _run(command: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True)


def check_clients() -> None:
    missing = [c for c in ('sbatch', 'squeue') if shutil.which(c) is None]
    if missing:
        raise SuiteError(
            f'--launcher slurm: {", ".join(missing)} not on PATH; run the '
            "suite where Slurm's client commands are (a login node)")


def queue_states(job_ids: List[str]) -> Dict[str, Tuple[str, str]]:
    """job id -> (state, reason) for the jobs the controller still knows
    (finished ones for MinJobAge seconds). Raises when squeue fails."""
    if not job_ids:
        return {}
    states = {}
    done = _run(['squeue', '-h', '-t', 'all', '-j', ','.join(job_ids),
                 '-o', '%i|%T|%r'])
    if done.returncode != 0:
        # Slurm 22.05 fails the query only when no id is known (then
        # "Invalid job id"); asked one by one, the others still answer.
        if len(job_ids) > 1:
            for job_id in job_ids:
                states.update(queue_states([job_id]))
            return states
        if 'Invalid job id' in done.stderr:
            return {}
        raise RuntimeError(f'squeue failed: {done.stderr.strip()}')
    for line in done.stdout.splitlines():
        parts = line.strip().split('|')
        if len(parts) == 3 and parts[0] in job_ids:
            states[parts[0]] = (parts[1], parts[2])
    return states


def _accounting_state(job_id: str) -> Optional[str]:
    """The job's final state from sacct, where accounting is enabled."""
    if shutil.which('sacct') is None:
        return None
    done = _run(['sacct', '-n', '-X', '-P', '-j', job_id, '-o', 'State'])
    words = done.stdout.split()
    return words[0] if done.returncode == 0 and words else None


def _active_by_name() -> Dict[str, str]:
    """Job name -> id of this user's queued or running jobs."""
    done = _run(['squeue', '-h', '-u', getpass.getuser(), '-o', '%i|%j|%T'])
    if done.returncode != 0:
        raise RuntimeError(f'squeue failed: {done.stderr.strip()}')
    found = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split('|')
        if len(parts) == 3 and parts[2] in ACTIVE_STATES:
            found[parts[1]] = parts[0]
    return found


def _record(job: SlurmJob) -> Optional[str]:
    record = load_json(job.path('job.json'))
    return str(record['job_id']) if record and 'job_id' in record else None


def submit(job: SlurmJob, options: SlurmOptions) -> str:
    os.makedirs(job.folder, exist_ok=True)
    script = job.path('job.sh')
    with open(script, 'w') as f:
        f.write(job_script(job, options))
    done = _run(['sbatch', '--parsable', *options.sbatch_args, script])
    if done.returncode != 0:
        hint = ('check --partition, --gpus-per-cell, --cpus-per-cell, '
                '--time and --sbatch-args')
        if job.gpus and 'Invalid generic resource' in done.stderr:
            hint = (f'it asks for {job.gpus} GPU(s) (--gres=gpu), which '
                    f'partition {options.partition!r} does not offer; on a '
                    'cluster without GPUs pass --gpus-per-cell 0 (each cell '
                    'one CPU process)')
        raise SuiteError(
            f'sbatch refused the job of {job.label} ({script}): '
            f'{done.stderr.strip()} ({hint})')
    job_id = done.stdout.strip().split(';')[0]
    dump_json_atomically(dict(job_id=job_id, name=job.name, script=script,
                              submitted=time.time()), job.path('job.json'))
    return job_id


def attach_or_submit(jobs: List[SlurmJob], options: SlurmOptions,
                     prefix: str) -> None:
    """Give every job its Slurm job: the recorded or same-named one while
    it is queued or running, else a new submission."""
    recorded = [_record(job) for job in jobs]
    states = queue_states([i for i in recorded if i])
    by_name = _active_by_name()
    for job, job_id in zip(jobs, recorded):
        state = states.get(job_id, ('', ''))[0] if job_id else ''
        if state not in ACTIVE_STATES and job.name in by_name:
            job_id, state = by_name[job.name], 'PENDING'
            dump_json_atomically(dict(job_id=job_id, name=job.name),
                                 job.path('job.json'))
        if state in ACTIVE_STATES:
            job.job_id = job_id
            if osp.isfile(job.log):  # echo from here on, not its history
                job.log_offset = osp.getsize(job.log)
            print(f'{prefix} {job.label}: attached to job {job_id} '
                  f'({state})', flush=True)
            continue
        job.job_id = submit(job, options)
        print(f'{prefix} {job.label}: submitted job {job.job_id}'
              f"{' (resumes from its last checkpoint)' if job.job.resume else ''}",  # noqa: E501
              flush=True)


def _echo_progress(job: SlurmJob, prefix: str) -> None:
    """Print the job's new progress lines (as a local run does)."""
    try:
        with open(job.log, 'rb') as f:
            f.seek(job.log_offset)
            data = f.read()
    except OSError:
        return
    end = data.rfind(b'\n') + 1  # a partial last line waits for its end
    job.log_offset += end
    for line in data[:end].decode(errors='replace').splitlines():
        if any(marker in line for marker in PROGRESS_MARKERS):
            print(f'{prefix} {job.label}: {progress(line)}', flush=True)


def _exit_status(job: SlurmJob) -> dict:
    """What the job's script recorded when its command ended (empty before,
    or when the file is another job's)."""
    exit_status = load_json(job.path('exit.json')) or {}
    return exit_status if str(exit_status.get('job_id')) == job.job_id \
        else {}


def _final_state(job: SlurmJob) -> Tuple[str, str]:
    """The state of a job the controller no longer lists."""
    state = _accounting_state(job.job_id)
    if state:
        return state, 'from sacct'
    exit_status = _exit_status(job)
    if exit_status:
        code = exit_status.get('exit_code')
        return ('COMPLETED', '') if code == 0 else (
            'FAILED', f'exit code {code}')
    return 'GONE', ('left the queue without writing its exit status: '
                    'cancelled, out of time, preempted or its node failed')


def wait(jobs: List[SlurmJob], options: SlurmOptions, prefix: str) -> None:
    """Poll until every job has ended, printing each change of state and
    the counts of queued / running / done / failed jobs."""
    waiting = list(jobs)
    last_counts = None
    while waiting:
        try:
            states = queue_states([j.job_id for j in waiting])
        except RuntimeError as error:  # the controller busy: ask again
            print(f'{prefix} {error}; retrying', flush=True)
            states = None
        for job in list(waiting) if states is not None else []:
            state, reason = states.get(job.job_id) or _final_state(job)
            if state == 'RUNNING':
                _echo_progress(job, prefix)
            if (state, reason) != (job.state, job.reason):
                job.state, job.reason = state, reason
                why = f' ({reason})' if reason and reason != 'None' else ''
                print(f'{prefix} {job.label}: job {job.job_id} {state}{why}',
                      flush=True)
            if state not in ACTIVE_STATES:
                waiting.remove(job)
                _echo_progress(job, prefix)
        counts = dict(
            queued=sum(j.state in QUEUED_STATES for j in waiting),
            running=sum(j.state not in QUEUED_STATES for j in waiting),
            done=sum(j.state == 'COMPLETED' for j in jobs if j not in waiting),
            failed=sum(j.state != 'COMPLETED' for j in jobs
                       if j not in waiting))
        if counts != last_counts:
            ids = ' '.join(j.job_id for j in waiting)
            print(f'{prefix} jobs: ' + ', '.join(
                f'{n} {k}' for k, n in counts.items()) +
                  (f' (waiting for {ids})' if ids else ''), flush=True)
            last_counts = counts
        if waiting:
            time.sleep(options.poll_s)


def outcome(job: SlurmJob) -> Outcome:
    """How the job ended: a failure names its state, its log and the log's
    last error; a cell's result keeps the job's id and node."""
    exit_status = _exit_status(job)
    try:
        with open(job.log, errors='replace') as f:
            tail = f.read()[-8000:]
    except OSError:
        tail = ''
    reason = f', {job.reason}' if job.reason not in ('', 'None') else ''
    failure = dict(scheduler_state=job.state, log=job.log)
    if 'exit_code' in exit_status:
        failure['exit_code'] = exit_status['exit_code']
    return Outcome(
        succeeded=job.state == 'COMPLETED',
        error=f'Slurm job {job.job_id} {job.state}{reason}; log {job.log}; '
        f'last output: {last_error(tail)}',
        wall_time_s=exit_status['end'] - exit_status['start']
        if 'end' in exit_status else None,
        record=dict(job_id=job.job_id, host=exit_status.get('host')),
        failure=failure)


class SlurmLauncher(Launcher):
    """Every job a Slurm job: planned, submitted (or attached to), waited
    for, and its outcome collected (module docstring)."""
    name = 'slurm'
    cli_options = ('partition', 'gpus_per_cell', 'gpus_per_node',
               'cpus_per_cell', 'time', 'requeue', 'sbatch_args', 'poll')

    def __init__(self, options: SlurmOptions):
        self.options = options
        self.jobs: List[SlurmJob] = []

    add_arguments = staticmethod(add_arguments)

    @classmethod
    def from_args(cls, args, parser) -> 'SlurmLauncher':
        return cls(options_from_args(args, parser))

    def check(self) -> None:
        check_clients()

    def gpus(self, suite: Suite, cell: Cell) -> int:
        """``--gpus-per-cell``, else the suite file's (:func:`cell_gpus`)."""
        if self.options.gpus_per_cell is not None:
            return self.options.gpus_per_cell
        return cell_gpus(suite, cell)

    def processes(self, suite: Suite, cell: Cell) -> int:
        return max(self.gpus(suite, cell), 1)

    def slurm_job(self, suite: Suite, job: Job) -> SlurmJob:
        """A cell: one task per GPU under mmengine's launcher='slurm'; a
        profile: one task, one GPU unless --gpus-per-cell 0."""
        if job.cell is None:
            gpus = min(1, self.options.gpus_per_cell
                       if self.options.gpus_per_cell is not None else 1)
            return SlurmJob(job, gpus, 1, job.command)
        gpus = self.gpus(suite, job.cell)
        command = job.command + (['--launcher', 'slurm'] if gpus > 1 else [])
        return SlurmJob(job, gpus, max(gpus, 1), command)

    def run(self, suite: Suite, batch: Batch) -> None:
        prefix = f'[{suite.name} slurm]'
        self.jobs = [self.slurm_job(suite, job) for job in batch.jobs
                     if batch.may_start(job)]
        attach_or_submit(self.jobs, self.options, prefix)
        wait(self.jobs, self.options, prefix)
        for job in self.jobs:
            batch.finish(job.job, outcome(job))

    def interrupted(self) -> str:
        ids = ' '.join(j.job_id for j in self.jobs if j.job_id)
        if not ids:
            return 'no job was submitted'
        return (f'the submitted jobs keep running ({ids}); run the same '
                'command again to attach to them, or cancel them with: '
                f'scancel {ids}')
