"""Whole-model cost of DRConv on the CPU: every DRConv form and DCNv2 against
the standard twin, side by side in one process.

For each model (the suite's synthetic tasks and two real-size configs), the
variants are built from their configs and timed in interleaved rounds
(``mmdrconv.core.timing``): the network forward in inference
(``mode='tensor'``: backbone, neck and heads, no post-processing) and a
training step (``model.train_step`` with the config's optimizer), with 1 and
2 torch threads. Ratios are taken to the twin within each round (median,
lowest-highest round). Then the peak memory of a training step and of an
inference forward (resident-set growth, Linux), and the multiply-adds of the
forward, as ratios to the twin.

    python benchmarks/bench_models.py [--quick] [--models deeplabv3-r50-w16]
        [--threads 1 2] [--rounds 3] [--steps 3] [--json out.json]

``--quick``: two rounds of one step, 2 threads, the suite's models only.
"""
import argparse
import json
import logging
import os
import platform
import time

import torch

_SYN = 'configs/synthetic/'
_SEG = 'configs/segmentation/'
_DET = 'configs/detection/'
_DCNV2 = dict(type='DCNv2', deform_groups=1, fallback_on_stride=False)
_DCNV2_OPTIONS = {'model.backbone.dcn': _DCNV2,
                  'model.backbone.stage_with_dcn': (False, True, True, True)}

# name: (image size, batch size or None for the config's, variants);
# a variant is (config, --cfg-options or None); the first is the twin.
MODELS = {
    'deeplabv3-r50-w16': ((64, 128), None, dict(
        standard=(_SYN + 'deeplabv3_r50-w16-d8_synthetic-cityscapes.py',
                  None),
        drconv=(_SYN + 'deeplabv3_r50-w16-d8-drconv-c3-c5_synthetic-'
                'cityscapes.py', None),
        drconv_mixture=(_SYN + 'deeplabv3_r50-w16-d8-drconv-mixture-c3-c5_'
                        'synthetic-cityscapes.py', None),
        drconv_paper=(_SYN + 'deeplabv3_r50-w16-d8-drconv-paper-c3-c5_'
                      'synthetic-cityscapes.py', None),
        dcnv2=(_SYN + 'deeplabv3_r50-w16-d8-mdconv-c3-c5_synthetic-'
               'cityscapes.py', None))),
    'deeplabv3-mobilenetv2': ((64, 128), None, dict(
        standard=(_SYN + 'mobilenet-v2-d8_deeplabv3_synthetic-cityscapes.py',
                  None),
        drconv=(_SYN + 'mobilenet-v2-d8-drconv_deeplabv3_synthetic-'
                'cityscapes.py', None),
        drconv_mixture=(_SYN + 'mobilenet-v2-d8-drconv-mixture_deeplabv3_'
                        'synthetic-cityscapes.py', None))),
    'retinanet-r50-w16': ((128, 128), None, dict(
        standard=(_SYN + 'retinanet_r50-w16_fpn_synthetic-coco.py', None),
        drconv=(_SYN + 'retinanet_r50-w16-drconv-c3-c5_fpn_synthetic-coco.py',
                None),
        drconv_mixture=(_SYN + 'retinanet_r50-w16-drconv-mixture-c3-c5_fpn_'
                        'synthetic-coco.py', None),
        drconv_paper=(_SYN + 'retinanet_r50-w16-drconv-paper-c3-c5_fpn_'
                      'synthetic-coco.py', None),
        dcnv2=(_SYN + 'retinanet_r50-w16-mdconv-c3-c5_fpn_synthetic-coco.py',
               None))),
    # Batch 2: the ASPP head's image pooling normalises a 1x1 map, which
    # BatchNorm cannot train on with one image.
    'deeplabv3-r50 256x512': ((256, 512), 2, dict(
        standard=(_SEG + 'deeplabv3_r50-d8_4xb2-80k_cityscapes-512x1024.py',
                  None),
        drconv=(_SEG + 'deeplabv3_r50-d8-drconv-c3-c5_4xb2-80k_cityscapes-'
                '512x1024.py', None),
        drconv_mixture=(_SEG + 'deeplabv3_r50-d8-drconv-mixture-c3-c5_4xb2-'
                        '80k_cityscapes-512x1024.py', None),
        drconv_paper=(_SEG + 'deeplabv3_r50-d8-drconv-paper-c3-c5_4xb2-80k_'
                      'cityscapes-512x1024.py', None),
        dcnv2=(_SEG + 'deeplabv3_r50-d8-mdconv-c3-c5_4xb2-80k_cityscapes-'
               '512x1024.py', None))),
    'retinanet-r50 320x320': ((320, 320), 2, dict(
        standard=(_DET + 'retinanet_r50_fpn_1x_coco.py', None),
        drconv=(_DET + 'retinanet_r50-drconv-c3-c5_fpn_1x_coco.py', None),
        drconv_mixture=(_DET + 'retinanet_r50-drconv-c3-c5_fpn_1x_coco.py',
                        {'model.backbone.dcn.generator': 'mixture'}),
        drconv_paper=(_DET + 'retinanet_r50-drconv-c3-c5_fpn_1x_coco.py',
                      {'model.backbone.dcn.generator': 'paper'}),
        dcnv2=(_DET + 'retinanet_r50_fpn_1x_coco.py', _DCNV2_OPTIONS))),
}
SUITE_MODELS = ('deeplabv3-r50-w16', 'deeplabv3-mobilenetv2',
                'retinanet-r50-w16')


