"""DRConv on a GPU: layers and a whole backbone against cuDNN and naive.

The ``--device cuda`` mode of bench_drconv.py. Everything is measured in one
process, side by side: per layer shape and dtype (fp32 with TF32 as PyTorch
allows it for convolutions, and bf16), forward and forward+backward
("train": gradients of the input and every parameter) of

- ``conv``: nn.Conv2d of the same shape (cuDNN, benchmark mode);
- ``naive``: the all-regions reference (m convolutions, then a per-pixel
  select) fed with the guide and the ``mixture`` generator's filters;
- ``op``: ``region_conv`` alone on precomputed filters and guide (the
  Triton kernels on CUDA), and ``op-torch``, the same on the PyTorch path;
- every DRConv generator as a layer (guide conv + generator + op);

then one training step of a torchvision ResNet-50 with DRConv in c3-c5
(``layer2-4.*.conv2``, default generator) against the plain one. Times are
medians of CUDA-event intervals after warm-up (warm-up includes Triton's
autotuning); peak memory is ``torch.cuda.max_memory_allocated`` above what
was allocated before the step (mmdrconv.core.timing, the harness of
every benchmark here).

Imports only torch, torchvision (for the backbone) and mmdrconv's core:
the GPU machines have no mmcv. ``--dry-run`` runs the same code on tiny
shapes on any device (wall-clock timing, no memory numbers), to check it.
"""
import json
import statistics
import time
from importlib import metadata
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn

from mmdrconv.core.timing import median_latency, peak_memory, warm_up
from mmdrconv.core.converter import convert_to_drconv
from mmdrconv.core.layers import DRConv
from mmdrconv.core.ops import naive_region_conv, region_conv
from mmdrconv.core.ops.triton import use_triton

GENERATORS = ('modulated', 'mixture', 'paper')
# name: (batch, in, out, height, width, kernel, padding, dilation)
R50_800x1333 = {
    'r50-c3 3x3 128@100x167 b8': (8, 128, 128, 100, 167, 3, 1, 1),
    'r50-c4 3x3 256@50x84 b8': (8, 256, 256, 50, 84, 3, 1, 1),
    'r50-c5 3x3 512@25x42 b8': (8, 512, 512, 25, 42, 3, 1, 1),
}
DRY_RUN_SHAPES = {
    'tiny 3x3 8@6x7': (2, 8, 8, 6, 7, 3, 1, 1),
    'tiny 1x1 6->10@5x5': (2, 6, 10, 5, 5, 1, 0, 1),
}
BACKBONE_CONVS = ('layer2.*.conv2', 'layer3.*.conv2', 'layer4.*.conv2')
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16}


class OutOfTime(Exception):
    pass


class Bench:
    """Times and peak memory of callables on one device, within a budget."""

    def __init__(self, device: torch.device, budget_s: float,
                 target_ms: float = 200., min_reps: int = 5,
                 max_reps: int = 100, warmup: int = 3):
        self.device, self.cuda = device, device.type == 'cuda'
        self.deadline = time.monotonic() + budget_s
        self.target_ms, self.min_reps, self.max_reps = (target_ms, min_reps,
                                                        max_reps)
        self.warmup = warmup

    def check_time(self):
        if time.monotonic() > self.deadline:
            raise OutOfTime

    def median_ms(self, fn: Callable[[], object]) -> float:
        """Median ms of ``fn``, with as many calls as fit ``target_ms``
        (within ``min_reps``..``max_reps``), after warm-up."""
        self.check_time()
        warm_up(fn, self.warmup, self.device)
        estimate = median_latency(fn, 1, 0, device=self.device) * 1e3
        reps = int(min(self.max_reps,
                       max(self.min_reps, self.target_ms / max(estimate,
                                                               1e-3))))
        return median_latency(fn, reps, 0, device=self.device) * 1e3

    def peak_mib(self, fn: Callable[[], object]) -> Optional[float]:
        """Peak memory above the memory in use before ``fn`` (CUDA only)."""
        if not self.cuda:
            return None
        return peak_memory(fn, self.device) / 2**20


