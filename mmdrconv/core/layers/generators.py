"""What makes a DRConv's m region filters from its input, per sample.

Each generator also reports its own multiply-adds (``multiply_adds``), so
analysis code needs no knowledge of its insides.
"""
import math
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..ops.export_forms import adaptive_avg_pool2d_export, is_exporting


class MixtureFilters(nn.Module):
    """The official code's generator: per-region mixtures of shared bases.

    W[b, r] = sum_i coef[b, r, i] * base_i, coef = 2 * sigmoid(fc(GAP(x))) / n.
    Parameters: n x (the convolution's weight) + C x m x n.

    ``bases`` has a conv weight's shape (n, O, C/g, kh, kw) in channels-last
    memory order (as a channels-last nn.Conv2d weight), so the filters come
    out in that order too and ``region_conv`` gathers patches without
    reordering them.
    """

    # 2: bases shaped (n, O, C/g, kh, kw); 1 stored (n, O, kh, kw, C/g).
    _version = 2

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: Tuple[int, int], groups: int, region_num: int,
                 num_bases: int, device=None, dtype=None):
        super().__init__()
        if not isinstance(num_bases, int) or isinstance(num_bases, bool) \
                or num_bases < 1:
            raise ValueError(f'num_bases must be an int >= 1, got '
                             f'{num_bases!r}')
        self.region_num, self.num_bases = region_num, num_bases
        memory = torch.empty(num_bases, out_channels, *kernel_size,
                             in_channels // groups, device=device,
                             dtype=dtype)
        self.bases = nn.Parameter(memory.permute(0, 1, 4, 2, 3))
        self.routing = nn.Linear(in_channels, region_num * num_bases,
                                 device=device, dtype=dtype)

    def init_weights(self) -> None:
        # The initial mixture is the mean of n bases; scale so that it has the
        # variance of a kaiming-initialised convolution.
        out_channels, _, kh, kw = self.bases.shape[1:]
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
        """(B, m, O, C/g, kh, kw) filters, channels-last in memory."""
        coef = self.coefficients(x)
        n, out_channels, group_channels, kh, kw = self.bases.shape
        memory = self.bases.permute(0, 1, 3, 4, 2).reshape(n, -1)
        filters = coef @ memory.to(coef.dtype)
        filters = filters.view(x.shape[0], self.region_num, out_channels, kh,
                               kw, group_channels)
        return filters.permute(0, 1, 2, 5, 3, 4)

    def _apply(self, fn, recurse=True):
        # Module.to(memory_format=torch.channels_last) converts 5-D tensors
        # too and raises on them ("required rank 4", torch 2.x); the bases
        # (n, O, C/g, kh, kw) go through ``fn`` as the 4-D conv weight
        # (n*O, C/g, kh, kw) they are, already in channels-last order, so
        # that call works and every shape-keeping ``fn`` (dtype, device)
        # acts as before.
        def as_conv_weight(t):
            if t.dim() != 5:
                return fn(t)
            return fn(t.flatten(0, 1)).unflatten(0, t.shape[:2])
        return super()._apply(as_conv_weight, recurse)

    def multiply_adds(self, x: Tensor) -> int:
        return x.shape[0] * (self.routing.in_features *
                             self.routing.out_features +
                             self.region_num * self.bases.numel())

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              *args, **kwargs):
        # Version-1 files: by shape, or by their version where the shapes of
        # both layouts coincide (C/g == kh == kw).
        key = prefix + 'bases'
        stored = state_dict.get(key)
        n, out_channels, group_channels, kh, kw = self.bases.shape
        legacy = (n, out_channels, kh, kw, group_channels)
        version = local_metadata.get('version')
        if stored is not None and tuple(stored.shape) == legacy and (
                legacy != tuple(self.bases.shape)
                or (version is not None and version < 2)):
            state_dict[key] = stored.permute(0, 1, 4, 2, 3)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      *args, **kwargs)


class PaperFilters(nn.Module):
    """The paper's generator: pool to k x k, 1x1 conv + sigmoid, grouped 1x1.

    Parameters: m^2 * O * C/g in the grouped projection, m^2 / (kh * kw)
    times the convolution's weight (7x for 3x3, 64x for 1x1 at m = 8): heavy,
    kept for fidelity to the paper.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: Tuple[int, int], groups: int, region_num: int,
                 device=None, dtype=None):
        super().__init__()
        self.region_num = region_num
        self.filter_shape = (out_channels, in_channels // groups)
        self.pool = nn.AdaptiveAvgPool2d(kernel_size)
        self.hidden = nn.Conv2d(in_channels, region_num * region_num, 1,
                                device=device, dtype=dtype)
        self.project = nn.Conv2d(region_num * region_num,
                                 region_num * out_channels *
                                 (in_channels // groups),
                                 1,
                                 groups=region_num,
                                 device=device,
                                 dtype=dtype)

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
        """(B, m, O, C/g, kh, kw) filters."""
        if is_exporting():  # bins that follow the input size in the graph
            pooled = adaptive_avg_pool2d_export(x, self.pool.output_size)
        else:
            pooled = self.pool(x)
        hidden = torch.sigmoid(self.hidden(pooled))
        filters = self.project(hidden)
        return filters.view(x.shape[0], self.region_num, *self.filter_shape,
                            *filters.shape[-2:])

    def multiply_adds(self, x: Tensor) -> int:
        kh, kw = self.pool.output_size
        per_position = (self.hidden.in_channels * self.hidden.out_channels +
                        self.project.out_channels *
                        self.project.in_channels // self.project.groups)
        return x.shape[0] * kh * kw * per_position


def scale_hidden_width(in_channels: int, kernel_size: Tuple[int, int],
                       hidden_ratio: float) -> int:
    """Hidden width of :class:`RegionChannelScales` for a DRConv layer:
    ``hidden_ratio`` x ``in_channels`` for kernels of 9 taps or more, scaled
    down by the taps of smaller ones (1/9 for a 1x1), at least 8.

    The second layer holds m x O x hidden weights: at 3x3 about
    ``hidden_ratio`` x m / 9 of the convolution's O x C x 9. Without the
    scaling a 1x1 DRConv's MLP held m x ``hidden_ratio`` = 2 times its
    convolution's weights (docs/benchmarks.md, "Fewer per-call costs, a
    lighter 1x1 scale MLP, NCHW 1x1 inputs").
    """
    taps = kernel_size[0] * kernel_size[1]
    return max(8, int(in_channels * hidden_ratio * min(1.0, taps / 9)))


class RegionChannelScales(nn.Module):
    """Per-sample, per-region output-channel scales 1 + fc(GAP(x)): (B, m, O).

    Zero-initialised, so a modulated DRConv starts equal to its static conv.
    """

    def __init__(self, in_channels: int, out_channels: int, region_num: int,
                 hidden_channels: int, device=None, dtype=None):
        super().__init__()
        self.region_num, self.out_channels = region_num, out_channels
        self.fc1 = nn.Linear(in_channels, hidden_channels, device=device,
                             dtype=dtype)
        self.fc2 = nn.Linear(hidden_channels, region_num * out_channels,
                             device=device, dtype=dtype)

    def init_weights(self) -> None:
        nn.init.kaiming_normal_(self.fc1.weight, nonlinearity='relu')
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: Tensor) -> Tensor:
        delta = self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3)))))
        return 1 + delta.view(-1, self.region_num, self.out_channels)

    def multiply_adds(self, x: Tensor) -> int:
        return x.shape[0] * sum(fc.in_features * fc.out_features
                                for fc in (self.fc1, self.fc2))
