"""Run under torchrun by test_tools.py: a few DDP iterations of a tiny DRConv
detector on the CPU (gloo), then each rank saves its parameters."""
import os
import sys

import torch
from mmengine.dist import get_rank

from mmdrconv.apis import load_config
from mmdrconv.openmmlab import close_distributed
from mmdrconv.runner import build_runner, prepare_train_cfg


def train_and_save(config, work_dir, options):
    cfg = load_config(config, options)
    cfg = prepare_train_cfg(cfg, config, work_dir, launcher='pytorch')
    runner = build_runner(cfg)
    runner.train()
    model = runner.model.module
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.save(dict(iter=runner.iter, params=params),
               os.path.join(work_dir, f'rank{get_rank()}.pth'))


def main(config, work_dir, options):
    try:
        train_and_save(config, work_dir, options)
    finally:
        close_distributed()


if __name__ == '__main__':
    config, work_dir, *pairs = sys.argv[1:]
    options = {}
    for pair in pairs:
        key, value = pair.split('=', 1)
        options[key] = int(value) if value.isdigit() else value
    main(config, work_dir, options)
