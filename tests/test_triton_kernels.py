"""The Triton kernels of region_conv and region_scale against references.

Without CUDA the kernels run on CPU tensors in Triton's interpreter
(``TRITON_INTERPRET=1``, set here before the kernels are first imported;
tiles of 32 pixels x 16 channels, so the small shapes below still span
several tiles and partial tiles). With CUDA they compile and run on the GPU.
The interpreter costs milliseconds per tile and tap: shapes are minimal.

Tolerances: float32 results against the naive all-regions reference in
float32: ``atol = rtol = 1e-4`` (both sum the same products in different
orders; TF32 is switched off for these comparisons). float16 / bfloat16
inputs against the float32 reference computed from the same (rounded)
inputs: max error <= 1.5e-3 (fp16) / 1e-2 (bf16) times the reference's
largest magnitude, about one unit in the last place of the output format
there (2^-10 / 2^-7): products accumulate in fp32, one rounding at the
end (observed here: <= 4.2e-4 / 6.2e-3).
"""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

if not torch.cuda.is_available():
    # Read by triton.jit when the kernel modules are first imported.
    os.environ['TRITON_INTERPRET'] = '1'
pytest.importorskip('triton', reason='triton is not installed')

from mmdrconv.core.layers import DRConv  # noqa: E402
from mmdrconv.core.ops import (naive_region_conv, region_conv,  # noqa: E402
                               region_scale, straight_through_mask)
from mmdrconv.core.ops.triton import use_triton  # noqa: E402
from mmdrconv.core.ops.triton.tiles import RegionTiles  # noqa: E402

DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'
FP32_TOL = dict(atol=1e-4, rtol=1e-4)
LOW_PRECISION_TOL = {torch.float16: 1.5e-3, torch.bfloat16: 1e-2}


@pytest.fixture(autouse=True)
def _no_tf32():
    allowed = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = allowed


def out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def conv_inputs(batch, cin, cout, regions, kernel, size, stride=1,
                padding=0, dilation=1, bias=True):
    kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    h, w = size
    oh = out_size(h, kh, stride, padding, dilation)
    ow = out_size(w, kw, stride, padding, dilation)
    return dict(x=torch.randn(batch, cin, h, w, device=DEVICE),
                filters=torch.randn(batch, regions, cout, cin, kh, kw,
                                    device=DEVICE) / (cin * kh * kw)**0.5,
                guide=torch.randn(batch, regions, oh, ow, device=DEVICE),
                bias=torch.randn(cout, device=DEVICE) if bias else None)


def outputs_and_grads(fn, inputs, grad_y, **kwargs):
    """fn's output and the gradients of every non-None input."""
    leaves = {k: v.detach().requires_grad_() for k, v in inputs.items()
              if v is not None}
    y = fn(**{**inputs, **leaves}, **kwargs)
    grads = torch.autograd.grad(y, list(leaves.values()), grad_y)
    return y, dict(zip(leaves, grads))


def assert_close_to(result, reference, tol=None, dtype=torch.float32):
    y, grads = result
    y_ref, grads_ref = reference
    assert y.dtype == dtype
    assert set(grads) == set(grads_ref)
    for name, value, ref in [('y', y, y_ref)] + [
            (k, grads[k], grads_ref[k]) for k in grads_ref]:
        assert value.shape == ref.shape, name
        if tol is None:
            torch.testing.assert_close(value, ref, **FP32_TOL,
                                       msg=lambda m: f'{name}: {m}')
        else:
            error = (value.float() - ref).abs().max().item() \
                if ref.numel() else 0.
            bound = tol * max(ref.abs().max().item() if ref.numel() else 0.,
                              1e-6)
            assert error <= bound, f'{name}: error {error:.3g} > {bound:.3g}'


@pytest.mark.parametrize('height', [1, 4, 16])
def test_region_tiles_cover_every_pixel_once(height):
    guide = torch.randn(3, 5, 4, 6)
    guide[1, 2] += 10  # sample 1: a single run of 24 pixels
    guide[:, 4] -= 10  # region 4 empty everywhere
    layout = RegionTiles(guide)
    key, start, stop = layout.tiles(height)
    keys = (guide.argmax(1) + 5 * torch.arange(3).view(3, 1, 1)).flatten()
    # Stable sort by key: raster order inside a run.
    assert torch.equal(keys[layout.order], keys.sort(stable=True).values)
    assert torch.equal(layout.order, keys.sort(stable=True).indices)
    real = key >= 0
    assert (key[~real] == -1).all() and real[:real.sum()].all()
    covered = torch.zeros(keys.numel(), dtype=torch.long)
    for k, a, b in zip(key[real], start[real], stop[real]):
        assert 0 < b - a <= height
        assert (keys[layout.order[a:b]] == k).all()
        covered[a:b] += 1
    assert (covered == 1).all()
    assert not torch.isin(key, torch.tensor([4, 9, 14])).any()  # empty


