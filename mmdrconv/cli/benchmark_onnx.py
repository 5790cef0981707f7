"""ONNX Runtime vs PyTorch inference latency of exported models, side by side.

    python tools/deployment/benchmark_onnx.py [CONFIG ...] [--shape H W]
        [--batch-size 1] [--rounds 5] [--repeat 5] [--threads 1]

Default: DeepLabV3 for the generated Cityscapes data, standard convolutions
(the reference, first) and DRConv in c3-c5. Each model (initialised weights)
is exported with tools/deployment/export_onnx.py's code, then both runtimes
are timed in this process, interleaved round by round; the ratios are
medians of per-round ratios. The first config is the reference of the
"/ first" columns. One thread per runtime by default, because multi-thread
PyTorch (OpenMP) timings swing with the neighbours' load on a shared
machine (docs/deploy.md); use --threads 2 or more on a quiet machine.
"""
import argparse

from . import at_least, summary

DEFAULT_CONFIGS = [
    'configs/synthetic/deeplabv3_r50-w16-d8_synthetic-cityscapes.py',
    'configs/synthetic/deeplabv3_r50-w16-d8-drconv-c3-c5_'
    'synthetic-cityscapes.py',
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument('configs', nargs='*', default=DEFAULT_CONFIGS)
    parser.add_argument('--shape', type=at_least(1), nargs=2,
                        default=(128, 256), metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=at_least(1), default=1)
    parser.add_argument('--rounds', type=at_least(1), default=5)
    parser.add_argument('--repeat', type=at_least(1), default=5)
    parser.add_argument('--threads', type=at_least(1), default=1)
    args = parser.parse_args(argv)
    from ..analysis.onnx_benchmark import benchmark_runtimes
    result = benchmark_runtimes(args.configs, args.shape, args.batch_size,
                                args.rounds, args.repeat, args.threads)
    print(f'input {args.batch_size}x3x{args.shape[0]}x{args.shape[1]}, '
          f'{args.threads} threads, median of {args.rounds} interleaved '
          f'rounds x {args.repeat} calls')
    print('| config | PyTorch ms | ONNX Runtime ms | ORT / PyTorch | '
          'PyTorch / first | ORT / first |')
    print('|---|---|---|---|---|---|')
    ms, vs = result['ms'], result['vs_first']
    for config in args.configs:
        print(f'| {config} | {ms[config, "torch"]:.1f} | '
              f'{ms[config, "onnx"]:.1f} | '
              f'{result["onnx_vs_torch"][config].format()} | '
              f'{vs[config, "torch"].format()} | '
              f'{vs[config, "onnx"].format()} |')
    print('ratios: median over rounds (lowest-highest round)')


if __name__ == '__main__':
    main()
