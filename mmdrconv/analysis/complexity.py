"""Parameters and multiply-adds of a model; torch alone.

Multiply-adds are counted with forward hooks on the layers that carry
almost all of a CNN's arithmetic: nn.Conv2d (mmcv's deformable convs
included, as its subclasses), nn.Linear and DRConv. A DRConv reports its own
cost (``DRConv.multiply_adds``: one standard convolution per output pixel,
its guide and its generator), so its inner layers are not counted again.
Normalisation, activations, pooling, RoIAlign and NMS are not counted (as in
most detection papers' FLOPs).
"""
from typing import Callable, Dict

import torch
import torch.nn as nn

from ..layers import DRConv


def _conv_macs(module, output: torch.Tensor) -> int:
    kh, kw = module.kernel_size
    return output.numel() * (module.in_channels // module.groups) * kh * kw


def run_with_hooks(model: nn.Module, types: tuple,
                   make_hook: Callable[[str], Callable],
                   run: Callable[[], object]) -> None:
    """Call ``run()`` without grad, with a forward hook (``make_hook(name)``)
    on every submodule of ``types``; the hooks are removed afterwards."""
    handles = [
        module.register_forward_hook(make_hook(name))
        for name, module in model.named_modules()
        if isinstance(module, types)
    ]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()


def count_complexity(model: nn.Module, run: Callable[[], object]) -> Dict:
    """Params and multiply-adds of ``model`` during one call of ``run``."""
    counts = dict(macs=0)
    drconvs = [name for name, module in model.named_modules()
               if isinstance(module, DRConv)]

    def inside_drconv(name: str) -> bool:
        return any(name.startswith(outer + '.') if outer else name != ''
                   for outer in drconvs)

    def make_hook(name):
        def hook(module, inputs, output):
            if isinstance(output, (tuple, list)):
                output = output[0]
            if isinstance(module, DRConv):
                counts['macs'] += module.multiply_adds(inputs[0], output)
            elif inside_drconv(name):
                return  # counted by its DRConv
            elif isinstance(module, nn.Conv2d):
                counts['macs'] += _conv_macs(module, output)
            elif isinstance(module, nn.Linear):
                counts['macs'] += output.numel() * module.in_features
        return hook

    run_with_hooks(model, (nn.Conv2d, nn.Linear, DRConv), make_hook, run)
    counts['params'] = sum(p.numel() for p in model.parameters())
    return counts