CONV_CASES = {
    # name: (batch, cin, cout, m, kernel, size, stride, padding, dilation)
    # channels and sizes are not multiples of the 16-wide tiles; 20 input
    # and 18 output channels need two channel blocks each.
    '3x3-pad1-2blocks': (1, 20, 18, 2, 3, (5, 6), 1, 1, 1),
    '1x1-m8': (2, 5, 7, 8, 1, (6, 7), 1, 0, 1),
    '5x5-stride2': (1, 5, 7, 2, 5, (9, 8), 2, 2, 1),
    '3x3-dilation2-m1': (1, 6, 5, 1, 3, (8, 7), 1, 2, 2),
    '3x1-stride2-no-pad': (2, 3, 17, 2, (3, 1), (9, 6), 2, 0, 1),
}


@pytest.mark.parametrize('case', CONV_CASES.values(), ids=list(CONV_CASES))
def test_region_conv_matches_naive(case):
    batch, cin, cout, m, k, size, s, p, d = case
    inputs = conv_inputs(batch, cin, cout, m, k, size, s, p, d,
                         bias=m != 1)
    conv = dict(stride=s, padding=p, dilation=d)
    y = naive_region_conv(**inputs, **conv)
    grad_y = torch.randn_like(y)
    reference = outputs_and_grads(naive_region_conv, inputs, grad_y, **conv)
    result = outputs_and_grads(region_conv, inputs, grad_y, **conv,
                               backend='triton')
    assert_close_to(result, reference)


def test_region_conv_empty_regions_and_long_runs():
    """Regions no pixel picks get zero filter gradients; a run longer than
    a tile spans several tiles; channels-last input gives channels-last
    output."""
    inputs = conv_inputs(2, 5, 7, 8, 1, (6, 7))
    guide = inputs['guide']
    guide[:, 5:] -= 100  # regions 5-7 never win
    guide[1, 0] += 100  # sample 1: one region, 42 pixels (2 tiles of 32)
    inputs['x'] = inputs['x'].contiguous(memory_format=torch.channels_last)
    counts = RegionTiles(guide).counts.view(2, 8)
    assert (counts[:, 5:] == 0).all() and counts[1, 0] == 42
    y = naive_region_conv(**inputs)
    grad_y = torch.randn_like(y)
    reference = outputs_and_grads(naive_region_conv, inputs, grad_y)
    result = outputs_and_grads(region_conv, inputs, grad_y,
                               backend='triton')
    assert_close_to(result, reference)
    assert result[0].is_contiguous(memory_format=torch.channels_last)
    assert (result[1]['filters'][:, 5:] == 0).all()
    assert (result[1]['filters'][1, 1:] == 0).all()


@pytest.mark.parametrize('wanted', [('filters', ), ('x', 'bias')])
def test_region_conv_some_gradients(wanted):
    inputs = conv_inputs(2, 5, 7, 3, 3, (4, 5), padding=1)
    y = naive_region_conv(**inputs, padding=1)
    grad_y = torch.randn_like(y)
    results = []
    for fn, extra in ((region_conv, dict(backend='triton')),
                      (naive_region_conv, {})):
        leaves = {k: v.detach().requires_grad_(k in wanted)
                  for k, v in inputs.items()}
        out = fn(**leaves, padding=1, **extra)
        results.append(torch.autograd.grad(
            out, [leaves[k] for k in wanted], grad_y))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, **FP32_TOL)


def test_region_conv_ties_pick_lowest_region():
    inputs = conv_inputs(1, 4, 6, 4, 3, (5, 5), padding=1, bias=False)
    inputs['guide'] = torch.zeros_like(inputs['guide'])  # all tied: region 0
    inputs['guide'][0, 2:, 0, 0] = 1.  # tie between regions 2 and 3
    y = region_conv(**inputs, padding=1, backend='triton')
    filters = inputs['filters'][0]
    expected = F.conv2d(inputs['x'], filters[0], padding=1)
    expected[..., 0, 0] = F.conv2d(inputs['x'], filters[2],
                                   padding=1)[..., 0, 0]
    torch.testing.assert_close(y, expected, **FP32_TOL)


