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

Finished cells and profiles are never resubmitted: finished as for a local
run, i.e. under the same key (config, budget, seed, data, code;
``keys.py``), and an out-of-date one is set aside and run again. A job
that failed, was cancelled, ran out of time or was preempted is reported
with the scheduler's state and its log; the next run resubmits it and a cell resumes from its last
checkpoint. Ctrl-C stops the waiting only: the jobs keep running, and
running the same command again attaches to them (``scancel`` cancels them).
"""
import argparse
import dataclasses
import getpass
import hashlib
import math
import os
import os.path as osp
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..openmmlab.atomic_save import dump_json_atomically
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
class Job:
    kind: str  # 'cell' or 'profile'
    label: str
    folder: str
    command: List[str]
    gpus: int  # 0: no GPU requested
    tasks: int
    cell: Optional[Cell] = None
    job_id: Optional[str] = None
    state: str = ''
    reason: str = ''
    log_offset: int = 0

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
    group.add_argument('--launcher', choices=['local', 'slurm'],
                       default='local',
                       help="where cells run (default: 'local')")
    group.add_argument('--partition', help='Slurm partition (sbatch -p)')
    group.add_argument(
        '--gpus-per-cell', type=int,
        help="GPUs, and so processes, per cell (default: the task's gpus, "
        "else the suite launcher's, else 1); 0 requests no GPU (one CPU "
        'process)')
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
                      parser: argparse.ArgumentParser
                      ) -> Optional[SlurmOptions]:
    """The Slurm options of the command line; None for a local run.
    Misuse is a usage error naming the option."""
    given = [name for name, default in (
        ('--partition', None), ('--gpus-per-cell', None),
        ('--cpus-per-cell', None), ('--time', None), ('--requeue', False),
        ('--sbatch-args', ''), ('--gpus-per-node', 8), ('--poll', 30.0))
        if getattr(args, name[2:].replace('-', '_')) != default]
    if args.launcher != 'slurm':
        if given:
            parser.error(f'{", ".join(given)} need(s) --launcher slurm')
        return None
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


def _cell_gpus(suite: Suite, cell: Cell, options: SlurmOptions) -> int:
    if options.gpus_per_cell is not None:
        return options.gpus_per_cell
    return cell.task.gpus or (suite.launcher or {}).get('gpus', 1)


def _profile_label(task, variant: str) -> str:
    return f'profile {task.name} | {variant}'


def plan_jobs(suite: Suite, cells: List[Cell], options: SlurmOptions,
              skip_profile: bool, finished) -> List[Job]:
    """A job per cell not ``finished`` and per variant without a profile."""
    from .run import _cell_command, _load_json, _profile_command
    local = dataclasses.replace(suite, launcher=None)  # no torchrun
    jobs = []
    for cell in cells:
        if finished(cell):
            continue
        gpus = _cell_gpus(suite, cell, options)
        command = _cell_command(local, cell, resume=False)
        if gpus > 1:
            command += ['--launcher', 'slurm']
        jobs.append(Job('cell', cell.label, cell.work_dir, command, gpus,
                        max(gpus, 1), cell=cell))
    if skip_profile:
        return jobs
    for task in suite.tasks:
        for variant in task.variants:
            out, command = _profile_command(suite, task, variant)
            if _load_json(out) is None:
                gpus = min(1, options.gpus_per_cell
                           if options.gpus_per_cell is not None else 1)
                jobs.append(Job('profile', _profile_label(task, variant),
                                osp.dirname(out), command, gpus, 1))
    return jobs


def job_script(job: Job, options: SlurmOptions) -> str:
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
        raise FileNotFoundError(
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


def _record(job: Job) -> Optional[str]:
    from .run import _load_json
    record = _load_json(job.path('job.json'))
    return str(record['job_id']) if record and 'job_id' in record else None


def submit(job: Job, options: SlurmOptions) -> str:
    os.makedirs(job.folder, exist_ok=True)
    script = job.path('job.sh')
    with open(script, 'w') as f:
        f.write(job_script(job, options))
    done = _run(['sbatch', '--parsable', *options.sbatch_args, script])
    if done.returncode != 0:
        raise RuntimeError(
            f'sbatch refused the job of {job.label} ({script}): '
            f'{done.stderr.strip()} (check --partition, --gpus-per-cell, '
            '--cpus-per-cell, --time and --sbatch-args)')
    job_id = done.stdout.strip().split(';')[0]
    dump_json_atomically(dict(job_id=job_id, name=job.name, script=script,
                              submitted=time.time()), job.path('job.json'))
    return job_id


def attach_or_submit(jobs: List[Job], options: SlurmOptions,
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
        resume = job.kind == 'cell' and osp.isfile(
            osp.join(job.folder, 'last_checkpoint'))
        job.job_id = submit(job, options)
        print(f'{prefix} {job.label}: submitted job {job.job_id}'
              f"{' (resumes from its last checkpoint)' if resume else ''}",
              flush=True)


def _echo_progress(job: Job, prefix: str) -> None:
    """Print the job's new progress lines (as a local run does)."""
    from .run import PROGRESS_MARKERS, _progress
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
            print(f'{prefix} {job.label}: {_progress(line)}', flush=True)


