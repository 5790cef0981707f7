"""DRConv: a drop-in nn.Conv2d replacement with m guide-selected filters.

``DRConv(...)`` builds one of two layers from ``generator=`` (as timm's
``create_conv2d`` picks a class from its arguments), each with one forward:

- :class:`ModulatedDRConv` (``'modulated'``, default): a static conv weight
  times per-sample, per-region output-channel scales; computed as one
  convolution and ``region_scale``.
- :class:`GeneratedFilterDRConv` (``'mixture'``, ``'paper'``): a full filter
  per region and sample from a generator; computed by ``region_conv``.

Both share :class:`DRConv`: the geometry, the guide convolution, input
checks, ``region_map`` and the complexity report.
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..ops import (packed_region_scale, region_conv, region_index,
                   region_scale)
from ..ops.checks import as_pair
from ..ops.export_forms import autocast_enabled, is_exporting
from ..ops.geometry import conv_output_size
from ..ops.mixture_conv import (check_mixture_algorithm, mixed_output_conv,
                                 mixes_outputs)
from .generators import (MixtureFilters, PaperFilters, RegionChannelScales,
                         scale_hidden_width)

IntPair = Union[int, Tuple[int, int]]

GENERATORS = ('modulated', 'mixture', 'paper')
PADDING_MODES = ('zeros', 'reflect', 'replicate', 'circular')


class DRConv(nn.Module):
    """Dynamic Region-Aware Convolution (Chen et al., CVPR 2021).

    Built like ``nn.Conv2d`` plus DRConv options. A guide convolution (same
    kernel, stride, padding and dilation, m output channels) assigns every
    output pixel to one of ``region_num`` regions; the pixel is computed with
    that region's filter for its sample. ``DRConv(...)`` returns the layer
    class for ``generator``; both are instances of ``DRConv``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
            groups, bias, padding_mode, device, dtype: as ``nn.Conv2d``
            (``padding`` also 'same' / 'valid'; the guide convolution pads
            as the layer does). ``padding_mode``, ``device`` and ``dtype``
            go by keyword: the 9th positional argument is ``region_num``.
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
            fraction of ``in_channels``, for kernels of 9 taps or more;
            smaller kernels scale it down by their taps (1/9 for 1x1),
            at least 8 (``generators.scale_hidden_width``).
    """

    transposed = False
    generator: str
    # Which kernels region_conv / region_scale run ('auto', 'triton',
    # 'torch'; see mmdrconv.core.ops.triton); set on an instance to force one.
    # (How a mixture layer computes is its own option, mixture_algorithm.)
    backend = 'auto'

    def __new__(cls, *args, generator: str = 'modulated', **kwargs):
        if cls is DRConv:
            if len(args) > 9:  # given by position, as nn.Conv2d-style code may
                generator = args[9]
            if generator not in GENERATORS:
                raise ValueError(f'generator must be one of {GENERATORS}, '
                                 f'got {generator!r}')
            cls = ModulatedDRConv if generator == 'modulated' else \
                GeneratedFilterDRConv
        return super().__new__(cls)

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntPair,
                 stride: IntPair = 1,
                 padding: Union[IntPair, str] = 0,
                 dilation: IntPair = 1,
                 groups: int = 1,
                 bias: bool = True,
                 region_num: int = 8,
                 generator: str = 'modulated',
                 padding_mode: str = 'zeros',
                 device=None,
                 dtype=None):
        super().__init__()
        if isinstance(region_num, str):
            raise ValueError(
                f'region_num must be a positive int, got {region_num!r} '
                "(DRConv's 9th positional argument is region_num, not "
                "nn.Conv2d's padding_mode: pass padding_mode=...)")
        if not isinstance(region_num, int) or isinstance(region_num, bool) \
                or region_num < 1:
            raise ValueError(
                f'region_num must be a positive int, got {region_num!r}')
        if padding_mode not in PADDING_MODES:
            raise ValueError(f'padding_mode must be one of {PADDING_MODES}, '
                             f'got {padding_mode!r}')
        if not isinstance(groups, int) or groups < 1 or \
                in_channels % groups or out_channels % groups:
            raise ValueError(
                f'in_channels ({in_channels}) and out_channels '
                f'({out_channels}) must be divisible by groups ({groups})')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = as_pair(kernel_size, 'kernel_size', minimum=1)
        self.stride = as_pair(stride, 'stride', minimum=1)
        self.dilation = as_pair(dilation, 'dilation', minimum=1)
        self.padding = padding if isinstance(padding, str) else \
            as_pair(padding, 'padding', minimum=0)
        self.output_padding = (0, 0)
        self.padding_mode = padding_mode
        self._conv_padding, self._extra_padding = self._resolve_padding()
        self.groups, self.region_num = groups, region_num
        self.generator, self.has_bias = generator, bias
        self._factory = dict(device=device, dtype=dtype)
        self.guide = nn.Conv2d(in_channels, region_num, self.kernel_size,
                               self.stride, self._conv_padding,
                               self.dilation, **self._factory)

    def _resolve_padding(self) -> Tuple[Tuple[int, int], Optional[tuple]]:
        """Padding of the convolutions, and what F.pad adds before them,
        as nn.Conv2d pads: with zeros, symmetric conv padding plus the extra
        right/bottom zeros of 'same' with even kernels; with another
        ``padding_mode``, all of it by F.pad in that mode."""
        if not isinstance(self.padding, str):
            low = high = self.padding
        elif self.padding == 'valid':
            low = high = (0, 0)
        elif self.padding != 'same':
            raise ValueError(f"padding must be an int, a pair, 'same' or "
                             f"'valid', got {self.padding!r}")
        elif self.stride != (1, 1):
            raise ValueError("padding='same' is not supported for strided "
                             'convolutions (as in nn.Conv2d)')
        else:
            total = [d * (k - 1)
                     for d, k in zip(self.dilation, self.kernel_size)]
            low = tuple(t // 2 for t in total)
            high = tuple(t - lo for t, lo in zip(total, low))
        if self.padding_mode != 'zeros':
            pad = (low[1], high[1], low[0], high[0])
            return (0, 0), (pad if any(pad) else None)
        extra = (0, high[1] - low[1], 0, high[0] - low[0])
        return low, (extra if any(extra) else None)

    def _add_bias_and_init(self) -> None:
        # Last, as in earlier versions: optimizer states in checkpoints are
        # matched by parameter order (tests/test_drconv_layer.py pins it).
        self.bias = nn.Parameter(torch.empty(self.out_channels,
                                             **self._factory)) \
            if self.has_bias else None
        del self._factory  # construction only
        self.init_weights()

    @property
    def generator_module(self) -> nn.Module:
        """The module that makes the region filters (or channel scales)."""
        raise NotImplementedError

    def init_weights(self) -> None:
        nn.init.normal_(self.guide.weight, std=0.01)
        nn.init.zeros_(self.guide.bias)
        self.generator_module.init_weights()
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f'{type(self).__name__} expects a tensor, got '
                            f'{type(x).__name__}')
        if x.dim() != 4:
            raise ValueError(f'{type(self).__name__} expects a 4-D input '
                             f'(B, C, H, W), got shape {tuple(x.shape)}')
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects {self.in_channels} input '
                f'channels, got {x.shape[1]} (input shape {tuple(x.shape)})')
        if not x.is_floating_point():
            raise TypeError(f'{type(self).__name__} expects a floating-point '
                            f'input, got {x.dtype}')
        weight = self.guide.weight
        if x.dtype != weight.dtype and not autocast_enabled(x.device.type):
            # (nn.Conv2d refuses it too; the generators' error would not
            # say which tensors differ)
            raise TypeError(
                f'{type(self).__name__}: input dtype {x.dtype} differs from '
                f'the parameters\' {weight.dtype}; convert one of them (e.g. '
                f'layer.to({x.dtype})) or run under torch.autocast')

    def _pad_extra(self, x: Tensor) -> Tensor:
        """What F.pad adds before the convolutions (see _resolve_padding)."""
        if self._extra_padding is None:
            return x
        mode = 'constant' if self.padding_mode == 'zeros' else \
            self.padding_mode
        return F.pad(x, self._extra_padding, mode=mode)

    def guide_logits(self, x: Tensor) -> Tensor:
        """The guide's logits for (padded) input ``x``, (B, m, H_out,
        W_out): its convolution, then its bias added, as every forward path
        computes them (the packed ones convolve together with the filters
        and add the bias to the m guide channels alone), so that region
        choices agree between paths also in low precision."""
        guide = F.conv2d(x, self.guide.weight, None, self.stride,
                         self._conv_padding, self.dilation)
        return guide + self.guide.bias.view(1, -1, 1, 1)

    def region_map(self, x: Tensor) -> Tensor:
        """The region index of every output pixel, (B, H_out, W_out)."""
        self._check_input(x)
        return region_index(self.guide_logits(self._pad_extra(x)))

    def region_filters(self, x: Tensor) -> Tensor:
        """Every region's filter per sample, (B, m, O, C // groups, kh, kw)."""
        raise NotImplementedError

    def multiply_adds(self, x: Tensor, y: Tensor) -> int:
        """Multiply-adds of one call with input ``x`` and output ``y``: the
        selected filter at every output pixel (one standard convolution),
        the guide, and the filter or scale generator."""
        kh, kw = self.kernel_size
        per_pixel = kh * kw * self.in_channels
        conv = y.numel() * per_pixel // self.groups
        guide = y.numel() // self.out_channels * self.region_num * per_pixel
        return conv + guide + self.generator_module.multiply_adds(x)

    def extra_repr(self) -> str:
        s = (f'{self.in_channels}, {self.out_channels}, '
             f'kernel_size={self.kernel_size}, stride={self.stride}, '
             f'padding={self.padding}, dilation={self.dilation}')
        if self.groups != 1:
            s += f', groups={self.groups}'
        if self.bias is None:
            s += ', bias=False'
        if self.padding_mode != 'zeros':
            s += f', padding_mode={self.padding_mode!r}'
        return s + (f', region_num={self.region_num}, '
                    f'generator={self.generator!r}')


