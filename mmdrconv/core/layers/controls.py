"""The suite's controls: layers of known harm built where a k x k conv is
asked for (ResNet's ``dcn`` slot, or any model through
:func:`convs_as_pointwise`). A control must come out behind its standard
twin; if it does not, the benchmark's budget or task is too weak to judge
the layer under test. Torch alone; ``mmdrconv.openmmlab`` registers them.
"""
from fnmatch import fnmatchcase
from typing import Iterable, Union

import torch
from torch.nn.modules.utils import _pair


class PointwiseConv(torch.nn.Conv2d):
    """A 1x1 convolution built where a k x k one is asked for: it sees no
    neighbours. Channels, groups and stride are kept, so the output has the
    requested shape (padding and dilation only served the k x k window)
    and the state-dict keys stay those of the conv it replaces; only the
    weight's shape changes. ``dcn=dict(type='PointwiseConv')``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size=1,
                 stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, 1, stride, 0, 1, groups,
                         bias)

    @classmethod
    def like(cls, conv: torch.nn.Conv2d) -> 'PointwiseConv':
        return cls(conv.in_channels, conv.out_channels, stride=conv.stride,
                   groups=conv.groups, bias=conv.bias is not None)


class FrozenConv(torch.nn.Conv2d):
    """A convolution whose weight stays at its initialisation. Every
    parameter has its twin's name and shape, so it starts from exactly the
    twin's weights and a paired difference measures the lost learning
    alone. The weight stays a parameter (state-dict key and init unchanged)
    that asks for no gradient, so optimizers skip it; dtype and device
    conversions keep it frozen (they replace ``.data`` only).
    ``dcn=dict(type='FrozenConv')``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight.requires_grad_(False)


class SkipConv(torch.nn.Module):
    """No convolution at all where a k x k one is asked for: the input
    passes on, subsampled to the conv's stride, so a ResNet bottleneck keeps
    only its 1x1 path and the shortcut. The strongest of the controls: no
    neighbours and no channel mixing in that slot. Needs as many output as
    input channels (ResNet's 3x3 convs have them) and holds no parameters.
    ``dcn=dict(type='SkipConv')``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size=3,
                 stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = False):
        super().__init__()
        if in_channels != out_channels:
            raise ValueError(
                f'SkipConv replaces a conv by its input, so it needs '
                f'in_channels == out_channels, got {in_channels} -> '
                f'{out_channels}')
        if bias:
            raise ValueError('SkipConv has no parameters: build it for a '
                             'conv with bias=False')
        self.channels = in_channels
        self.stride = _pair(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f'SkipConv expects (N, {self.channels}, H, W), '
                             f'got {tuple(x.shape)}')
        sh, sw = self.stride
        # A k x k conv with padding (k - 1) / 2 * dilation gives ceil(H / s)
        # rows, as this slice does.
        return x[:, :, ::sh, ::sw] if (sh, sw) != (1, 1) else x

    def extra_repr(self) -> str:
        return f'{self.channels}, stride={self.stride}'


def convs_as_pointwise(module: torch.nn.Module,
                       include: Union[str, Iterable[str]]) -> torch.nn.Module:
    """Replace every k x k (k > 1) ``nn.Conv2d`` of ``module`` whose name
    matches a glob pattern of ``include`` by a :class:`PointwiseConv`, in
    place. A pattern that replaces nothing raises ValueError."""
    include = (include, ) if isinstance(include, str) else tuple(include)
    if not include:
        raise ValueError('convs_as_pointwise: include is empty')
    named = dict(module.named_modules())
    for pattern in include:
        names = [n for n, m in named.items() if fnmatchcase(n, pattern)
                 and type(m) is torch.nn.Conv2d and m.kernel_size != (1, 1)]
        if not names:
            raise ValueError(
                f'convs_as_pointwise: pattern {pattern!r} matches no k x k '
                f'nn.Conv2d (k > 1); names look like '
                f'{[n for n in named if n][:3]}')
        for name in names:
            parent, _, attr = name.rpartition('.')
            setattr(module.get_submodule(parent), attr,
                    PointwiseConv.like(named[name]))
    return module
