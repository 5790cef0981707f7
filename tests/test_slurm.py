"""The suite's Slurm launcher, tools/slurm_{train,test}.sh and mmengine's
launcher='slurm' on the CPU (gloo), against a real single-node Slurm
(tests/slurm_cluster.py). Without root or Slurm they skip with the reason;
under CI=true they fail instead."""
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO, smoke_suite
from slurm_cluster import PARTITION, Cluster, unavailable

# One cluster, started once, on one pytest-xdist worker.
pytestmark = pytest.mark.xdist_group('slurm')

DEEPLAB = osp.join(REPO, 'configs/synthetic/'
                   'deeplabv3_r50-w16-d8_synthetic-cityscapes.py')


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    why = unavailable()
    if why:
        if os.environ.get('CI') == 'true':
            pytest.fail(f'CI=true: the Slurm tests must run, but {why}')
        pytest.skip(why)
    cluster = Cluster(str(tmp_path_factory.mktemp('slurm'))).start()
    # The jobs import this checkout's mmdrconv (sbatch passes the
    # environment on).
    cluster.env['PYTHONPATH'] = REPO
    yield cluster
    cluster.stop()


def _suite_command(suite, work_dir, *extra):
    return [sys.executable, osp.join(REPO, 'tools/suite.py'), suite,
            '--work-dir', work_dir, *extra]


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_suite(cluster, suite, work_dir, *extra, check=True):
    done = subprocess.run(_suite_command(suite, work_dir, *extra),
                          cwd=osp.dirname(work_dir), env=cluster.env,
                          capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    if check:
        assert done.returncode == 0, output[-4000:]
    return done.returncode, output


def slurm_args(cpus=1, gpus=0):
    return ['--launcher', 'slurm', '--partition', PARTITION,
            '--gpus-per-cell', str(gpus), '--cpus-per-cell', str(cpus),
            '--poll', '0.5']


def small_suite(folder, synthetic_data, name, variants, max_iters=2):
    """DeepLabV3 of the smoke preset: the given variants, one seed."""
    path = folder / f'{name}.py'
    path.write_text(
        f"_base_ = '{smoke_suite(folder, synthetic_data)}'\n"
        f"suite = dict(name='{name}', tasks=[\n"
        f"    dict(task, max_iters={max_iters}, variants={{k: task["
        f"'variants'][k] for k in {variants!r}}})\n"
        "    for task in _base_.suite.tasks\n"
        "    if task['name'] == 'cityscapes-semantic'])\n")
    return str(path)


def _cells(work_dir):
    with open(osp.join(work_dir, 'results.json')) as f:
        return {c['variant']: c for c in json.load(f)['cells']}


def _job_id(cell_dir):
    with open(osp.join(cell_dir, 'cell_job.json')) as f:
        return json.load(f)['job_id']


@pytest.fixture(scope='module')
def two_cells(cluster, tmp_path_factory, synthetic_data):
    """Two smoke cells run locally and through Slurm (with profiling): the
    same threads per cell, so the same numbers."""
    folder = tmp_path_factory.mktemp('slurm-suite')
    suite = small_suite(folder, synthetic_data, 'two',
                        ('standard', 'drconv'))
    threads = max(1, (os.cpu_count() or 1) // 2)  # what --jobs 2 gives
    local = str(folder / 'local')
    run_suite(cluster, suite, local, '--skip-profile', '--jobs', '2')
    slurm = str(folder / 'slurm')
    output = run_suite(cluster, suite, slurm, *slurm_args(threads))[1]
    return suite, local, slurm, output


def test_smoke_cells_run_as_slurm_jobs_like_a_local_run(cluster, two_cells):
    _, local, slurm, output = two_cells
    local_cells, slurm_cells = _cells(local), _cells(slurm)
    assert set(slurm_cells) == {'standard', 'drconv'}
    for variant, cell in slurm_cells.items():
        assert cell['status'] == 'ok', cell
        assert cell['metrics'] == local_cells[variant]['metrics']
        assert cell['metrics']['mIoU'] > 0
    # Every cell and every profile was a job, in the scheduler's own record.
    by_id = {j['JobId']: j for j in cluster.jobs()}
    task_dir = osp.join(slurm, 'cityscapes-semantic')
    for variant in ('standard', 'drconv'):
        job_id = _job_id(osp.join(task_dir, variant, 'seed0'))
        assert slurm_cells[variant]['job_id'] == job_id
        assert by_id[job_id]['JobState'] == 'COMPLETED'
        assert by_id[job_id]['Name'].startswith(
            f'mmdrconv-cityscapes-semantic-{variant}-seed-0-')
        assert f'submitted job {job_id}' in output
        with open(osp.join(task_dir, variant, 'profile_job.json')) as f:
            profile_job = json.load(f)['job_id']
        assert by_id[profile_job]['JobState'] == 'COMPLETED'
    with open(osp.join(slurm, 'results.json')) as f:
        rows = json.load(f)['summary']
    assert all(r['profile']['params'] > 1e6 and r['profile']['latency_ms'] > 0
               for r in rows), rows
    assert 'jobs: 0 queued, 0 running, 4 done, 0 failed' in output
    assert '## cityscapes-semantic' in open(osp.join(slurm,
                                                     'results.md')).read()


def test_a_rerun_submits_nothing(cluster, two_cells):
    suite, _, slurm, _ = two_cells
    before = len(cluster.jobs())
    output = run_suite(cluster, suite, slurm, *slurm_args())[1]
    assert output.count('finished earlier, skipped') == 2
    assert 'submitted' not in output and 'attached' not in output
    assert len(cluster.jobs()) == before
    assert not cluster.run('squeue', '-h').stdout.strip()


def test_a_cancelled_two_task_cell_is_reported_then_resumed(
        cluster, tmp_path, synthetic_data):
    """One cell as two srun tasks (gloo on the CPU, two fake GPUs). Ctrl-C
    of the waiting suite leaves its job running and a rerun attaches to it;
    scancel after its first checkpoint (the job suspended there); the next
    run resumes from it."""
    # Checkpoints every 4 iterations (a quarter of the budget); the test
    # suspends the job at the first, so the budget need not outlast scancel.
    suite = small_suite(tmp_path, synthetic_data, 'cancel', ('standard', ),
                        max_iters=16)
    work_dir = str(tmp_path / 'out')
    cell = osp.join(work_dir, 'cityscapes-semantic', 'standard', 'seed0')
    args = slurm_args(gpus=2) + ['--skip-profile']

    def start():
        # SIGINT at its default, as for a command in a terminal: under a
        # shell's background job (CI run with `&`) it is inherited ignored.
        return subprocess.Popen(_suite_command(suite, work_dir, *args),
                                cwd=str(tmp_path), env=cluster.env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                preexec_fn=_default_sigint)

    def wait_for(process, path):
        deadline = time.time() + 300
        while not osp.isfile(path):
            assert process.poll() is None and time.time() < deadline, \
                process.stdout.read()[-4000:]
            time.sleep(0.2)

    first = start()
    wait_for(first, osp.join(cell, 'cell_job.json'))
    job_id = _job_id(cell)
    time.sleep(1)  # past the submission, into the waiting
    first.send_signal(signal.SIGINT)
    output = first.communicate(timeout=60)[0]
    assert first.returncode == 130, output[-4000:]
    assert f'the submitted jobs keep running ({job_id})' in output
    state = cluster.run('squeue', '-h', '-j', job_id, '-o', '%T').stdout
    assert state.strip() in ('PENDING', 'RUNNING')

    # Held after its first checkpoint, so that it cannot finish before
    # scancel (on an idle machine it trained its whole budget while the
    # next suite started); a suspended job is still the suite's to wait for.
    checkpoint = osp.join(cell, 'last_checkpoint')
    deadline = time.time() + 300
    while not osp.isfile(checkpoint):
        assert time.time() < deadline, 'no checkpoint within 300 s'
        time.sleep(0.1)
    cluster.run('scontrol', 'suspend', job_id)
    waiting = start()
    seen = []
    for line in waiting.stdout:  # until it has attached to the job
        seen.append(line)
        if f'attached to job {job_id}' in line:
            break
    cluster.run('scancel', job_id)
    output = ''.join(seen) + waiting.communicate(timeout=120)[0]
    assert waiting.returncode != 0, output[-4000:]
    assert f'attached to job {job_id}' in output and 'submitted' not in output
    log = osp.join(cell, f'slurm-{job_id}.log')
    assert f'job {job_id} CANCELLED' in output
    failed = _cells(work_dir)['standard']
    assert failed['status'] == 'failed'
    assert failed['scheduler_state'] == 'CANCELLED' and failed['log'] == log
    assert 'CANCELLED' in failed['error'] and log in failed['error']
    assert {j['JobId']: j['JobState'] for j in cluster.jobs()}[job_id] == \
        'CANCELLED'
    first = open(log).read()
    assert 'Distributed launcher: slurm' in first and 'GPU number: 2' in first

    output = run_suite(cluster, suite, work_dir, *args)[1]
    assert 'resumes from its last checkpoint' in output
    resumed = _job_id(cell)
    assert resumed != job_id
    record = {j['JobId']: j for j in cluster.jobs()}[resumed]
    assert record['JobState'] == 'COMPLETED' and record['ProcCnt'] == '2'
    second = open(osp.join(cell, f'slurm-{resumed}.log')).read()
    checkpoint_iter = int(re.search(r'resumed epoch: \d+, iter: (\d+)',
                                    second).group(1))
    assert 0 < checkpoint_iter < 16
    result = _cells(work_dir)['standard']
    assert result['status'] == 'ok' and result['iters'] == 16
    assert result['metrics']['mIoU'] > 0


def test_slurm_train_and_test_scripts(cluster, tmp_path, synthetic_data):
    """mmdet's interface, --launcher slurm with gloo on the CPU: one task
    trains and validates; two test its checkpoint (one image each) and get
    the same mIoU. (Two training tasks would not: with BN, each rank keeps
    its own running statistics and validates with them.)"""
    env = dict(cluster.env, GPUS='1', GPUS_PER_NODE='1', CPUS_PER_TASK='1',
               PYTHON=sys.executable, MASTER_PORT='29731')
    work_dir = str(tmp_path / 'train')
    data = ['--data-root', str(synthetic_data / 'cityscapes')]
    train = subprocess.run(
        [osp.join(REPO, 'tools/slurm_train.sh'), PARTITION, 'train',
         DEEPLAB, work_dir, *data, '--cfg-options', 'train_cfg.max_iters=2',
         'train_cfg.val_interval=2'], env=env, capture_output=True,
        text=True, timeout=600)
    assert train.returncode == 0, (train.stdout + train.stderr)[-4000:]
    checkpoint = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(checkpoint)
    test = subprocess.run(
        [osp.join(REPO, 'tools/slurm_test.sh'), PARTITION, 'test', DEEPLAB,
         checkpoint, *data, '--work-dir', str(tmp_path / 'test')],
        env=dict(env, GPUS='2', GPUS_PER_NODE='2'), capture_output=True,
        text=True, timeout=600)
    assert test.returncode == 0, (test.stdout + test.stderr)[-4000:]
    pattern = r'Iter\((?:val|test)\).*mIoU: ([\d.]+)'
    val = re.findall(pattern, train.stdout + train.stderr)
    tested = re.findall(pattern, test.stdout + test.stderr)
    assert len(val) == 1 and tested == val
    assert 'GPU number: 2' in test.stdout + test.stderr
    names = [j['Name'] for j in cluster.jobs()]
    assert 'train' in names and 'test' in names


def test_slurm_options_are_checked(capsys):
    from mmdrconv.cli.suite import main
    for argv, message in (
            (['--partition', 'p'], '--partition need(s) --launcher slurm'),
            (['--launcher', 'slurm'], '--launcher slurm needs --partition'),
            (['--launcher', 'slurm', '--partition', 'p', '--sbatch-args',
              '-J x'], "--sbatch-args: ['-J'] set by the suite itself"),
            (['--launcher', 'slurm', '--partition', 'p', '--jobs', '2'],
             '--jobs is for local runs')):
        with pytest.raises(SystemExit) as exit_:
            main(['configs/suites/smoke.py', *argv])
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err


def test_a_cluster_without_gpus_is_told_to_pass_gpus_per_cell_0(
        tmp_path, monkeypatch):
    """sbatch's refusal of --gres=gpu (a partition without GPUs) names the
    option that fixes it; other refusals name the options to check."""
    from mmdrconv.suite.jobs import Job, SuiteError
    from mmdrconv.suite.slurm import SlurmJob, SlurmOptions, submit
    tools = tmp_path / 'bin'
    tools.mkdir()
    sbatch = tools / 'sbatch'
    sbatch.write_text(
        '#!/bin/sh\necho "sbatch: error: Batch job submission failed: '
        'Invalid generic resource (gres) specification" >&2\nexit 1\n')
    sbatch.chmod(0o755)
    monkeypatch.setenv('PATH', f"{tools}:{os.environ['PATH']}")
    job = Job('cell', 'det | a | seed 0', '[t 1/1]', str(tmp_path / 'cell'),
              ['true'], str(tmp_path / 'cell/cell_result.json'), {})
    with pytest.raises(SuiteError) as error:
        submit(SlurmJob(job, gpus=1, tasks=1, command=['true']),
               SlurmOptions(partition='cpu'))
    assert str(error.value).endswith(
        "Invalid generic resource (gres) specification (it asks for 1 "
        "GPU(s) (--gres=gpu), which partition 'cpu' does not offer; on a "
        'cluster without GPUs pass --gpus-per-cell 0 (each cell one CPU '
        'process))')
    with pytest.raises(SuiteError) as error:
        submit(SlurmJob(job, gpus=0, tasks=1, command=['true']),
               SlurmOptions(partition='cpu'))
    assert str(error.value).endswith('(check --partition, --gpus-per-cell, '
                                     '--cpus-per-cell, --time and '
                                     '--sbatch-args)')
