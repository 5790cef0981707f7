"""Evaluate a checkpoint (COCO mAP via CocoMetric, mIoU via IoUMetric).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--data-root DIR]
        [--out FILE|DIR [--overwrite]] [--show] [--show-dir DIR]
        [--cfg-options k=v ...]
        [--launcher ...]

(also ``python -m mmdrconv.cli.test``)
"""
import argparse

from mmdrconv.apis import load_config
from mmdrconv.cli import add_common_args, parse, user_errors
from mmdrconv.openmmlab import close_distributed, verify_checkpoint
from mmdrconv.outputs import check_output_dir
from mmdrconv.runner import (add_prediction_dump, build_runner,
                             check_test_outputs, prepare_test_cfg)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where to save the metrics')
    parser.add_argument(
        '--out', help='detection: dump predictions to this .pkl; '
        'segmentation: save predicted label maps to this folder')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='replace what --out holds already (refused otherwise)')
    parser.add_argument('--show', action='store_true')
    parser.add_argument('--show-dir', help='save painted predictions here')
    parser.add_argument('--wait-time', type=float, default=2)
    add_common_args(parser)
    return parse(parser, argv)


def run_test(cfg, out=None):
    runner = build_runner(cfg)
    verify_checkpoint(runner.model, cfg.load_from)
    if out:
        add_prediction_dump(runner, cfg, out)
    runner.test()


def main(argv=None):
    args = parse_args(argv)
    with user_errors():
        cfg = load_config(args.config, args.cfg_options)
        # Outputs first: a bad --out must not cost the whole evaluation.
        check_test_outputs(cfg, args.out, args.show_dir, args.overwrite)
        cfg = prepare_test_cfg(cfg, args.config, args.checkpoint,
                               args.work_dir, args.show, args.show_dir,
                               args.wait_time, args.launcher, args.data_root)
        check_output_dir(cfg.work_dir, '--work-dir')
        try:
            run_test(cfg, args.out)
        finally:
            close_distributed()


if __name__ == '__main__':
    main()