def pointwise_rows(x: Tensor, weight: Tensor) -> Tensor:
    """``conv2d(x, weight)`` of an NCHW ``x`` and a 1x1 ``weight`` (O, C,
    1, 1), computed as a GEMM of the transposed (B, H*W, C) planes: a
    channels-last (B, O, H, W) result without copying ``x`` first."""
    batch, channels, height, width = x.shape
    rows = torch.matmul(x.view(batch, channels, height * width).transpose(
        1, 2), weight.view(weight.shape[0], channels).t())
    return rows.view(batch, height, width, -1).permute(0, 3, 1, 2)


class ModulatedDRConv(DRConv):
    """DRConv whose region filters are ``weight * scales[b, r]`` (per output
    channel). The output is then ``conv(x, weight)`` scaled by the pixel's
    region scales: exact DRConv at the cost of one convolution.

    ``channel_scale_generator`` (a :class:`RegionChannelScales`) makes the
    scales; checkpoints of earlier versions, which called it
    ``filter_generator``, load under the new name.
    """

    # 2: ``filter_generator`` renamed ``channel_scale_generator``.
    # 3: the scale MLP's hidden width scaled down for kernels under 3x3.
    _version = 3
    _OLD_GENERATOR_KEY = 'filter_generator.'
    # What version 1 saved under it (the channel scales' two layers); a
    # mixture or paper layer's ``filter_generator.*`` keys are not renamed.
    _OLD_GENERATOR_PARAMS = ('fc1.weight', 'fc1.bias', 'fc2.weight',
                             'fc2.bias')

    def __init__(self, *args, hidden_ratio: float = 0.25, **kwargs):
        """Arguments of :class:`DRConv`, plus ``hidden_ratio``."""
        super().__init__(*args, **kwargs)
        if isinstance(hidden_ratio, bool) or \
                not isinstance(hidden_ratio, (int, float)) or \
                not hidden_ratio > 0:
            raise ValueError(f'hidden_ratio must be a number > 0, got '
                             f'{hidden_ratio!r}')
        in_channels, out_channels = self.in_channels, self.out_channels
        groups, region_num = self.groups, self.region_num
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups,
                        *self.kernel_size, **self._factory))
        hidden = scale_hidden_width(in_channels, self.kernel_size,
                                    hidden_ratio)
        self.channel_scale_generator = RegionChannelScales(
            in_channels, out_channels, region_num, hidden, **self._factory)
        self._add_bias_and_init()

    @property
    def generator_module(self) -> nn.Module:
        return self.channel_scale_generator

    @classmethod
    def upgrade_state_dict(cls, state_dict: dict, prefix: str = '') -> None:
        """Rename, in place, the keys that earlier versions saved for the
        layer at ``prefix`` (also used by checkpoint checks that compare
        keys before loading)."""
        old = prefix + cls._OLD_GENERATOR_KEY
        new = prefix + 'channel_scale_generator.'
        for name in cls._OLD_GENERATOR_PARAMS:
            if old + name in state_dict:
                state_dict.setdefault(new + name, state_dict.pop(old + name))

    # The state-dict keys whose shapes follow the scale MLP's hidden width.
    SCALE_MLP_KEYS = ('channel_scale_generator.fc1.weight',
                      'channel_scale_generator.fc1.bias',
                      'channel_scale_generator.fc2.weight')

    def stored_hidden_width(self, state_dict: dict,
                            prefix: str = '') -> Optional[int]:
        """The scale MLP's hidden width in ``state_dict`` where it differs
        from this layer's and the file's MLP otherwise fits (as in files of
        version 1-2, which gave 1x1 layers 9 times the width of version 3);
        None otherwise. Loading adopts it (checkpoint checks ask here too).
        """
        generator = self.channel_scale_generator
        inputs, outputs = generator.fc1.in_features, generator.fc2.out_features
        stored = [state_dict.get(prefix + k) for k in self.SCALE_MLP_KEYS]
        if any(getattr(t, 'shape', None) is None for t in stored):
            return None
        hidden = stored[0].shape[0] if stored[0].dim() == 2 else None
        if hidden is None or hidden == generator.fc1.out_features or \
                tuple(stored[0].shape) != (hidden, inputs) or \
                tuple(stored[1].shape) != (hidden, ) or \
                tuple(stored[2].shape) != (outputs, hidden):
            return None
        return hidden

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self.upgrade_state_dict(state_dict, prefix)
        hidden = self.stored_hidden_width(state_dict, prefix)
        if hidden is not None:
            # Resized in place: the Parameter objects stay, so an optimizer
            # built before loading (mmengine's resume) still holds them.
            fc1 = self.channel_scale_generator.fc1
            fc2 = self.channel_scale_generator.fc2
            fc1.weight.data = fc1.weight.new_empty(hidden, fc1.in_features)
            fc1.bias.data = fc1.bias.new_empty(hidden)
            fc2.weight.data = fc2.weight.new_empty(fc2.out_features, hidden)
            fc1.out_features = fc2.in_features = hidden
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.kaiming_normal_(self.weight, mode='fan_out',
                                nonlinearity='relu')

    def region_filters(self, x: Tensor) -> Tensor:
        scales = self.channel_scale_generator(x)
        return self.weight * scales[..., None, None, None]

    def forward(self, x: Tensor) -> Tensor:
        # Computed channels-last (oneDNN's native layout: on 2 threads its
        # convolutions of NCHW maps took up to 2x longer, docs/benchmarks.md;
        # the per-pixel scaling then works on contiguous rows), so the output
        # is channels-last, as nn.Conv2d's is for channels-last weights.
        self._check_input(x)
        scales = self.channel_scale_generator(x)
        if self.groups == 1:
            # The guide shares the convolution (m extra output channels), so
            # x is read once; its bias is added to the m guide channels
            # alone.
            weight = torch.cat([self.weight, self.guide.weight])
            if self._reads_planes_as_rows(x):
                both = pointwise_rows(x, weight)
            else:
                x = self._pad_extra(x).contiguous(
                    memory_format=torch.channels_last)
                both = F.conv2d(x, weight, None, self.stride,
                                self._conv_padding, self.dilation)
            return packed_region_scale(both, scales, self.guide.bias,
                                       self.bias, backend=self.backend)
        x = self._pad_extra(x).contiguous(memory_format=torch.channels_last)
        out = F.conv2d(x, self.weight, None, self.stride,
                       self._conv_padding, self.dilation, self.groups)
        return region_scale(out, scales, self.guide_logits(x), self.bias,
                            backend=self.backend)

    def _reads_planes_as_rows(self, x: Tensor) -> bool:
        """Whether this call takes :func:`pointwise_rows`: an NCHW input on
        the CPU to a plain 1x1 conv that does not widen it. There a GEMM
        over the transposed planes skips the input's conversion to
        channels-last; widening convs (32 -> 192) were measured faster
        converted (docs/benchmarks.md, "Fewer per-call costs, a lighter
        1x1 scale MLP, NCHW 1x1 inputs")."""
        return (self.kernel_size == (1, 1) and self.stride == (1, 1)
                and self._conv_padding == (0, 0)
                and self._extra_padding is None
                and self.in_channels >= self.out_channels
                and x.device.type == 'cpu' and x.is_contiguous()
                and not is_exporting())

    def multiply_adds(self, x: Tensor, y: Tensor) -> int:
        # Plus the per-pixel scaling.
        return super().multiply_adds(x, y) + y.numel()


