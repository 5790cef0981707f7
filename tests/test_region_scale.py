"""region_scale and packed_region_scale on the PyTorch path: both memory
layouts (channels-last rows, NCHW planes) against a one-hot reference, and
the region rule's vectorised form against max(); inference (nothing to
record) without the autograd Function, with the same values."""
import pytest
import torch
from torch.autograd import grad, gradgradcheck

from mmdrconv.core.ops import (packed_region_scale, region_index,
                               region_scale, straight_through_mask)
from mmdrconv.core.ops.regions import MIN_PLANE_PIXELS

LAYOUTS = ['nchw', 'channels_last', 'channel_slice']


def scale_reference(out, scales, guide, bias):
    """region_scale as a one-hot product (plain autograd)."""
    mask = straight_through_mask(guide)
    y = out * torch.einsum('bjhw,bjo->bohw', mask, scales)
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def in_layout(t, layout):
    """``t`` as an NCHW map, a channels-last one, or channels sliced from a
    wider channels-last map (as the packed op's output part is)."""
    if layout == 'nchw':
        return t.contiguous()
    if layout == 'channels_last':
        return t.contiguous(memory_format=torch.channels_last)
    wide = torch.cat([t, torch.randn_like(t[:, :2])], 1)
    return wide.contiguous(memory_format=torch.channels_last)[:, :t.shape[1]]


def leaves(*tensors):
    return [t.detach().clone().requires_grad_() for t in tensors]


@pytest.mark.parametrize('layout', LAYOUTS)
@pytest.mark.parametrize('with_bias', [True, False])
def test_region_scale_matches_reference(layout, with_bias):
    torch.manual_seed(0)
    out = in_layout(torch.randn(2, 5, 6, 7, dtype=torch.float64), layout)
    scales = torch.randn(2, 3, 5, dtype=torch.float64)
    guide = in_layout(torch.randn(2, 3, 6, 7, dtype=torch.float64), layout)
    bias = torch.randn(5, dtype=torch.float64) if with_bias else None
    args = leaves(out, scales, guide) + \
        (leaves(bias) if with_bias else [None])
    ref_args = leaves(out, scales, guide) + \
        (leaves(bias) if with_bias else [None])
    y = region_scale(*args, backend='torch')
    y_ref = scale_reference(*ref_args)
    torch.testing.assert_close(y, y_ref)
    # The result keeps the maps' memory format (rows stay rows).
    assert y.is_contiguous(memory_format=torch.channels_last) == \
        (layout != 'nchw')
    dy = torch.randn_like(y_ref)
    wanted = [t for t in args if t is not None]
    for g, g_ref in zip(grad(y, wanted, dy),
                        grad(y_ref, [t for t in ref_args if t is not None],
                             dy)):
        assert g_ref.abs().max() > 0
        torch.testing.assert_close(g, g_ref)


def packed_inputs(layout, dtype=torch.float64, batch=2):
    out = torch.randn(batch, 5, 6, 7, dtype=dtype)
    guide = torch.randn(batch, 3, 6, 7, dtype=dtype)
    both = torch.cat([out, guide], 1)
    if layout != 'nchw':
        both = both.contiguous(memory_format=torch.channels_last)
    return (both, torch.randn(batch, 3, 5, dtype=dtype),
            torch.randn(3, dtype=dtype), torch.randn(5, dtype=dtype))


@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
def test_packed_matches_reference(layout):
    torch.manual_seed(1)
    both, scales, guide_bias, bias = leaves(*packed_inputs(layout))
    y = packed_region_scale(both, scales, guide_bias, bias, backend='torch')
    ref = leaves(both, scales, guide_bias, bias)
    guide = ref[0][:, 5:] + ref[2].view(1, -1, 1, 1)
    y_ref = scale_reference(ref[0][:, :5], ref[1], guide, ref[3])
    torch.testing.assert_close(y, y_ref)
    assert y.is_contiguous(memory_format=torch.channels_last) == \
        (layout != 'nchw')
    dy = torch.randn_like(y_ref)
    got = grad(y, [both, scales, guide_bias, bias], dy)
    want = grad(y_ref, ref, dy)
    assert got[0].shape == both.shape and got[0].stride() == both.stride()
    for g, g_ref in zip(got, want):
        assert g_ref.abs().max() > 0
        torch.testing.assert_close(g, g_ref)


@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
def test_packed_second_derivatives(layout):
    torch.manual_seed(2)
    inputs = leaves(*packed_inputs(layout))
    assert gradgradcheck(
        lambda *a: packed_region_scale(*a, backend='torch'), inputs,
        fast_mode=True)


