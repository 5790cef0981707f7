"""Distributed runs on CPU-only machines (gloo), and a clean exit.

Patch of mmengine 0.10.7's distributed set-up, needed on machines without
CUDA: its ``init_dist`` calls ``torch.cuda.set_device`` and its default DDP
wrapper passes the local rank as a CUDA device; both fail on the CPU. Under
torchrun (launcher 'pytorch') and srun (launcher 'slurm') we join the gloo
process group ourselves, which mmengine then uses as it is. GPU runs are
left untouched.
"""
import gc
import os
import subprocess

import torch
from mmengine.config import Config


def use_cpu_distributed(cfg: Config) -> None:
    """Distributed runs without CUDA: gloo, and DDP without device_ids."""
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    if cfg.launcher in ('pytorch', 'slurm') and \
            not torch.distributed.is_initialized():
        if cfg.launcher == 'slurm':
            _slurm_rendezvous()
        torch.distributed.init_process_group(backend='gloo')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))


def _slurm_rendezvous() -> None:
    """The torch.distributed variables from srun's, as mmengine 0.10.7's
    ``_init_dist_slurm`` sets them (first node of the job, port 29500 unless
    MASTER_PORT is set)."""
    nodes = os.environ['SLURM_NODELIST']
    first = subprocess.getoutput(
        f'scontrol show hostnames {nodes} | head -n1').strip()
    os.environ.setdefault('MASTER_ADDR', first or nodes)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def close_distributed() -> None:
    """Leave the process group before exit.

    Call it after the Runner is out of scope. The Runner sits in reference
    cycles (its loops point back at it), so its DDP wrapper, whose reducer
    holds the gloo group, would otherwise live until interpreter shutdown;
    gloo's threads torn down then abort the process ("terminate called
    without an active exception") after a successful run. Collecting first
    frees them while the interpreter is still whole.
    """
    if torch.distributed.is_available() and \
            torch.distributed.is_initialized():
        gc.collect()
        torch.distributed.destroy_process_group()
