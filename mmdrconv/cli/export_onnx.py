"""Export a segmentor (whole model) or a detector (backbone, neck and dense
head: raw outputs, no post-processing) to ONNX.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT OUT.onnx
        [--shape H W] [--verify | --verify-only] [--atol A] [--rtol R]
        [--allow-missing-drconv] [--cfg-options k=v ...]

A model with DRConv layers that the exported part does not run (a two-stage
detector's RoI heads: they need the boxes of the post-processing) is
refused before the export, naming them, unless --allow-missing-drconv.

Batch, height and width are dynamic in the graph; ``--shape`` is only the
size traced at (default: the test pipeline's resize scale). The output path
and ``--shape`` are checked before the export (a size at which a feature
map of the model would be one pixel is refused: the exporter would fix it),
and after it the graph is run in ONNX Runtime at three other sizes and
batch sizes against PyTorch: the tool exits non-zero, saying so, if the
graph is not one of any size. ``--verify`` runs
the graph in ONNX Runtime on the first image of the config's test dataset
(through the test pipeline and data_preprocessor; read before the export),
compares it with PyTorch, prints the max abs error per output and exits
non-zero above tolerance.
``--verify-only`` checks an existing OUT.onnx against CHECKPOINT without
exporting.
"""
import argparse
import os
import os.path as osp
import sys

from . import CfgOptions


def parse_args(argv=None):
    from mmdrconv.deploy import DEFAULT_ATOL, DEFAULT_RTOL
    parser = argparse.ArgumentParser(
        description='Export to ONNX (segmentor: inputs -> seg_logits; '
        'detector: inputs -> raw dense head outputs per level, and for '
        'two-stage detectors the neck features)')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out', help='the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size to trace at; the graph is then '
                        'checked at other sizes')
    parser.add_argument('--verify', action='store_true',
                        help='compare ONNX Runtime with PyTorch on a test '
                        'image')
    parser.add_argument('--verify-only', action='store_true',
                        help='do not export: verify the existing OUT.onnx')
    parser.add_argument('--atol', type=float, default=DEFAULT_ATOL)
    parser.add_argument('--rtol', type=float, default=DEFAULT_RTOL,
                        help='tolerance: atol + rtol * max|PyTorch output|')
    parser.add_argument('--allow-missing-drconv', action='store_true',
                        help='export even if some DRConv layers of the model '
                        'are in parts the graph does not contain (named)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptions,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def check_output_path(out: str, exists: bool) -> None:
    """Exit naming OUT unless it can be written (or, ``exists``, read)."""
    if exists:
        if not osp.isfile(out):
            sys.exit(f'--verify-only: OUT {out} does not exist')
        return
    if osp.isdir(out):
        sys.exit(f'OUT {out} is a directory; give the .onnx file to write')
    folder = osp.dirname(osp.abspath(out))
    if not osp.isdir(folder):
        sys.exit(f'OUT {out}: folder {folder} does not exist')
    if not os.access(folder, os.W_OK) or (osp.exists(out) and
                                          not os.access(out, os.W_OK)):
        sys.exit(f'OUT {out} cannot be written (permission denied)')


def main(argv=None):
    args = parse_args(argv)
    check_output_path(args.out, exists=args.verify_only)
    if args.shape and min(args.shape) < 1:
        sys.exit(f'--shape {args.shape[0]} {args.shape[1]}: height and '
                 'width must be positive')
    for name in ('atol', 'rtol'):
        if not getattr(args, name) >= 0:
            sys.exit(f'--{name} must be >= 0, got {getattr(args, name)}')
    from mmdrconv.deploy import (VerificationError, check_trace_shape,
                                 default_shape, deployable, drconv_coverage,
                                 export_onnx, load_model, sample_inputs,
                                 verify_dynamic_sizes, verify_onnx)
    cfg, model = load_model(args.config, args.checkpoint, args.cfg_options)
    module = deployable(cfg, model)
    # The test image first: a --verify without data fails before the export.
    inputs = None
    if args.verify or args.verify_only:
        try:
            inputs = sample_inputs(cfg, model)
        except FileNotFoundError as error:
            sys.exit(f'--verify: {error}')
    if not args.verify_only:
        shape = args.shape or default_shape(cfg)
        try:
            check_trace_shape(module, shape)
        except ValueError as error:
            sys.exit(str(error))
        in_graph, missing = drconv_coverage(module, model, shape)
        if missing and not args.allow_missing_drconv:
            sys.exit(
                f'refusing to export: {len(missing)} of the model\'s '
                f'{len(missing) + len(in_graph)} DRConv layers are in parts '
                'of the model that the graph does not run (it ends at '
                f'{module.output_names[-1]} and the like; post-processing '
                f'and RoI heads stay outside): {", ".join(missing)}. Pass '
                '--allow-missing-drconv to export the rest anyway.')
        export_onnx(module, args.out, shape)
        print(f'wrote {args.out} (traced at {shape[0]}x{shape[1]}; outputs: '
              f'{", ".join(module.output_names)}; DRConv layers in the '
              f'graph: {len(in_graph)}'
              + (f', left out: {", ".join(missing)}' if missing else '')
              + ')')
        try:
            sizes = verify_dynamic_sizes(module, args.out, shape, args.atol,
                                         args.rtol)
        except VerificationError as error:
            sys.exit(f'NOT a graph of any size: {error}. The file runs at '
                     f'the traced size only.')
        print('dynamic size check passed: ONNX Runtime matches PyTorch at ' +
              ', '.join(f'{b}x3x{h}x{w}' for b, h, w in sizes))
    if inputs is None:
        return
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
