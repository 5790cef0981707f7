"""DRConv: a drop-in nn.Conv2d replacement with m guide-selected filters."""
import math
from typing import Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules.utils import _pair

from ..ops import region_conv, region_scale
from ..ops.mixture_conv import mixed_output_conv, prefers_mixed_outputs

IntPair = Union[int, Tuple[int, int]]

GENERATORS = ('mixture', 'paper', 'modulated')


class MixtureFilters(nn.Module):
    """The official code's generator: per-region mixtures of shared bases.

    W[b, r] = sum_i coef[b, r, i] * base_i, coef = 2 * sigmoid(fc(GAP(x))) / n.
    Parameters: n x (the convolution's weight) + C x m x n.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: Tuple[int, int], groups: int, region_num: int,
                 num_bases: int):
        super().__init__()
        if num_bases < 1:
            raise ValueError(f'num_bases must be >= 1, got {num_bases}')
        self.region_num, self.num_bases = region_num, num_bases
        # Stored (n, O, kh, kw, C/g): the order region_conv multiplies in,
        # so per-sample filters need no transposed copy.
        self.bases = nn.Parameter(
            torch.empty(num_bases, out_channels, *kernel_size,
                        in_channels // groups))
        self.routing = nn.Linear(in_channels, region_num * num_bases)

    def init_weights(self) -> None:
        # The initial mixture is the mean of n bases; scale so that it has the
        # variance of a kaiming-initialised convolution.
        out_channels, kh, kw = self.bases.shape[1:4]
        fan_out = out_channels * kh * kw
        nn.init.normal_(self.bases,
                        std=math.sqrt(2.0 / fan_out * self.num_bases))
        nn.init.normal_(self.routing.weight, std=0.01)
        nn.init.zeros_(self.routing.bias)

    def coefficients(self, x: Tensor) -> Tensor:
        """(B, m, n) mixing coefficients of every region's filter."""
        coef = self.routing(x.mean(dim=(2, 3)))
        coef = 2 * torch.sigmoid(coef) / self.num_bases
        return coef.view(-1, self.region_num, self.num_bases)

    def forward(self, x: Tensor) -> Tensor:
        coef = self.coefficients(x)
        filters = coef @ self.bases.flatten(1).to(coef.dtype)
        filters = filters.view(x.shape[0], self.region_num,
                               *self.bases.shape[1:])
        return filters.permute(0, 1, 2, 5, 3, 4)  # (B, m, O, C/g, kh, kw)


