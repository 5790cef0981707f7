"""The region layout every path shares (mmdrconv/core/ops/geometry.py, regions.py,
layout.py): output size, memory format, region keys, the surrogate gradient
and the sorted-run plan, each against an independent reference."""
import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdrconv.core.ops import layout, straight_through_mask
from mmdrconv.core.ops.geometry import ConvGeometry, output_memory_format
from mmdrconv.core.ops.regions import region_keys, surrogate_guide_grad


@pytest.mark.parametrize('kernel, stride, padding, dilation', [
    ((3, 3), (1, 1), (1, 1), (1, 1)),
    ((3, 1), (2, 3), (0, 2), (2, 1)),
    ((5, 5), (3, 2), (2, 0), (1, 2)),
    ((1, 1), (2, 2), (0, 0), (1, 1)),
])
def test_geometry_matches_conv2d(kernel, stride, padding, dilation):
    x = torch.randn(2, 6, 11, 9)
    weight = torch.randn(4, 3, *kernel)
    y = F.conv2d(x, weight, None, stride, padding, dilation, groups=2)
    geom = ConvGeometry.of(x.shape, (2, 5, 4, 3, *kernel), stride, padding,
                           dilation, groups=2)
    assert geom.out_size == tuple(y.shape[2:])
    assert geom.rows == y.shape[0] * y.shape[2] * y.shape[3]
    assert geom.patch_size == kernel[0] * kernel[1] * 6
    # Overlap: some input pixel is read by two (output pixel, tap) pairs.
    reads = torch.zeros(11 + 2 * padding[0], 9 + 2 * padding[1])
    for oy, ox, ty, tx in itertools.product(range(geom.out_h),
                                            range(geom.out_w),
                                            range(kernel[0]),
                                            range(kernel[1])):
        reads[oy * stride[0] + ty * dilation[0],
              ox * stride[1] + tx * dilation[1]] += 1
    assert geom.patches_overlap == bool((reads > 1).any())


def test_output_memory_format_follows_conv2d():
    conv = nn.Conv2d(4, 6, 3)
    nchw = torch.randn(2, 4, 7, 8)
    cases = [nchw, nchw.contiguous(memory_format=torch.channels_last),
             nchw[:, :, ::2], nchw.transpose(2, 3)]
    for x in cases:
        y = conv(x)
        expected = torch.channels_last if y.is_contiguous(
            memory_format=torch.channels_last) and not y.is_contiguous() \
            else torch.contiguous_format
        assert output_memory_format(x) == expected


def test_region_keys_both_tables():
    guide = torch.randn(3, 4, 5, 6)
    guide[1, :, 0, 0] = 1.0  # a tie: the lowest region wins
    keys = region_keys(guide)
    pixel_keys = region_keys(guide, per_pixel=True)
    for b, y, x in itertools.product(range(3), range(5), range(6)):
        values = guide[b, :, y, x].tolist()
        region = values.index(max(values))
        pixel = (b * 5 + y) * 6 + x
        assert keys[pixel] == b * 4 + region
        assert pixel_keys[pixel] == pixel * 4 + region
    assert keys[30] % 4 == 0


def test_surrogate_guide_grad_is_the_straight_through_gradient():
    guide = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    # Any per-region responses: the gradient of sum_j mask_j * a_j.
    a = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    (expected, ) = torch.autograd.grad(
        (straight_through_mask(guide) * a).sum(), guide)
    rows = a.permute(0, 2, 3, 1).reshape(-1, 3)  # (B*H*W, m), raster order
    grad = surrogate_guide_grad(guide.detach(), rows)
    torch.testing.assert_close(grad, expected)
    assert grad.dtype == guide.dtype


@pytest.mark.parametrize('chunk_elements', [1 << 30, 64])
def test_sorted_runs_and_plans(monkeypatch, chunk_elements):
    monkeypatch.setattr(layout, 'CHUNK_ELEMENTS', chunk_elements)
    guide = torch.randn(2, 4, 3, 5)
    guide[0, 3] += 10  # sample 0: one run of all 15 pixels
    geom = layout.Geometry.of((2, 3, 3, 5), (2, 4, 6, 3, 1, 1), (1, 1),
                              (0, 0), (1, 1))
    plan = layout.Plan(guide, geom)
    keys = (guide.argmax(1) + 4 * torch.arange(2).view(2, 1, 1)).flatten()
    assert torch.equal(plan.order, keys.sort(stable=True).indices)
    assert plan.counts.tolist() == [int((keys == k).sum()) for k in range(8)]
    assert plan.counts[3] == 15
    assert torch.equal(plan.run_start + plan.counts, plan.run_stop)
    for k in range(8):  # each run holds exactly its key's pixels
        rows = plan.order[plan.run_start[k]:plan.run_stop[k]]
        assert (keys[rows] == k).all()
    assert plan.padded == (chunk_elements > 64)
    rows = torch.arange(30.).view(-1, 1)
    sorted_rows = rows[plan.order]
    torch.testing.assert_close(plan.unsort(sorted_rows), rows)
    if plan.padded:
        padded = plan.pad(sorted_rows)
        assert padded.shape == (8, 15, 1)
        torch.testing.assert_close(plan.unpad(padded), sorted_rows)
