"""Params and multiply-adds of a config's model (DRConv counted as what it
computes: one conv per output pixel plus its guide and generator).

    python tools/analysis/get_flops.py CONFIG [--shape H W]
"""
import argparse

import torch
from mmengine.model import revert_sync_batchnorm

from mmdrconv.analysis import count_complexity
from mmdrconv.analysis.inputs import random_batch
from mmdrconv.apis import build_model, load_config
from mmdrconv.layers import DRConv


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=(800, 1344),
                        metavar=('H', 'W'))
    args = parser.parse_args()
    cfg = load_config(args.config)
    model = revert_sync_batchnorm(build_model(cfg)).eval()
    batch = random_batch(cfg, batch_size=1, size=tuple(args.shape))
    data = model.data_preprocessor(batch, False)
    counts = count_complexity(
        model, lambda: model(data['inputs'], data['data_samples'],
                             mode='tensor'))
    drconvs = sum(isinstance(m, DRConv) for m in model.modules())
    print(f'config: {args.config}\ninput: 1x3x{args.shape[0]}x'
          f'{args.shape[1]} (network forward, no post-processing)\n'
          f'params: {counts["params"] / 1e6:.2f} M\n'
          f'multiply-adds: {counts["macs"] / 1e9:.2f} G\n'
          f'DRConv layers: {drconvs}')


if __name__ == '__main__':
    torch.set_grad_enabled(False)
    main()