def test_packed_without_biases_and_empty_batch():
    both, scales, _, _ = leaves(*packed_inputs('nchw'))
    y = packed_region_scale(both, scales)
    torch.testing.assert_close(
        y, scale_reference(both[:, :5], scales, both[:, 5:], None))
    empty = leaves(*packed_inputs('channels_last', batch=0))
    y = packed_region_scale(*empty)
    assert y.shape == (0, 5, 6, 7)
    grads = grad(y.sum(), empty)
    assert all(g.shape == t.shape for g, t in zip(grads, empty))


@pytest.mark.parametrize('both_shape, scales_shape, guide_bias, message', [
    ((2, 7, 4, 4), (2, 3, 5), None, r'both must be \(B, O \+ m, H, W\)'),
    ((2, 8, 4, 4), (3, 3, 5), None, 'same B'),
    ((2, 8, 4, 4), (2, 3, 5), (4, ), r'guide_bias must have shape \(3,\)'),
])
def test_packed_bad_input_is_named(both_shape, scales_shape, guide_bias,
                                   message):
    with pytest.raises(ValueError, match=message):
        packed_region_scale(
            torch.randn(both_shape), torch.randn(scales_shape),
            None if guide_bias is None else torch.randn(guide_bias))


def test_region_index_of_channel_planes_is_the_first_maximum():
    # Large NCHW guides take the vectorised rule: the same index as max(),
    # ties (integer logits tie often) to the lowest region, NaN pixels to
    # the first NaN as max() picks them.
    side = int(MIN_PLANE_PIXELS ** 0.5) + 1
    guide = torch.randint(0, 3, (2, 5, side, side)).float()
    guide[0, 2, 3, 4] = float('nan')
    guide[1, :, 0, 0] = 7.0
    index = region_index(guide)
    torch.testing.assert_close(index, guide.max(1).indices)
    assert index[0, 3, 4] == 2 and index[1, 0, 0] == 0
    clean = torch.randint(0, 3, (2, 5, side, side)).float()
    torch.testing.assert_close(region_index(clean), clean.argmax(1))
    assert (region_index(clean) == clean.argmax(1)).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('backend', ['auto', 'torch'])
@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
def test_packed_cuda_matches_cpu(backend, layout):
    # 'auto' runs the Triton kernel on CUDA, 'torch' this module's path.
    inputs = packed_inputs(layout, dtype=torch.float32)
    results = []
    for device in ('cpu', 'cuda'):
        args = leaves(*(t.to(device) for t in inputs))
        y = packed_region_scale(*args, backend=backend)
        dy = torch.linspace(-1, 1, y.numel()).view(y.shape).to(device)
        results.append([y, *grad(y, args, dy)])
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('layout', LAYOUTS)
def test_inference_runs_without_the_autograd_function(layout, monkeypatch):
    # Where autograd records nothing the forward runs directly (no Function,
    # no saved tensors), with the values of the recorded call.
    from mmdrconv.core.ops import region_scale_op
    torch.manual_seed(0)
    out = in_layout(torch.randn(2, 6, 5, 7), layout)
    scales, guide = torch.randn(2, 3, 6), torch.randn(2, 3, 5, 7)
    both = torch.cat([out, guide], 1).contiguous(
        memory_format=torch.channels_last)
    bias, guide_bias = torch.randn(6), torch.randn(3)
    recorded = region_scale(*leaves(out, scales, guide), bias)
    recorded_packed = packed_region_scale(*leaves(both, scales), guide_bias,
                                          bias)

    def refuse(*args):
        raise AssertionError('the autograd Function ran in inference')
    for function in (region_scale_op.RegionScaleFunction,
                     region_scale_op.PackedRegionScaleFunction):
        monkeypatch.setattr(function, 'apply', refuse)
    with torch.no_grad():
        y = region_scale(out, scales, guide, bias)
        y_packed = packed_region_scale(both, scales, guide_bias, bias)
    y_plain = region_scale(out, scales, guide, bias)  # nothing needs grad
    for a, b in ((y, recorded), (y_plain, recorded),
                 (y_packed, recorded_packed)):
        assert torch.equal(a, b.detach())
    torch.testing.assert_close(y_packed, region_scale(
        both[:, :6], scales, both[:, 6:] + guide_bias.view(1, -1, 1, 1),
        bias))
    with pytest.raises(AssertionError, match='Function ran'):
        region_scale(*leaves(out), scales, guide, bias)