def _train_step(forward: Callable, inputs: List[torch.Tensor]) -> Callable:
    """forward + backward to every tensor in ``inputs``."""
    grad_out = []

    def step():
        out = forward()
        if not grad_out:
            grad_out.append(torch.randn_like(out))
        torch.autograd.grad(out, inputs, grad_out[0], allow_unused=True)
    return step


def _layer(generator, shape, region_num, dtype, device, backend):
    _, cin, cout, _, _, k, pad, dil = shape
    layer = DRConv(cin, cout, k, padding=pad, dilation=dil,
                   region_num=region_num, generator=generator)
    with torch.no_grad():  # spread pixels over the regions
        layer.guide.weight.normal_(std=0.1)
    layer.backend = backend
    return layer.to(device=device, dtype=dtype)


def measure_shape(bench: Bench, name: str, shape: tuple, dtype_name: str,
                  region_num: int, backend: str) -> List[Dict]:
    batch, cin, cout, h, w, k, pad, dil = shape
    dtype, device = DTYPES[dtype_name], bench.device
    torch.manual_seed(0)
    x = torch.randn(batch, cin, h, w, device=device, dtype=dtype,
                    requires_grad=True)
    conv = nn.Conv2d(cin, cout, k, padding=pad, dilation=dil).to(device,
                                                                 dtype)
    mixture = _layer('mixture', shape, region_num, dtype, device, backend)
    with torch.no_grad():
        filters = mixture.region_filters(x).detach().requires_grad_()
        guide = mixture.guide(x).detach().requires_grad_()
    conv_args = dict(padding=pad, dilation=dil)

    def naive():
        return naive_region_conv(x, mixture.region_filters(x),
                                 mixture.guide(x), mixture.bias, **conv_args)

    def op(op_backend):
        return lambda: region_conv(x, filters, guide, mixture.bias,
                                   **conv_args, backend=op_backend)

    methods = [('conv', lambda: conv(x), [x, *conv.parameters()]),
               ('naive', naive, [x, *mixture.parameters()]),
               ('op', op(backend), [x, filters, guide]),
               ('op-torch', op('torch'), [x, filters, guide])]
    for generator in GENERATORS:
        layer = mixture if generator == 'mixture' else _layer(
            generator, shape, region_num, dtype, device, backend)
        methods.append((generator, lambda layer=layer: layer(x),
                        [x, *layer.parameters()]))
    rows = []
    for method, forward, inputs in methods:
        row = dict(shape=name, dtype=dtype_name, method=method)
        rows.append(row)
        try:
            with torch.no_grad():
                row['fwd_ms'] = bench.median_ms(forward)
            step = _train_step(forward, inputs)
            row['train_ms'] = bench.median_ms(step)
            row['train_peak_mib'] = bench.peak_mib(step)
        except OutOfTime:
            row['skipped'] = 'time budget'
            break
        except torch.cuda.OutOfMemoryError:
            row['skipped'] = 'out of memory'
            torch.cuda.empty_cache()
    _add_ratios(rows)
    return rows


def _add_ratios(rows: List[Dict]) -> None:
    by_method = {r['method']: r for r in rows}
    conv, naive = by_method['conv'], by_method.get('naive', {})
    for row in rows:
        for key in ('fwd', 'train'):
            value = row.get(f'{key}_ms')
            if value and conv.get(f'{key}_ms'):
                row[f'{key}_vs_conv'] = value / conv[f'{key}_ms']
            if value and naive.get(f'{key}_ms'):
                row[f'{key}_speedup_vs_naive'] = naive[f'{key}_ms'] / value
        if row.get('train_peak_mib') and naive.get('train_peak_mib'):
            row['mem_vs_naive'] = row['train_peak_mib'] / \
                naive['train_peak_mib']