class GeneratedFilterDRConv(DRConv):
    """DRConv with a full filter per region and sample, from ``'mixture'``
    (:class:`MixtureFilters`) or ``'paper'`` (:class:`PaperFilters`).

    ``mixture_algorithm`` (``'mixture'`` only) is how the layer computes:
    ``'filters'`` builds the B x m filters for ``region_conv``;
    ``'outputs'`` convolves with the n bases and mixes their outputs per
    pixel (``mmdrconv.core.ops.mixture_conv``; groups == 1); ``'auto'``
    (default) mixes outputs where that was measured faster (small 1x1 maps
    on the CPU). Both give the same values and gradients.
    """

    # For layers pickled before the option existed.
    mixture_algorithm = 'auto'

    def __init__(self, *args, num_bases: int = 4,
                 mixture_algorithm: str = 'auto', **kwargs):
        """Arguments of :class:`DRConv`, plus ``num_bases`` and
        ``mixture_algorithm``."""
        if len(args) < 10:
            kwargs.setdefault('generator', 'mixture')
        super().__init__(*args, **kwargs)
        if self.generator not in ('mixture', 'paper'):
            raise ValueError(f"generator must be 'mixture' or 'paper' for "
                             f'{type(self).__name__}, got '
                             f'{self.generator!r}')
        check_mixture_algorithm(mixture_algorithm, self.groups)
        if mixture_algorithm != 'auto' and self.generator != 'mixture':
            raise ValueError(f'mixture_algorithm={mixture_algorithm!r} is '
                             "an option of generator='mixture' only")
        self.mixture_algorithm = mixture_algorithm
        in_channels, out_channels = self.in_channels, self.out_channels
        groups, region_num = self.groups, self.region_num
        if self.generator == 'mixture':
            self.filter_generator = MixtureFilters(in_channels, out_channels,
                                                   self.kernel_size, groups,
                                                   region_num, num_bases,
                                                   **self._factory)
        else:
            self.filter_generator = PaperFilters(in_channels, out_channels,
                                                 self.kernel_size, groups,
                                                 region_num, **self._factory)
        self._add_bias_and_init()

    @property
    def generator_module(self) -> nn.Module:
        return self.filter_generator

    def region_filters(self, x: Tensor) -> Tensor:
        return self.filter_generator(x)

    def _out_pixels(self, x: Tensor) -> int:
        """Output pixels per sample for (padded) input ``x``."""
        size = 1
        for length, k, s, p, d in zip(x.shape[2:], self.kernel_size,
                                      self.stride, self._conv_padding,
                                      self.dilation):
            size *= conv_output_size(length, k, s, p, d)
        return size

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        x_padded = self._pad_extra(x)
        if self.generator == 'mixture' and mixes_outputs(
                self.mixture_algorithm, x, self.kernel_size,
                self._out_pixels(x_padded), self.groups,
                backward=torch.is_grad_enabled() and (
                    x.requires_grad or any(
                        p.requires_grad for p in self.parameters()))):
            return mixed_output_conv(
                x_padded, self.filter_generator.coefficients(x),
                self.filter_generator.bases, self.guide.weight,
                self.guide.bias, self.bias, self.stride, self._conv_padding,
                self.dilation, backend=self.backend)
        filters = self.filter_generator(x)
        x = x_padded
        return region_conv(x, filters, self.guide_logits(x), self.bias,
                           self.stride, self._conv_padding, self.dilation,
                           self.groups, backend=self.backend)