def test_region_conv_batch_zero():
    inputs = conv_inputs(0, 4, 6, 3, 3, (5, 6), padding=1)
    y = naive_region_conv(**inputs, padding=1)
    grad_y = torch.randn_like(y)
    result = outputs_and_grads(region_conv, inputs, grad_y, padding=1,
                               backend='triton')
    assert result[0].shape == (0, 6, 5, 6)
    assert_close_to(result,
                    outputs_and_grads(naive_region_conv, inputs, grad_y,
                                      padding=1))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_region_conv_low_precision(dtype):
    inputs = conv_inputs(1, 5, 18, 2, 3, (5, 6), padding=1)
    low = {k: v.to(dtype) for k, v in inputs.items()}
    exact = {k: v.float() for k, v in low.items()}
    grad_y = torch.randn(1, 18, 5, 6, device=DEVICE).to(dtype)
    reference = outputs_and_grads(naive_region_conv, exact, grad_y.float(),
                                  padding=1)
    result = outputs_and_grads(region_conv, low, grad_y, padding=1,
                               backend='triton')
    assert_close_to(result, reference, LOW_PRECISION_TOL[dtype], dtype)


def naive_region_scale(out, scales, guide, bias=None):
    """All m scaled copies, selected by the straight-through mask."""
    mask = straight_through_mask(guide)
    y = (mask[:, :, None] * out[:, None] *
         scales[:, :, :, None, None]).sum(1)
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def scale_inputs(batch, channels, regions, size, bias=True, dtype=None):
    h, w = size
    inputs = dict(out=torch.randn(batch, channels, h, w, device=DEVICE),
                  scales=torch.randn(batch, regions, channels,
                                     device=DEVICE),
                  guide=torch.randn(batch, regions, h, w, device=DEVICE),
                  bias=torch.randn(channels, device=DEVICE) if bias else None)
    return inputs


SCALE_CASES = {
    # name: (batch, channels, m, size, bias)
    '2-channel-blocks': (2, 20, 3, (5, 7), True),
    'm8-no-bias': (2, 5, 8, (6, 3), False),
    'm1': (1, 17, 1, (4, 9), True),
    'batch0': (0, 6, 3, (4, 5), True),
}


@pytest.mark.parametrize('case', SCALE_CASES.values(), ids=list(SCALE_CASES))
def test_region_scale_matches_naive(case):
    inputs = scale_inputs(*case)
    grad_y = torch.randn_like(inputs['out'])
    reference = outputs_and_grads(naive_region_scale, inputs, grad_y)
    result = outputs_and_grads(region_scale, inputs, grad_y,
                               backend='triton')
    assert_close_to(result, reference)
    assert result[0].is_contiguous(memory_format=torch.channels_last)


def test_region_scale_fused_channel_slices_and_ties():
    """As DRConv calls it: out and guide are channel slices of one
    channels-last conv output; integer guides tie often (lowest wins)."""
    both = torch.randn(2, 12, 5, 6, device=DEVICE)
    both[:, 9:] = torch.randint(0, 2, (2, 3, 5, 6), device=DEVICE).float()
    both = both.contiguous(memory_format=torch.channels_last)
    inputs = dict(out=both[:, :9], scales=torch.randn(2, 3, 9, device=DEVICE),
                  guide=both[:, 9:], bias=torch.randn(9, device=DEVICE))
    grad_y = torch.randn(2, 9, 5, 6, device=DEVICE)
    assert_close_to(
        outputs_and_grads(region_scale, inputs, grad_y, backend='triton'),
        outputs_and_grads(naive_region_scale, inputs, grad_y))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_region_scale_low_precision(dtype):
    inputs = scale_inputs(2, 20, 4, (5, 6))
    low = {k: v.to(dtype) for k, v in inputs.items()}
    exact = {k: v.float() for k, v in low.items()}
    grad_y = torch.randn(2, 20, 5, 6, device=DEVICE).to(dtype)
    reference = outputs_and_grads(naive_region_scale, exact, grad_y.float())
    result = outputs_and_grads(region_scale, low, grad_y, backend='triton')
    assert_close_to(result, reference, LOW_PRECISION_TOL[dtype], dtype)


