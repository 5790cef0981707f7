"""Argument checks shared by the ops and the layers: bad input stops with an
error that names the argument, never a silently different convolution."""
from numbers import Integral
from typing import Optional, Tuple, Union

from torch import Tensor

from .geometry import ConvGeometry

IntPair = Union[int, Tuple[int, int]]


def as_pair(value: IntPair, name: str, minimum: int) -> Tuple[int, int]:
    """``value`` as an (h, w) pair of ints >= ``minimum``, or ValueError."""
    pair = (value, value) if not isinstance(value, (tuple, list)) else \
        tuple(value)
    if len(pair) != 2 or not all(
            isinstance(v, Integral) and not isinstance(v, bool)
            for v in pair):
        raise ValueError(f'{name} must be an int or a pair of ints, got '
                         f'{value!r}')
    if min(pair) < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value!r}')
    return int(pair[0]), int(pair[1])


def _check_shapes(x: Tensor, filters: Tensor, guide: Tensor,
                  bias: Optional[Tensor], groups: int) -> None:
    if x.dim() != 4:
        raise ValueError('region_conv expects x of shape (B, C, H, W), got '
                         f'{tuple(x.shape)}')
    if filters.dim() != 6:
        raise ValueError('region_conv expects filters of shape '
                         f'(B, m, O, C // groups, kh, kw), got '
                         f'{tuple(filters.shape)}')
    if guide.dim() != 4:
        raise ValueError('region_conv expects guide of shape '
                         f'(B, m, H_out, W_out), got {tuple(guide.shape)}')
    if not isinstance(groups, Integral) or isinstance(groups, bool):
        raise ValueError(f'groups must be an int, got {groups!r}')
    batch, channels = x.shape[:2]
    f_batch, regions, out_channels, group_channels = filters.shape[:4]
    if groups < 1 or channels % groups or out_channels % groups:
        raise ValueError(f'groups={groups} must divide the input channels '
                         f'({channels}) and output channels ({out_channels})')
    if group_channels * groups != channels:
        raise ValueError(
            f'filters expect {group_channels * groups} input channels '
            f'(C // groups = {group_channels}, groups={groups}) but x has '
            f'{channels}')
    if f_batch != batch or guide.shape[0] != batch:
        raise ValueError(f'batch sizes differ: x {batch}, filters {f_batch}, '
                         f'guide {guide.shape[0]}')
    if guide.shape[1] != regions:
        raise ValueError(f'guide has {guide.shape[1]} channels but filters '
                         f'hold {regions} regions')
    if regions < 1:
        raise ValueError('filters must hold at least one region')
    if bias is not None and tuple(bias.shape) != (out_channels, ):
        raise ValueError(f'bias must have shape ({out_channels},), got '
                         f'{tuple(bias.shape)}')


def check_region_conv_inputs(x: Tensor, filters: Tensor, guide: Tensor,
                             bias: Optional[Tensor], stride: IntPair,
                             padding: IntPair, dilation: IntPair,
                             groups: int) -> ConvGeometry:
    """Every argument of ``region_conv`` checked; returns the call's
    geometry (stride, padding and dilation as pairs)."""
    _check_shapes(x, filters, guide, bias, groups)
    stride = as_pair(stride, 'stride', minimum=1)
    padding = as_pair(padding, 'padding', minimum=0)
    dilation = as_pair(dilation, 'dilation', minimum=1)
    geom = ConvGeometry.of(x.shape, filters.shape, stride, padding, dilation,
                           groups)
    if min(geom.out_size) < 1:
        raise ValueError(f'input of size {tuple(x.shape[2:])} is too small '
                         f'for kernel {(geom.kh, geom.kw)} with padding '
                         f'{padding} and dilation {dilation}')
    if tuple(guide.shape[2:]) != geom.out_size:
        raise ValueError(f'guide spatial size {tuple(guide.shape[2:])} does '
                         f'not match the output size {geom.out_size}')
    return geom


def check_region_scale_inputs(out: Tensor, scales: Tensor,
                              guide: Tensor) -> None:
    """``region_scale``'s arguments: out (B, O, H, W), scales (B, m, O),
    guide (B, m, H, W)."""
    if scales.dim() != 3 or scales.shape[0] != out.shape[0] or \
            scales.shape[2] != out.shape[1]:
        raise ValueError(f'scales must be (B, m, O) = ({out.shape[0]}, m, '
                         f'{out.shape[1]}), got {tuple(scales.shape)}')
    if guide.shape != (out.shape[0], scales.shape[1], *out.shape[2:]):
        raise ValueError(f'guide must be (B, m, H, W) = '
                         f'{(out.shape[0], scales.shape[1], *out.shape[2:])},'
                         f' got {tuple(guide.shape)}')


def check_packed_region_scale_inputs(both: Tensor, scales: Tensor,
                                     guide_bias: Optional[Tensor]) -> None:
    """``packed_region_scale``'s arguments: both (B, O + m, H, W), scales
    (B, m, O), guide_bias (m,) or None."""
    if scales.dim() != 3 or both.dim() != 4 or \
            scales.shape[0] != both.shape[0] or \
            both.shape[1] != scales.shape[1] + scales.shape[2]:
        raise ValueError(
            f'packed_region_scale: both must be (B, O + m, H, W) and scales '
            f'(B, m, O) with the same B; got both {tuple(both.shape)}, '
            f'scales {tuple(scales.shape)}')
    if guide_bias is not None and \
            tuple(guide_bias.shape) != (scales.shape[1], ):
        raise ValueError(f'guide_bias must have shape ({scales.shape[1]},), '
                         f'got {tuple(guide_bias.shape)}')
