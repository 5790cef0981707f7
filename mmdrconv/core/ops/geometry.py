"""Geometry of one region-aware convolution call, written once for every path.

The output size (``nn.Conv2d``'s rule), the shapes of input, filters and
guide, and the memory format of the result: read by the argument checks
(``checks``), the PyTorch sorted-run path (``layout``), the Triton kernels
(``triton.region_conv``) and the layers.
"""
from dataclasses import dataclass, field
from typing import Sequence, Tuple

import torch
from torch import Tensor

Pair = Tuple[int, int]


def conv_output_size(size: int, kernel: int, stride: int, padding: int,
                     dilation: int) -> int:
    """Output length along one dimension, as ``nn.Conv2d`` computes it."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def output_memory_format(x: Tensor) -> torch.memory_format:
    """Memory format of a convolution's output (and of the input gradient)
    for input ``x``, following ``nn.Conv2d``: channels_last in, channels_last
    out; anything else (NCHW, other strides) contiguous NCHW."""
    if x.is_contiguous(memory_format=torch.channels_last) and \
            not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def _size(d):
    """A dimension as an int, or as it is when symbolic: ``int()`` of a
    torch.SymInt would fix a dynamic dimension of ``torch.export`` to the
    size traced at (non-strict export refuses named dynamic dimensions so
    fixed)."""
    return d if isinstance(d, torch.SymInt) else int(d)


@dataclass
class ConvGeometry:
    """Shapes of one ``region_conv`` call: input (B, C, H, W), filters
    (B, m, O, C // groups, kh, kw), output and guide (B, O | m, out_h,
    out_w). Build with :meth:`of`."""

    batch: int
    channels: int
    height: int
    width: int
    regions: int
    out_channels: int
    group_channels: int
    kh: int
    kw: int
    stride: Pair
    padding: Pair
    dilation: Pair
    groups: int = 1
    out_h: int = field(init=False)
    out_w: int = field(init=False)

    def __post_init__(self):
        self.out_h = conv_output_size(self.height, self.kh, self.stride[0],
                                      self.padding[0], self.dilation[0])
        self.out_w = conv_output_size(self.width, self.kw, self.stride[1],
                                      self.padding[1], self.dilation[1])

    @classmethod
    def of(cls, x_shape: Sequence[int], filter_shape: Sequence[int],
           stride: Pair, padding: Pair, dilation: Pair, groups: int = 1):
        """From the shapes of x (4-D) and filters (6-D) and the (h, w)
        pairs; shapes are taken as given (``checks`` validates them).
        Symbolic sizes (torch.export's dynamic dimensions) stay symbolic."""
        batch, channels, height, width = (_size(d) for d in x_shape)
        _, regions, out_channels, group_channels, kh, kw = (
            _size(d) for d in filter_shape)
        return cls(batch, channels, height, width, regions, out_channels,
                   group_channels, kh, kw, tuple(stride), tuple(padding),
                   tuple(dilation), int(groups))

    @property
    def out_size(self) -> Pair:
        return self.out_h, self.out_w

    @property
    def pixels(self) -> int:
        """Output pixels per sample."""
        return self.out_h * self.out_w

    @property
    def rows(self) -> int:
        """Output pixels of the batch: the rows of the sorted-run GEMMs."""
        return self.batch * self.pixels

    @property
    def taps(self) -> int:
        return self.kh * self.kw

    @property
    def patch_size(self) -> int:
        """Columns of a gathered patch, ordered (kh, kw, C): channels last."""
        return self.taps * self.channels

    @property
    def patches_overlap(self) -> bool:
        """Whether an input pixel can be read by more than one (output pixel,
        tap): the stride is smaller than the dilated kernel's extent."""
        return any(s < d * (k - 1) + 1 for s, d, k in zip(
            self.stride, self.dilation, (self.kh, self.kw)))
