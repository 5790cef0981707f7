"""Export a segmentor (whole model) or a detector's backbone + neck to ONNX.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT OUT.onnx
        [--shape H W] [--verify | --verify-only] [--atol A] [--rtol R]
        [--cfg-options k=v ...]

Batch, height and width are dynamic in the graph; ``--shape`` is only the
size traced at (default: the test pipeline's resize scale). ``--verify`` runs
the graph in ONNX Runtime on the first image of the config's test dataset
(through the test pipeline and data_preprocessor), compares it with PyTorch,
prints the max abs error per output and exits non-zero above tolerance.
``--verify-only`` checks an existing OUT.onnx against CHECKPOINT without
exporting.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction


def parse_args(argv=None):
    from mmdrconv.deploy import DEFAULT_ATOL, DEFAULT_RTOL
    parser = argparse.ArgumentParser(
        description='Export to ONNX (segmentor: inputs -> seg_logits; '
        'detector: inputs -> backbone+neck features)')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out', help='the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size to trace at (the graph accepts '
                        'any size)')
    parser.add_argument('--verify', action='store_true',
                        help='compare ONNX Runtime with PyTorch on a test '
                        'image')
    parser.add_argument('--verify-only', action='store_true',
                        help='do not export: verify the existing OUT.onnx')
    parser.add_argument('--atol', type=float, default=DEFAULT_ATOL)
    parser.add_argument('--rtol', type=float, default=DEFAULT_RTOL,
                        help='tolerance: atol + rtol * max|PyTorch output|')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.verify_only and not osp.isfile(args.out):
        sys.exit(f'--verify-only: {args.out} does not exist')
    from mmdrconv.deploy import (VerificationError, default_shape,
                                 deployable, export_onnx, load_model,
                                 sample_inputs, verify_onnx)
    cfg, model = load_model(args.config, args.checkpoint, args.cfg_options)
    module = deployable(cfg, model)
    if not args.verify_only:
        shape = args.shape or default_shape(cfg)
        export_onnx(module, args.out, shape)
        print(f'wrote {args.out} (traced at {shape[0]}x{shape[1]}; outputs: '
              f'{", ".join(module.output_names)})')
    if not (args.verify or args.verify_only):
        return
    inputs = sample_inputs(cfg, model)
    try:
        report = verify_onnx(module, args.out, inputs, args.atol, args.rtol)
    except VerificationError as error:
        sys.exit(f'verification FAILED: {error}')
    for name, r in report.items():
        print(f'{name}: shape {r["shape"]}, max abs error '
              f'{r["max_abs_err"]:.3g} (max |output| {r["max_abs"]:.3g}, '
              f'tolerance {r["tolerance"]:.3g})')
    print(f'verification passed: ONNX Runtime matches PyTorch on a '
          f'{tuple(inputs.shape)} test image')


if __name__ == '__main__':
    main()
