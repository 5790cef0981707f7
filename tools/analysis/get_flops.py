"""Params and multiply-adds of a config's model for one image (DRConv
counted as what it computes: one conv per output pixel plus its guide and
generator). Counts the network forward without post-processing.

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

from mmdrconv.analysis import count_complexity
from mmdrconv.analysis.inputs import random_batch
from mmdrconv.apis import build_model, load_config
from mmdrconv.cli import at_least
from mmdrconv.layers import DRConv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=at_least(1), nargs=2,
                        default=(800, 1344), metavar=('H', 'W'),
                        help='image size; batch size is 1')
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    model = revert_sync_batchnorm(build_model(cfg)).eval()
    batch = random_batch(cfg, batch_size=1, size=tuple(args.shape))
    data = model.data_preprocessor(batch, False)
    counts = count_complexity(
        model, lambda: model(data['inputs'], data['data_samples'],
                             mode='tensor'))
    drconvs = sum(isinstance(m, DRConv) for m in model.modules())
    height, width = args.shape
    network_input = 'x'.join(map(str, data['inputs'].shape))
    print(f'config: {args.config}\n'
          f'batch size: 1 (one image)\n'
          f'input size: {height}x{width} image -> {network_input} network '
          'input (after the data preprocessor\'s padding)\n'
          'counted: the network forward (mode="tensor": backbone, neck and '
          'heads), without post-processing (NMS, mask pasting, resizing); '
          'conv/linear/DRConv layers only\n'
          f'params: {counts["params"] / 1e6:.2f} M\n'
          f'multiply-adds: {counts["macs"] / 1e9:.2f} G for one image\n'
          f'DRConv layers: {drconvs}')


if __name__ == '__main__':
    torch.set_grad_enabled(False)
    main()
