"""A real single-node Slurm cluster for the tests, in a temporary folder.

Debian's ``slurmctld``, ``slurmd`` and ``slurm-client`` (installed with
apt-get when missing and running as root: ``python tests/slurm_cluster.py
install``, which ``make test`` runs first), ``auth/none`` (no munge), no
accounting database (so no sacct, as on some clusters), finished jobs kept
by ``jobcomp/filetxt``, two fake GPUs (character devices) so ``--gres=gpu``
works on a machine without any. The daemons are stopped by their PIDs.
"""
import os
import os.path as osp
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from typing import Dict, List, Optional

PACKAGES = ('slurmctld', 'slurmd', 'slurm-client')
COMMANDS = ('slurmctld', 'slurmd', 'sbatch', 'srun', 'squeue', 'scontrol',
            'scancel', 'sinfo')
PARTITION = 'debug'
GPUS = 2

CONF = """\
ClusterName=mmdrconv-tests
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
MailProg=/bin/true
StateSaveLocation={dir}/ctld
SlurmdSpoolDir={dir}/d
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={dir}/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
EnforcePartLimits=ALL
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=2
GresTypes=gpu
NodeName=localhost NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} \
RealMemory=1000 Gres=gpu:{gpus} State=UNKNOWN
PartitionName={partition} Nodes=localhost Default=YES MaxTime=INFINITE \
State=UP
"""


def _path() -> str:
    # Debian puts the daemons in /usr/sbin, not on every user's PATH.
    return os.environ.get('PATH', '') + ':/usr/sbin:/sbin'


def missing_commands() -> List[str]:
    return [c for c in COMMANDS if shutil.which(c, path=_path()) is None]


def install() -> Optional[str]:
    """Install the packages when a command is missing; returns why Slurm is
    not available, or None when it is."""
    if not missing_commands():
        return None
    if os.geteuid() != 0:
        return (f'Slurm commands {missing_commands()} missing and not root: '
                f'apt-get install {" ".join(PACKAGES)}')
    if shutil.which('apt-get') is None:
        return f'Slurm commands {missing_commands()} missing and no apt-get'
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    for command in (['apt-get', 'update', '-q'],
                    ['apt-get', 'install', '-y', '-q',
                     '--no-install-recommends', *PACKAGES]):
        done = subprocess.run(command, env=env, capture_output=True,
                              text=True)
        if done.returncode != 0:
            return f'{" ".join(command)} failed: {done.stderr[-500:]}'
    missing = missing_commands()
    return f'still missing after apt-get: {missing}' if missing else None


def unavailable() -> Optional[str]:
    """Why a cluster cannot be started here (None: it can)."""
    if missing_commands():
        return install()
    if os.geteuid() != 0:  # SlurmUser=root and the fake GPU devices
        return 'the test cluster runs its daemons as root'
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Cluster:
    """slurmctld + slurmd on this machine; ``env`` holds SLURM_CONF."""

    def __init__(self, folder: str):
        self.folder = folder
        self.conf = osp.join(folder, 'slurm.conf')
        self.env = dict(os.environ, SLURM_CONF=self.conf, PATH=_path())
        self.processes: List[subprocess.Popen] = []

    def start(self, timeout: float = 60) -> 'Cluster':
        for sub in ('ctld', 'd'):
            os.makedirs(osp.join(self.folder, sub), exist_ok=True)
        for i in range(GPUS):  # /dev/null's numbers: harmless to open
            device = osp.join(self.folder, f'gpu{i}')
            if not osp.exists(device):
                os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        with open(osp.join(self.folder, 'gres.conf'), 'w') as f:
            f.write(f'Name=gpu File={self.folder}/gpu[0-{GPUS - 1}]\n')
        with open(self.conf, 'w') as f:
            f.write(CONF.format(dir=self.folder, host=socket.gethostname(),
                                cpus=os.cpu_count() or 1, gpus=GPUS,
                                partition=PARTITION,
                                ctld_port=_free_port(), d_port=_free_port()))
        logs = open(osp.join(self.folder, 'daemons.out'), 'w')
        for command in (['slurmctld', '-D', '-f', self.conf],
                        ['slurmd', '-D', '-f', self.conf, '-N', 'localhost']):
            self.processes.append(subprocess.Popen(
                command, env=self.env, stdout=logs, stderr=logs))
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.run('sinfo', '-h', '-o', '%T', check=False).stdout
            if state.strip() == 'idle':
                return self
            if any(p.poll() is not None for p in self.processes):
                break
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f'Slurm did not come up in {timeout} s: '
                           + self.daemon_logs())

    def daemon_logs(self) -> str:
        text = []
        for name in ('daemons.out', 'slurmctld.log', 'slurmd.log'):
            path = osp.join(self.folder, name)
            if osp.isfile(path):
                text.append(f'--- {name}\n' + open(path).read()[-2000:])
        return '\n'.join(text)

    def run(self, *command: str, check: bool = True
            ) -> subprocess.CompletedProcess:
        done = subprocess.run(command, env=self.env, capture_output=True,
                              text=True, timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError(f'{command}: {done.stderr}')
        return done

    def jobs(self) -> List[Dict[str, str]]:
        """The controller's record of every finished job (the jobcomp
        file): one dict of its fields per job."""
        path = osp.join(self.folder, 'jobcomp.txt')
        if not osp.isfile(path):
            return []
        with open(path) as f:
            return [dict(re.findall(r'(\w+)=(\S*)', line)) for line in f
                    if line.strip()]

    def stop(self) -> None:
        if all(p.poll() is not None for p in self.processes):
            return
        self.run('scancel', f'--user={os.getuid()}', check=False)
        deadline = time.time() + 20
        while time.time() < deadline and self.run(
                'squeue', '-h', check=False).stdout.strip():
            time.sleep(0.25)
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == '__main__':
    if sys.argv[1:] != ['install']:
        sys.exit('usage: python tests/slurm_cluster.py install')
    # Never fails `make test`: the Slurm tests skip (or, under CI=true,
    # fail) with the reason.
    why = install()
    print(f'Slurm for the tests: {why or "available"}')