@pytest.mark.parametrize('generator', ['modulated', 'mixture'])
def test_drconv_layer_on_triton_matches_torch(generator):
    layer = DRConv(6, 8, 3, padding=1, region_num=2,
                   generator=generator).to(DEVICE)
    with torch.no_grad():
        layer.guide.weight.normal_()
        if generator == 'modulated':  # non-trivial region scales
            layer.channel_scale_generator.fc2.weight.normal_(std=0.5)
    x = torch.randn(2, 6, 4, 5, device=DEVICE)
    results = []
    for backend in ('triton', 'torch'):
        layer.backend = backend
        layer.zero_grad()
        leaf = x.clone().requires_grad_()
        y = layer(leaf)
        y.backward(torch.ones_like(y))
        results.append([y, leaf.grad] +
                       [p.grad for p in layer.parameters()])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, **FP32_TOL)


def test_backend_choice():
    x = torch.randn(1, 2, 3, 3)
    with pytest.raises(ValueError, match='backend must be one of'):
        region_conv(x, torch.randn(1, 2, 4, 2, 1, 1), torch.randn(1, 2, 3, 3),
                    backend='cuda')
    with pytest.raises(ValueError, match='backend must be one of'):
        region_scale(x, torch.randn(1, 2, 2), torch.randn(1, 2, 3, 3),
                     backend='Triton')
    assert not use_triton('auto', x)  # CPU tensors: PyTorch
    assert not use_triton('torch', x)
    assert not use_triton('triton', x, groups=2)  # grouped: PyTorch
    with pytest.raises(ValueError, match='float64'):
        use_triton('triton', x.double())
    if DEVICE == 'cpu':
        assert use_triton('triton', x)  # interpreted


def test_grouped_conv_falls_back_to_torch():
    inputs = dict(x=torch.randn(2, 4, 5, 5, device=DEVICE),
                  filters=torch.randn(2, 3, 6, 2, 3, 3, device=DEVICE),
                  guide=torch.randn(2, 3, 5, 5, device=DEVICE), bias=None)
    torch.testing.assert_close(
        region_conv(**inputs, padding=1, groups=2, backend='triton'),
        naive_region_conv(**inputs, padding=1, groups=2), **FP32_TOL)


def test_ops_work_without_triton():
    """Where triton is not installed, mmdrconv.core.ops imports and runs (the
    PyTorch path) and backend='triton' names the problem."""
    code = """
import sys

class NoTriton:  # as if triton were not installed
    def find_spec(self, name, path=None, target=None):
        if name == 'triton' or name.startswith('triton.'):
            raise ImportError('no triton')
sys.meta_path.insert(0, NoTriton())
import torch
import mmdrconv.core.layers
from mmdrconv.core.ops import region_conv
x = torch.randn(1, 2, 4, 4)
y = region_conv(x, torch.randn(1, 2, 3, 2, 1, 1), torch.randn(1, 2, 4, 4))
assert y.shape == (1, 3, 4, 4)
try:
    region_conv(x, torch.randn(1, 2, 3, 2, 1, 1), torch.randn(1, 2, 4, 4),
                backend='triton')
except ValueError as error:
    assert 'needs the triton package' in str(error), error
else:
    raise AssertionError('no error without triton')
"""
    env, root = _core_env()
    subprocess.run([sys.executable, '-c', code], check=True, env=env,
                   cwd=root)


def _core_env():
    """Environment of a fresh process that imports this checkout."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (root, env.get('PYTHONPATH')) if p)
    return env, root


def test_kernels_compile_for_h100():
    """The GPU compiler (not the interpreter) accepts every kernel for
    sm_90; tiles fit in the H100's 227 KiB of shared memory; the GEMMs use
    tensor cores (wgmma)."""
    env, root = _core_env()
    run = subprocess.run(
        [sys.executable, os.path.join(root, 'tests',
                                      'compile_triton_kernels.py')],
        env=env, capture_output=True, text=True, timeout=600)
    if run.returncode == 3:
        pytest.skip('this triton build has no CUDA backend')
    assert run.returncode == 0, run.stderr[-3000:]
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(results) == 7
    for result in results:
        assert result['shared'] <= 227 * 1024, result
        if result['kernel'].startswith('region_conv'):
            assert result['tensor_cores'], result
