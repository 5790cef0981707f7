"""Parameters and multiply-adds of a model; torch alone.

Multiply-adds are counted with forward hooks on the layers that carry
almost all of a CNN's arithmetic: nn.Conv2d, nn.Linear, DRConv and mmcv's
deformable convolutions. A DRConv reports its own cost
(``DRConv.multiply_adds``: one standard convolution per output pixel, its
guide and its generator), so its inner layers are not counted again.
mmcv's deformable convolutions (DCN, DCNv2) are not nn.Conv2d subclasses:
they are counted as one convolution plus the bilinear sampling of every
input value they read (their offset conv is an nn.Conv2d with its own
hook). Normalisation, activations, pooling, RoIAlign and NMS are not
counted (as in most detection papers' FLOPs).
"""
from typing import Callable, Dict

import torch
import torch.nn as nn

from .layers import DRConv


def _conv_macs(module, output: torch.Tensor) -> int:
    kh, kw = module.kernel_size
    return output.numel() * (module.in_channels // module.groups) * kh * kw


def _deformable_convs() -> dict:
    """mmcv's deformable convolution classes -> multiply-adds per sampled
    input value ({} without mmcv's ops): a bilinear sample is 4, and DCNv2
    also scales it by its modulation mask."""
    try:
        from mmcv.ops import DeformConv2d, ModulatedDeformConv2d
    except ImportError:
        return {}
    return {ModulatedDeformConv2d: 5, DeformConv2d: 4}


def _deformable_conv_macs(module, output, per_value: int) -> int:
    # Every (output pixel, input channel, tap) samples one value, then the
    # convolution proper runs over the sampled values.
    batch, _, height, width = output.shape
    taps = module.kernel_size[0] * module.kernel_size[1]
    sampling = batch * height * width * module.in_channels * taps * per_value
    return _conv_macs(module, output) + sampling


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
    deformable = _deformable_convs()
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
            elif isinstance(module, tuple(deformable)):
                per_value = next(v for cls, v in deformable.items()
                                 if isinstance(module, cls))
                counts['macs'] += _deformable_conv_macs(module, output,
                                                        per_value)
            elif isinstance(module, nn.Conv2d):
                counts['macs'] += _conv_macs(module, output)
            elif isinstance(module, nn.Linear):
                counts['macs'] += output.numel() * module.in_features
        return hook

    run_with_hooks(model, (nn.Conv2d, nn.Linear, DRConv) + tuple(deformable),
                   make_hook, run)
    counts['params'] = sum(p.numel() for p in model.parameters())
    return counts
