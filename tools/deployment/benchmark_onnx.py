"""ONNX Runtime vs PyTorch inference latency of exported models, side by side.

    python tools/deployment/benchmark_onnx.py [CONFIG ...] [--shape H W]
        [--batch-size 1] [--rounds 5] [--repeat 5] [--threads 1]

Default: DeepLabV3 for the generated Cityscapes data, standard convolutions
(the reference, first) and DRConv in c3-c5. Each model (initialised weights)
is exported with tools/deployment/export_onnx.py's code, then both runtimes
are timed in this process, interleaved round by round; the ratios are
medians of per-round ratios. The first config is the reference of the
"/ first" columns. One thread per runtime by default: on a shared 2-core
machine, 2-thread PyTorch (OpenMP) timings swing by 5x with the neighbours'
load; use --threads 2 on a quiet machine.
"""
import argparse

from mmdrconv.cli import at_least
from mmdrconv.deploy import benchmark_runtimes

DEFAULT_CONFIGS = [
    'configs/synthetic/deeplabv3_r50-w16-d8_synthetic-cityscapes.py',
    'configs/synthetic/deeplabv3_r50-w16-d8-drconv-c3-c5_'
    'synthetic-cityscapes.py',
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*', default=DEFAULT_CONFIGS)
    parser.add_argument('--shape', type=at_least(1), nargs=2,
                        default=(128, 256), metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=at_least(1), default=1)
    parser.add_argument('--rounds', type=at_least(1), default=5)
    parser.add_argument('--repeat', type=at_least(1), default=5)
    parser.add_argument('--threads', type=at_least(1), default=1)
    args = parser.parse_args(argv)
    result = benchmark_runtimes(args.configs, args.shape, args.batch_size,
                                args.rounds, args.repeat, args.threads)
    print(f'input {args.batch_size}x3x{args.shape[0]}x{args.shape[1]}, '
          f'{args.threads} threads, median of {args.rounds} interleaved '
          f'rounds x {args.repeat} calls')
    print('| config | PyTorch ms | ONNX Runtime ms | ORT / PyTorch | '
          'PyTorch / first | ORT / first |')
    print('|---|---|---|---|---|---|')
    for config in args.configs:
        ms, vs = result['ms'], result['vs_first']
        print(f'| {config} | {ms[config, "torch"]:.1f} | '
              f'{ms[config, "onnx"]:.1f} | '
              f'{_ratio(result["onnx_vs_torch"][config])} | '
              f'{_ratio(vs[config, "torch"])} | '
              f'{_ratio(vs[config, "onnx"])} |')
    print('ratios: median over rounds (lowest-highest round)')


def _ratio(stats):
    median, low, high = stats
    return f'{median:.2f} ({low:.2f}-{high:.2f})'


if __name__ == '__main__':
    main()