class TinyBackbone(nn.Module):
    """ResNet-like module names (layerN.M.conv2) for --dry-run without
    torchvision."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, 2, 1)
        for i in range(1, 5):
            block = nn.Module()
            block.conv1 = nn.Conv2d(width, width, 1)
            block.conv2 = nn.Conv2d(width, width, 3, padding=1)
            setattr(self, f'layer{i}', nn.Sequential(block))

    def forward(self, x):
        x = self.stem(x)
        for i in range(1, 5):
            block = getattr(self, f'layer{i}')[0]
            x = x + block.conv2(torch.relu(block.conv1(x)))
        return x.mean((2, 3))


def _backbone(drconv: bool, dry_run: bool, region_num: int,
              backend: str) -> nn.Module:
    torch.manual_seed(0)
    if dry_run:
        model = TinyBackbone()
    else:
        import torchvision
        model = torchvision.models.resnet50()
    if drconv:
        convert_to_drconv(model, include=BACKBONE_CONVS,
                          region_num=region_num)
        for module in model.modules():
            if isinstance(module, DRConv):
                module.backend = backend
    return model


def measure_backbone(bench: Bench, dtype_name: str, batch: int, size: tuple,
                     region_num: int, backend: str,
                     dry_run: bool) -> List[Dict]:
    """One SGD training step (bf16: autocast) of the plain and the DRConv
    backbone on the same batch; channels-last, as fast GPU training runs."""
    device = bench.device
    x = torch.randn(batch, 3, *size, device=device).contiguous(
        memory_format=torch.channels_last)
    rows = []
    for drconv in (False, True):
        model = _backbone(drconv, dry_run, region_num, backend).to(
            device, memory_format=torch.channels_last)
        optim = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                                  enabled=dtype_name == 'bf16')

        def step(model=model, optim=optim, autocast=autocast):
            optim.zero_grad(set_to_none=True)
            with autocast:
                loss = model(x).float().square().mean()
            loss.backward()
            optim.step()

        row = dict(shape=f'resnet50 {batch}x3x{size[0]}x{size[1]}'
                   if not dry_run else 'tiny backbone',
                   dtype=dtype_name,
                   method='drconv c3-c5' if drconv else 'plain',
                   drconv_layers=sum(isinstance(m, DRConv)
                                     for m in model.modules()))
        rows.append(row)
        try:
            row['train_ms'] = bench.median_ms(step)
            row['train_peak_mib'] = bench.peak_mib(step)
        except OutOfTime:
            row['skipped'] = 'time budget'
        except torch.cuda.OutOfMemoryError:
            row['skipped'] = 'out of memory'
        del model, optim
        if bench.cuda:
            torch.cuda.empty_cache()
    plain, dr = rows
    if plain.get('train_ms') and dr.get('train_ms'):
        dr['train_vs_plain'] = dr['train_ms'] / plain['train_ms']
        if plain.get('train_peak_mib'):
            dr['mem_vs_plain'] = dr['train_peak_mib'] / plain['train_peak_mib']
    return rows


def _fmt(value, spec='.2f'):
    return '-' if value is None else format(value, spec)


def print_tables(layers: List[Dict], backbone: List[Dict]) -> None:
    print('| shape | dtype | method | fwd ms | fwd / conv | train ms | '
          'train / conv | fwd speed-up vs naive | train speed-up vs naive '
          '| train peak MiB | mem / naive |')
    print('|' + '---|' * 11)
    for r in layers:
        if 'skipped' in r:
            print(f"| {r['shape']} | {r['dtype']} | {r['method']} | "
                  f"skipped: {r['skipped']} |")
            continue
        print(f"| {r['shape']} | {r['dtype']} | {r['method']} | "
              f"{_fmt(r.get('fwd_ms'), '.3f')} | "
              f"{_fmt(r.get('fwd_vs_conv'))} | "
              f"{_fmt(r.get('train_ms'), '.3f')} | "
              f"{_fmt(r.get('train_vs_conv'))} | "
              f"{_fmt(r.get('fwd_speedup_vs_naive'))} | "
              f"{_fmt(r.get('train_speedup_vs_naive'))} | "
              f"{_fmt(r.get('train_peak_mib'), '.0f')} | "
              f"{_fmt(r.get('mem_vs_naive'))} |")
    print()
    print('| backbone | dtype | method | DRConv layers | train step ms | '
          'step / plain | peak MiB | mem / plain |')
    print('|' + '---|' * 8)
    for r in backbone:
        print(f"| {r['shape']} | {r['dtype']} | {r['method']} | "
              f"{r['drconv_layers']} | {_fmt(r.get('train_ms'), '.1f')} | "
              f"{_fmt(r.get('train_vs_plain'))} | "
              f"{_fmt(r.get('train_peak_mib'), '.0f')} | "
              f"{_fmt(r.get('mem_vs_plain'))} |")
    print()
    for line in summarize(layers, backbone):
        print(line)


def _median(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarize(layers: List[Dict], backbone: List[Dict]) -> List[str]:
    """Medians over shapes per dtype and method, beside the issue's
    targets."""
    lines = []
    for dtype in DTYPES:
        for method in ('op', 'op-torch') + GENERATORS:
            rows = [r for r in layers
                    if r['dtype'] == dtype and r['method'] == method]
            if not rows:
                continue
            lines.append(
                f"{dtype} {method}: median over {len(rows)} shapes: "
                f"fwd / conv {_fmt(_median(rows, 'fwd_vs_conv'))}, "
                f"train / conv {_fmt(_median(rows, 'train_vs_conv'))}, "
                f"train speed-up vs naive "
                f"{_fmt(_median(rows, 'train_speedup_vs_naive'))}, "
                f"peak mem / naive {_fmt(_median(rows, 'mem_vs_naive'))}")
    for r in backbone:
        if r.get('train_vs_plain') is not None:
            lines.append(f"{r['dtype']} backbone step with DRConv c3-c5 / "
                         f"plain: {r['train_vs_plain']:.2f}")
    lines.append('targets (issue 10): modulated fwd / conv <= 1.15 and '
                 'train / conv <= 1.3; mixture, paper op fwd / conv <= 1.5, '
                 'train speed-up vs naive >= 2, peak mem / naive <= 0.33; '
                 'backbone step / plain <= 1.2')
    return lines


def _select(shapes: Dict[str, tuple], patterns) -> Dict[str, tuple]:
    return {name: shape for name, shape in shapes.items()
            if not patterns or any(p in name for p in patterns)}


def run(args, shapes: Dict[str, tuple]) -> Dict:
    """Measure and print everything; write JSON to ``args.json``."""
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    if args.dry_run:
        headline, others = DRY_RUN_SHAPES, {}
        bench = Bench(device, args.time_budget, target_ms=0, min_reps=1,
                      warmup=1)
        backbone_batch, backbone_size = 2, (32, 48)
    else:
        headline, others = R50_800x1333, shapes
        bench = Bench(device, args.time_budget, target_ms=100)
        backbone_batch, backbone_size = 8, (800, 1333)
    meta = dict(device=torch.cuda.get_device_name(device)
                if device.type == 'cuda' else device.type,
                torch=torch.__version__, region_num=args.region_num,
                backend=args.backend, dry_run=args.dry_run,
                tf32=torch.backends.cudnn.allow_tf32,
                time_budget_s=args.time_budget,
                ops_on_triton=use_triton(args.backend,
                                         torch.empty(0, device=device)))
    try:
        meta['triton'] = metadata.version('triton')
    except metadata.PackageNotFoundError:
        meta['triton'] = None
    print(json.dumps(meta), flush=True)
    start = time.monotonic()
    layers, backbone = [], []
    # In order of importance, so that running out of time cuts the least:
    # the ResNet-50 c3-c5 shapes, the backbone step, the other shapes.
    for group, with_backbone in ((headline, True), (others, False)):
        group = _select(group, args.shapes)
        for dtype in args.dtypes:
            for name, shape in group.items():
                print(f'timing {name} {dtype} ...', flush=True)
                layers += measure_shape(bench, name, shape, dtype,
                                        args.region_num, args.backend)
        if not with_backbone or args.no_backbone:
            continue
        for dtype in args.dtypes:
            print(f'timing backbone {dtype} ...', flush=True)
            backbone += measure_backbone(bench, dtype, backbone_batch,
                                         backbone_size, args.region_num,
                                         args.backend, args.dry_run)
    meta['seconds'] = time.monotonic() - start
    print_tables(layers, backbone)
    result = dict(meta=meta, layers=layers, backbone=backbone,
                  summary=summarize(layers, backbone))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return result