class Variant:
    """One built model with its inference and training-step calls."""

    def __init__(self, config, cfg_options, size, batch_size,
                 channels_last=False, foreach=False):
        from mmengine.optim import build_optim_wrapper

        from mmdrconv.analysis.inputs import random_batch
        from mmdrconv.apis import model_for_measuring
        from mmdrconv.core.complexity import count_complexity
        if foreach:
            cfg_options = dict(cfg_options or {},
                               **{'optim_wrapper.optimizer.foreach': True})
        cfg, self.model = model_for_measuring(config, cfg_options)
        batch = random_batch(
            cfg, size=tuple(size),
            batch_size=batch_size or cfg.train_dataloader.batch_size)
        self.batch_size = len(batch['inputs'])
        self.optim = build_optim_wrapper(self.model, cfg.optim_wrapper)
        self.batch = batch
        with torch.no_grad():
            self.data = self.model.data_preprocessor(batch, False)
        if channels_last:
            # Channels-last weights make every conv's output channels-last,
            # from the first one on.
            self.model.to(memory_format=torch.channels_last)
            self.data['inputs'] = self.data['inputs'].contiguous(
                memory_format=torch.channels_last)
        self.macs = count_complexity(self.model, self._network)['macs']
        self.params = sum(p.numel() for p in self.model.parameters())

    def _network(self):
        return self.model(self.data['inputs'], self.data['data_samples'],
                          mode='tensor')

    def forward(self):
        self.model.eval()
        with torch.no_grad():
            self._network()

    def train_step(self):
        self.model.train()
        self.model.train_step(self.batch, self.optim)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as info:
            cpu = next(line.split(':', 1)[1].strip() for line in info
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return (f'{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, '
            f'{platform.node()}')


def _load() -> str:
    return '/'.join(f'{v:.2f}' for v in os.getloadavg())


def measure_model(name, threads, rounds, steps, warmup, log,
                  only=None, **options):
    """Rows of one model's variants (``only``: those named, and the twin);
    ``options`` go to :class:`Variant`."""
    from mmdrconv.core.timing import (interleaved_rounds, num_threads,
                                      peak_memory)
    size, batch_size, configs = MODELS[name]
    variants = {}
    for index, (variant, (config, cfg_options)) in enumerate(
            configs.items()):
        if index and only and variant not in only:
            continue
        variants[variant] = Variant(config, cfg_options, size, batch_size,
                                    **options)
        log(f'built {name} | {variant}')
    twin = next(iter(variants))
    rows = {v: dict(model=name, variant=v, image_size=list(size),
                    batch_size=built.batch_size, params=built.params,
                    macs_vs_twin=built.macs / variants[twin].macs,
                    threads={})
            for v, built in variants.items()}
    for count in threads:
        with num_threads(count):
            load_before = _load()
            for kind in ('forward', 'train_step'):
                calls = {v: getattr(built, kind)
                         for v, built in variants.items()}
                timed = interleaved_rounds(
                    calls, rounds, steps, warmup,
                    log=lambda i, key, s: log(
                        f'{name} | {count} threads | {kind} | round {i + 1}'
                        f' | {key}: {s["wall"]:.3f} s'))
                for v in variants:
                    rows[v]['threads'].setdefault(count, {})[kind] = dict(
                        seconds=timed.seconds(v).median,
                        vs_twin=list(timed.ratio(v, twin)))
            for v in variants:
                rows[v]['threads'][count]['load'] = \
                    f'{load_before} -> {_load()}'
    # Memory last: peak_memory's allocator settings slow allocation.
    for kind in ('train_step', 'forward'):
        for v, built in variants.items():
            for _ in range(2):  # the second: steady state (no lazy init)
                peak = peak_memory(getattr(built, kind))
            rows[v][f'{kind}_peak_mib'] = peak / 2**20
    for v in variants:
        for kind in ('train_step', 'forward'):
            rows[v][f'{kind}_peak_vs_twin'] = (
                rows[v][f'{kind}_peak_mib'] / rows[twin][f'{kind}_peak_mib'])
    del variants
    return list(rows.values())


def _spread(values) -> str:
    median, low, high = values
    return f'{median:.2f} ({low:.2f}-{high:.2f})'


def print_table(rows, threads):
    print('| model | variant | threads | fwd s | fwd / twin | train s | '
          'train / twin | train peak MiB | / twin | MACs / twin | load |')
    print('|' + '---|' * 11)
    for row in rows:
        for count in threads:
            cell = row['threads'][count]
            fwd, train = cell['forward'], cell['train_step']
            print(f"| {row['model']} | {row['variant']} | {count} | "
                  f"{fwd['seconds']:.3f} | {_spread(fwd['vs_twin'])} | "
                  f"{train['seconds']:.3f} | {_spread(train['vs_twin'])} | "
                  f"{row['train_step_peak_mib']:.0f} | "
                  f"{row['train_step_peak_vs_twin']:.2f} | "
                  f"{row['macs_vs_twin']:.3f} | {cell['load']} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', choices=sorted(MODELS),
                        default=None, help='default: all (--quick: the '
                        "suite's)")
    parser.add_argument('--threads', nargs='+', type=int, default=None,
                        help='torch thread counts (default 1 2; --quick 2)')
    parser.add_argument('--rounds', type=int, default=None,
                        help='interleaved rounds (default 3; --quick 2)')
    parser.add_argument('--steps', type=int, default=None,
                        help='timed calls per variant and round, median '
                        "taken (default 3 for the suite's models, 1 for "
                        'the real-size ones; --quick 1)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--quick', action='store_true',
                        help='a short run: the suite models, 2 threads, '
                        '2 rounds of 1 step')
    parser.add_argument('--variants', nargs='+', default=None,
                        help='only these variants (and the twin)')
    parser.add_argument('--channels-last', action='store_true',
                        help='every model and input in channels-last '
                        'memory format')
    parser.add_argument('--foreach', action='store_true',
                        help="every optimizer with foreach=True (one "
                        'kernel per step for all parameters)')
    parser.add_argument('--json', default=None, help='write results here')
    args = parser.parse_args(argv)
    quick = args.quick
    models = args.models or (list(SUITE_MODELS) if quick else list(MODELS))
    threads = args.threads or ([2] if quick else [1, 2])
    rounds = args.rounds or (2 if quick else 3)

    def steps_of(name):
        if args.steps:
            return args.steps
        return 1 if quick or name not in SUITE_MODELS else 3
    warmup = 1 if quick else args.warmup

    from mmengine.logging import MMLogger

    from mmdrconv.core.timing import keep_freed_memory
    keep_freed_memory()
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    started = time.strftime('%Y-%m-%d %H:%M')
    header = (f'{_machine()}; {started}; {rounds} rounds x median of '
              f'{"/".join(str(steps_of(n)) for n in models)} calls'
              + ('; channels-last' if args.channels_last else '')
              + ('; foreach optimizers' if args.foreach else '')
              + f'; load average at start {_load()}')
    print(header, flush=True)
    rows = []
    for name in models:
        rows += measure_model(name, threads, rounds, steps_of(name), warmup,
                              log=lambda line: print(line, flush=True),
                              only=args.variants,
                              channels_last=args.channels_last,
                              foreach=args.foreach)
    print(header + f'; at end {_load()}')
    print_table(rows, threads)
    if args.json:
        with open(args.json, 'w') as out:
            json.dump(dict(machine=_machine(), started=started,
                           rounds=rounds,
                           steps={n: steps_of(n) for n in models},
                           channels_last=args.channels_last,
                           foreach=args.foreach, rows=rows), out, indent=1)


if __name__ == '__main__':
    main()
