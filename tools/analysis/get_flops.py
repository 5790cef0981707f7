"""Params and multiply-adds of a config's model (DRConv counted as what it
computes: one conv per output pixel plus its guide and generator).

    python tools/analysis/get_flops.py CONFIG [--shape H W]

It counts one image (batch 1) at 800 x 1344 by default, the COCO test size,
through the network forward (mode='tensor', no test-time post-processing).
The benchmark suite's GMACs differ on purpose: they are per image at the
task's profile size (e.g. 128 x 128 for the generated COCO task), from a
full inference step (test_step) on a batch of two divided by two. Pass
--shape H W to count at the suite's size.
"""
import argparse

import torch
from mmengine.model import revert_sync_batchnorm

from mmdrconv.apis import build_model, demo_batch, load_config
from mmdrconv.layers import DRConv
from mmdrconv.profiling import count_complexity


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=(800, 1344),
                        metavar=('H', 'W'))
    args = parser.parse_args()
    cfg = load_config(args.config)
    model = revert_sync_batchnorm(build_model(cfg)).eval()
    batch = demo_batch(cfg, batch_size=1, size=tuple(args.shape))
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
