"""ONNX Runtime vs PyTorch inference latency of exported models, side by side.

    python tools/deployment/benchmark_onnx.py [CONFIG ...] [--shape H W]
        [--batch-size 1] [--rounds 5] [--repeat 5] [--threads 2]

Default: the DRConv DeepLabV3 for the generated Cityscapes data and its
standard-convolution twin. Each model (initialised weights) is exported with
tools/deployment/export_onnx.py's code, then both runtimes are timed in this
process, interleaved round by round; the ratios are medians of per-round
ratios. The first config is the reference of the "vs first" column.
"""
import argparse

from mmdrconv.deploy import benchmark_runtimes

DEFAULT_CONFIGS = [
    'configs/synthetic/deeplabv3_r50-w16-d8-drconv-c3-c5_'
    'synthetic-cityscapes.py',
    'configs/synthetic/deeplabv3_r50-w16-d8_synthetic-cityscapes.py',
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*', default=DEFAULT_CONFIGS)
    parser.add_argument('--shape', type=int, nargs=2, default=(128, 256),
                        metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    result = benchmark_runtimes(args.configs, args.shape, args.batch_size,
                                args.rounds, args.repeat, args.threads)
    first = args.configs[0]
    print(f'input {args.batch_size}x3x{args.shape[0]}x{args.shape[1]}, '
          f'{args.threads} threads, median of {args.rounds} interleaved '
          f'rounds x {args.repeat} calls')
    print(f'| config | PyTorch ms | ONNX Runtime ms | ORT / PyTorch | '
          f'PyTorch vs first | ORT vs first |')
    print('|---|---|---|---|---|---|')
    for config in args.configs:
        ms, vs = result['ms'], result['vs_first']
        print(f'| {config} | {ms[config, "torch"]:.1f} | '
              f'{ms[config, "onnx"]:.1f} | '
              f'{result["onnx_vs_torch"][config]:.2f} | '
              f'{vs[config, "torch"]:.2f} | {vs[config, "onnx"]:.2f} |')
    print(f'(first = {first})')


if __name__ == '__main__':
    main()
