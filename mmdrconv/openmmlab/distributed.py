"""Distributed runs on CPU-only machines (gloo), and a clean exit.

Patch of mmengine 0.10.7's distributed set-up, needed on machines without
CUDA: its ``init_dist`` calls ``torch.cuda.set_device`` and its default DDP
wrapper passes the local rank as a CUDA device; both fail on the CPU. Under
torchrun (launcher 'pytorch') we join the gloo process group ourselves,
which mmengine then uses as it is. GPU runs are left untouched.
"""
import gc

import torch
from mmengine.config import Config


def use_cpu_distributed(cfg: Config) -> None:
    """Distributed runs without CUDA: gloo, and DDP without device_ids."""
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    if cfg.launcher == 'pytorch' and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))


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