def _final_state(job: Job) -> Tuple[str, str]:
    """The state of a job the controller no longer lists."""
    from .run import _load_json
    state = _accounting_state(job.job_id)
    if state:
        return state, 'from sacct'
    exit_status = _load_json(job.path('exit.json'))
    if exit_status and str(exit_status.get('job_id')) == job.job_id:
        code = exit_status.get('exit_code')
        return ('COMPLETED', '') if code == 0 else (
            'FAILED', f'exit code {code}')
    return 'GONE', ('left the queue without writing its exit status: '
                    'cancelled, out of time, preempted or its node failed')


def wait(jobs: List[Job], options: SlurmOptions, prefix: str) -> None:
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


def outcome(job: Job) -> dict:
    """A cell's result as a local run records it, or a profile; a job that
    did not finish gives a failure naming its state and log."""
    from .run import _last_error, _load_json
    out = job.cell.result_file if job.cell else osp.join(job.folder,
                                                         'profile.json')
    result = _load_json(out) if job.state == 'COMPLETED' else None
    exit_status = _load_json(job.path('exit.json')) or {}
    if exit_status.get('job_id') != job.job_id:
        exit_status = {}
    if result is None:
        try:
            with open(job.log, errors='replace') as f:
                tail = f.read()[-8000:]
        except OSError:
            tail = ''
        reason = f', {job.reason}' if job.reason not in ('', 'None') else ''
        result = dict(
            status='failed', scheduler_state=job.state, log=job.log,
            error=f'Slurm job {job.job_id} {job.state}{reason}; log '
            f'{job.log}; last output: {_last_error(tail)}')
        if 'exit_code' in exit_status:
            result['exit_code'] = exit_status['exit_code']
    if job.cell is None:
        return result
    result.update(job_id=job.job_id, host=exit_status.get('host'))
    if 'end' in exit_status and 'wall_time_s' not in result:
        result['wall_time_s'] = exit_status['end'] - exit_status['start']
    dump_json_atomically(result, job.cell.result_file)
    return result


def run_on_slurm(suite: Suite, cells: List[Cell], keys: List,
                 options: SlurmOptions, skip_profile: bool,
                 digests: Optional[dict] = None) -> Tuple[List[dict], Dict]:
    """Every cell's result and every variant's profile, as
    :func:`~mmdrconv.suite.run.run_suite` needs them; the unfinished ones
    run as Slurm jobs. ``keys``: each cell's key (or the error computing
    it), as for a local run: a cell is finished only under its key."""
    from .run import _checked, _load_json, _profile_command, _profile_key
    from .run import prepare_cell
    check_clients()
    prefix = f'[{suite.name} slurm]'
    earlier, rerun_because = {}, {}
    for cell, key in zip(cells, keys):
        if isinstance(key, Exception):  # its config does not load
            earlier[cell.label] = dict(
                status='failed', error=f'{type(key).__name__}: {key}')
            continue
        finished, _, because = prepare_cell(suite, cell, prefix, key)
        if finished is not None:
            earlier[cell.label] = finished
        elif because:
            rerun_because[cell.label] = because
    profile_keys = {}
    for task in [] if skip_profile else suite.tasks:
        for variant in task.variants:
            out, _ = _profile_command(suite, task, variant)
            try:
                key = _profile_key(suite, task, variant, digests)
            except Exception as error:  # a config that does not load
                key = error
            profile = _load_json(out)
            if profile is not None and profile.get('key') != key:
                os.remove(out)  # out of date: profiled again
            profile_keys[task.name, variant] = key
    jobs = plan_jobs(suite, cells, options, skip_profile,
                     lambda cell: cell.label in earlier)
    try:
        attach_or_submit(jobs, options, prefix)
        wait(jobs, options, prefix)
    except KeyboardInterrupt:
        ids = ' '.join(j.job_id for j in jobs if j.job_id)
        print(f'\n{prefix} interrupted: the submitted jobs keep running '
              f'({ids or "none"}); run the same command again to attach to '
              f'them, or cancel them with: scancel {ids}', file=sys.stderr,
              flush=True)
        raise SystemExit(130)
    by_label = {j.label: outcome(j) for j in jobs}
    results = []
    for cell, key in zip(cells, keys):
        result = earlier.get(cell.label)
        if result is None:  # ran as a job now: recorded as a local run
            result = dict(by_label[cell.label], key=key)
            if cell.label in rerun_because:
                result['rerun_because'] = rerun_because[cell.label]
            dump_json_atomically(result, cell.result_file)
        if result.get('status') != 'ok':
            print(f'{prefix} {cell.label}: FAILED ({result["error"]})',
                  flush=True)
        results.append(_checked(cell, result, prefix))
    profiles = {}
    for (task_name, variant), key in profile_keys.items():
        task = next(t for t in suite.tasks if t.name == task_name)
        out, _ = _profile_command(suite, task, variant)
        label = _profile_label(task, variant)
        if isinstance(key, Exception):
            profiles[task_name, variant] = dict(
                error=f'{type(key).__name__}: {key}')
            continue
        profile = _load_json(out)
        if profile is not None and 'key' not in profile:  # written now
            profile = dict(profile, key=key)
            dump_json_atomically(profile, out)
        profiles[task_name, variant] = profile or dict(
            error=by_label.get(label, {}).get('error', 'no profile'))
    return results, profiles