class PaperFilters(nn.Module):
    """The paper's generator: pool to k x k, 1x1 conv + sigmoid, grouped 1x1.

    Parameters: m^2 * O * C/g in the grouped projection, m^2 / (kh * kw)
    times the convolution's weight (7x for 3x3, 64x for 1x1 at m = 8): heavy,
    kept for fidelity to the paper.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: Tuple[int, int], groups: int, region_num: int):
        super().__init__()
        self.region_num = region_num
        self.filter_shape = (out_channels, in_channels // groups)
        self.pool = nn.AdaptiveAvgPool2d(kernel_size)
        self.hidden = nn.Conv2d(in_channels, region_num * region_num, 1)
        self.project = nn.Conv2d(region_num * region_num,
                                 region_num * out_channels *
                                 (in_channels // groups),
                                 1,
                                 groups=region_num)

    def init_weights(self) -> None:
        nn.init.kaiming_normal_(self.hidden.weight, nonlinearity='sigmoid')
        nn.init.zeros_(self.hidden.bias)
        # sigmoid outputs are ~0.5 at start: scale so filters get kaiming
        # variance (fan_out of the generated conv).
        fan_out = self.filter_shape[0] * self.pool.output_size[0] * \
            self.pool.output_size[1]
        std = math.sqrt(2.0 / fan_out) / (0.5 * self.region_num)
        nn.init.normal_(self.project.weight, std=std)
        nn.init.zeros_(self.project.bias)

    def forward(self, x: Tensor) -> Tensor:
        hidden = torch.sigmoid(self.hidden(self.pool(x)))
        filters = self.project(hidden)
        return filters.view(x.shape[0], self.region_num, *self.filter_shape,
                            *filters.shape[-2:])


class ChannelModulation(nn.Module):
    """Per-region, per-sample output-channel scales 1 + fc(GAP(x)).

    Zero-initialised, so a modulated DRConv starts equal to its static conv.
    """

    def __init__(self, in_channels: int, out_channels: int, region_num: int,
                 hidden_channels: int):
        super().__init__()
        self.region_num, self.out_channels = region_num, out_channels
        self.fc1 = nn.Linear(in_channels, hidden_channels)
        self.fc2 = nn.Linear(hidden_channels, region_num * out_channels)

    def init_weights(self) -> None:
        nn.init.kaiming_normal_(self.fc1.weight, nonlinearity='relu')
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: Tensor) -> Tensor:
        delta = self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3)))))
        return 1 + delta.view(-1, self.region_num, self.out_channels)


class DRConv(nn.Module):
    """Dynamic Region-Aware Convolution (Chen et al., CVPR 2021).

    Built like ``nn.Conv2d`` plus DRConv options. A guide convolution (same
    kernel, stride, padding and dilation, m output channels) assigns every
    output pixel to one of ``region_num`` regions; the pixel is computed with
    that region's filter for its sample.

    Args:
        region_num: number of regions m.
        generator: how the m filters are made from the input:
            ``'modulated'`` (default): a static ``weight`` of nn.Conv2d's
            shape (pretrained convolutions load by the same key) times
            per-sample, per-region output-channel scales from a small MLP on
            the pooled input; starts equal to that convolution and runs at
            about the speed of one nn.Conv2d.
            ``'mixture'``: the official code's CondConv-style mixture of
            ``num_bases`` shared kernels per region: richer filters, but
            B x m full kernels are built per call (slower, see
            docs/benchmarks.md).
            ``'paper'``: the paper's pooled generator (m^2 / k^2 times a
            conv's parameters).
        num_bases: kernels mixed per region in ``'mixture'`` mode.
        hidden_ratio: hidden width of the ``'modulated'`` scale MLP as a
            fraction of ``in_channels``.
    """

    transposed = False
    # Backend of region_conv / region_scale ('auto', 'triton', 'torch'; see
    # mmdrconv.ops.triton); set on an instance to force one.
    backend = 'auto'

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntPair,
                 stride: IntPair = 1,
                 padding: IntPair = 0,
                 dilation: IntPair = 1,
                 groups: int = 1,
                 bias: bool = True,
                 region_num: int = 8,
                 generator: str = 'modulated',
                 num_bases: int = 4,
                 hidden_ratio: float = 0.25):
        super().__init__()
        if not isinstance(region_num, int) or region_num < 1:
            raise ValueError(
                f'region_num must be a positive int, got {region_num!r}')
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f'in_channels ({in_channels}) and out_channels '
                f'({out_channels}) must be divisible by groups ({groups})')
        if generator not in GENERATORS:
            raise ValueError(f'generator must be one of {GENERATORS}, got '
                             f'{generator!r}')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding = _pair(stride), _pair(padding)
        self.dilation = _pair(dilation)
        self.output_padding = (0, 0)
        self.groups, self.region_num = groups, region_num
        self.generator = generator

        self.guide = nn.Conv2d(in_channels, region_num, self.kernel_size,
                               self.stride, self.padding, self.dilation)
        if generator == 'modulated':
            self.weight = nn.Parameter(
                torch.empty(out_channels, in_channels // groups,
                            *self.kernel_size))
            hidden = max(8, int(in_channels * hidden_ratio))
            self.filter_generator = ChannelModulation(in_channels,
                                                      out_channels,
                                                      region_num, hidden)
        elif generator == 'mixture':
            self.filter_generator = MixtureFilters(in_channels, out_channels,
                                                   self.kernel_size, groups,
                                                   region_num, num_bases)
        else:
            self.filter_generator = PaperFilters(in_channels, out_channels,
                                                 self.kernel_size, groups,
                                                 region_num)
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.normal_(self.guide.weight, std=0.01)
        nn.init.zeros_(self.guide.bias)
        if self.generator == 'modulated':
            nn.init.kaiming_normal_(self.weight, mode='fan_out',
                                    nonlinearity='relu')
        self.filter_generator.init_weights()
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f'{type(self).__name__} expects a 4-D input '
                             f'(B, C, H, W), got shape {tuple(x.shape)}')
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects {self.in_channels} input '
                f'channels, got {x.shape[1]} (input shape {tuple(x.shape)})')

    def region_map(self, x: Tensor) -> Tensor:
        """The region index of every output pixel, (B, H_out, W_out)."""
        self._check_input(x)
        return self.guide(x).argmax(dim=1)

    def region_filters(self, x: Tensor) -> Tensor:
        """Every region's filter per sample, (B, m, O, C // groups, kh, kw)."""
        if self.generator == 'modulated':
            scales = self.filter_generator(x)
            return self.weight * scales[..., None, None, None]
        return self.filter_generator(x)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        if self.generator == 'modulated':
            return self._modulated_forward(x)
        if self.generator == 'mixture' and prefers_mixed_outputs(
                x, self.kernel_size, self._out_pixels(x), self.groups,
                self.backend):
            return mixed_output_conv(
                x, self.filter_generator.coefficients(x),
                self.filter_generator.bases, self.guide.weight,
                self.guide.bias, self.bias, self.stride, self.padding,
                self.dilation)
        guide = self.guide(x)
        filters = self.filter_generator(x)
        return region_conv(x, filters, guide, self.bias, self.stride,
                           self.padding, self.dilation, self.groups,
                           backend=self.backend)

    def _out_pixels(self, x: Tensor) -> int:
        """Output pixels per sample for input ``x``."""
        size = 1
        for length, k, s, p, d in zip(x.shape[2:], self.kernel_size,
                                      self.stride, self.padding,
                                      self.dilation):
            size *= (length + 2 * p - d * (k - 1) - 1) // s + 1
        return size

    def _modulated_forward(self, x: Tensor) -> Tensor:
        # filter_r = weight * scale_r (per output channel), so the output is
        # conv(x, weight) scaled by the pixel's region scale: exact DRConv at
        # the cost of one convolution. With groups == 1 the guide shares that
        # convolution (m extra output channels) to read x only once.
        # Computed channels-last (oneDNN's native layout; the per-pixel
        # scaling then works on contiguous rows), so the output is
        # channels-last, as nn.Conv2d's is for channels-last weights.
        x = x.contiguous(memory_format=torch.channels_last)
        if self.groups == 1:
            bias = torch.cat([self.guide.bias.new_zeros(self.out_channels),
                              self.guide.bias])
            both = F.conv2d(x, torch.cat([self.weight, self.guide.weight]),
                            bias, self.stride, self.padding, self.dilation)
            out, guide = both[:, :self.out_channels], \
                both[:, self.out_channels:]
        else:
            out = F.conv2d(x, self.weight, None, self.stride, self.padding,
                           self.dilation, self.groups)
            guide = self.guide(x)
        return region_scale(out, self.filter_generator(x), guide, self.bias,
                            backend=self.backend)

    def extra_repr(self) -> str:
        s = (f'{self.in_channels}, {self.out_channels}, '
             f'kernel_size={self.kernel_size}, stride={self.stride}, '
             f'padding={self.padding}, dilation={self.dilation}')
        if self.groups != 1:
            s += f', groups={self.groups}'
        if self.bias is None:
            s += ', bias=False'
        return s + (f', region_num={self.region_num}, '
                    f'generator={self.generator!r}')
