"""Export at any size: graphs traced at one size run at others, or say not.

Every generator's layer is exported once and run in ONNX Runtime at three
other batch and spatial sizes (smaller, odd, larger) against PyTorch; the
'paper' generator's adaptive pooling used to bake the traced bins into the
graph (GatherND out of range at larger sizes, wrong values at smaller).
The export tool refuses trace sizes at which a feature map would be one
pixel (torch.export then fixes it), checks the graph at other sizes before
calling it dynamic, and checks its arguments before any work. (The
whole-model export with the size check is in test_deploy.py.)
"""
import os

import numpy as np
import pytest
import torch
import torch.nn as nn

from mmdrconv.core.layers import DRConv
from mmdrconv.core.ops.export_forms import adaptive_avg_pool2d_export

ort = pytest.importorskip('onnxruntime')
pytest.importorskip('onnx')

from mmdrconv.deploy import (VerificationError, check_trace_shape,  # noqa
                             export_onnx, other_sizes, verify_dynamic_sizes)
from helpers import SEG, export_tool, random_checkpoint, randomize  # noqa


class Deployable(nn.Module):
    """A module as deploy.export_onnx takes it: 3-channel input, named
    outputs."""

    output_names = ('y', )

    def __init__(self, *layers):
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


@pytest.mark.parametrize('generator,conv', [
    ('paper', dict(kernel_size=3, padding=1)),  # the case
    ('paper', dict(kernel_size=(3, 1), padding=(1, 0), groups=3,
                   padding_mode='reflect')),
    ('modulated', dict(kernel_size=3, stride=2, padding=1,
                       padding_mode='circular')),
    ('mixture', dict(kernel_size=1)),  # mixes outputs on the CPU
])
def test_layer_exported_once_runs_at_other_sizes(generator, conv, tmp_path):
    layer = randomize(DRConv(3, 6, region_num=4, generator=generator,
                             **conv))
    module = Deployable(layer).eval()
    path = str(tmp_path / 'layer.onnx')
    export_onnx(module, path, (12, 10))
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    sizes = other_sizes((12, 10))
    assert len({s[1:] for s in sizes} | {(12, 10)}) == 4
    for batch, height, width in sizes:
        x = torch.randn(batch, 3, height, width)
        with torch.no_grad():
            expected = module(x).numpy()
        got, = session.run(None, {'inputs': x.numpy()})
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    # The same through the deploy check the tool runs.
    assert verify_dynamic_sizes(module, path, (12, 10)) == sizes


@pytest.mark.parametrize('size', [(7, 9), (3, 3), (2, 5), (16, 4)])
def test_adaptive_pool_form_matches_pytorch(size):
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    torch.testing.assert_close(adaptive_avg_pool2d_export(x, (3, 3)),
                               nn.functional.adaptive_avg_pool2d(x, (3, 3)))


def test_a_static_graph_is_not_called_dynamic(tmp_path):
    module = Deployable(randomize(DRConv(3, 4, 3, padding=1,
                                         region_num=2))).eval()
    path = str(tmp_path / 'static.onnx')
    with torch.no_grad():
        torch.onnx.export(module, (torch.randn(2, 3, 12, 10), ), path,
                          dynamo=True, input_names=['inputs'],
                          external_data=False)
    with pytest.raises(VerificationError, match='not a graph of any size'):
        verify_dynamic_sizes(module, path, (12, 10))


def test_a_file_that_is_no_graph_is_named(tmp_path):
    path = tmp_path / 'broken.onnx'
    path.write_bytes(b'not a graph')
    module = Deployable(nn.Conv2d(3, 4, 1)).eval()
    with pytest.raises(VerificationError, match='does not load in ONNX '
                       'Runtime'):
        verify_dynamic_sizes(module, str(path), (8, 8))


def test_trace_sizes_with_one_pixel_feature_maps_are_refused():
    # Stride 4, then a global pooling branch (always 1 x 1: not a problem).
    class Net(nn.Module):
        output_names = ('y', )

        def __init__(self):
            super().__init__()
            self.down = nn.Conv2d(3, 4, 4, stride=4)
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            y = self.down(x)
            return y + self.pool(y)

    with pytest.raises(ValueError, match=r'--shape 4 12 is too small .* '
                       r'--shape 8 12\.'):
        check_trace_shape(Net(), (4, 12))  # 1 x 3 maps
    check_trace_shape(Net(), (8, 8))
    with pytest.raises(ValueError, match='--shape 2 2: the model does not '
                       'run at this size'):
        check_trace_shape(Net(), (2, 2))


# --- the tool -------------------------------------------------------------

@pytest.mark.parametrize('args, message', [
    (['--shape', '0', '64'], '--shape 0 64: height and width must be'),
    (['--shape', '-8', '8'], '--shape -8 8: height and width must be'),
    (['--atol', '-1'], '--atol must be >= 0'),
])
def test_tool_checks_shape_before_loading(args, message, tmp_path):
    code, log = export_tool(SEG, tmp_path / 'missing.pth',
                            tmp_path / 'x.onnx', *args)
    # Failing on the missing checkpoint would mean it checked too late.
    assert code and message in log, log
    assert not (tmp_path / 'x.onnx').exists()


def test_tool_checks_the_output_path_first(tmp_path):
    checkpoint = tmp_path / 'missing.pth'  # never reached
    code, log = export_tool(SEG, checkpoint, tmp_path / 'no' / 'x.onnx')
    assert code and 'folder' in log and 'does not exist' in log, log
    code, log = export_tool(SEG, checkpoint, tmp_path)
    assert code and 'is a directory' in log, log
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / 'locked'
        locked.mkdir()
        locked.chmod(0o500)
        code, log = export_tool(SEG, checkpoint, locked / 'x.onnx')
        assert code and 'cannot be written' in log, log
    code, log = export_tool(SEG, checkpoint, tmp_path / 'x.onnx',
                            '--verify-only')
    assert code and '--verify-only: OUT' in log and 'does not exist' in log


def test_tool_refuses_a_trace_size_too_small_for_the_stride(tmp_path):
    # The issue's --shape 8 8 of an output-stride-8 segmentor: refused
    # before the (slow) export, naming a size that works.
    checkpoint = random_checkpoint(SEG, tmp_path / 'model.pth')
    out = tmp_path / 'x.onnx'
    code, log = export_tool(SEG, checkpoint, out, '--shape', 8, 8)
    assert code and '--shape 8 8 is too small' in log, log
    assert '--shape 16 16' in log
    assert not out.exists()


# --- direct exports with named dynamic dimensions -------------------------

NAMED_DIMS = ({0: torch.export.Dim('B', max=64),
               2: torch.export.Dim('H', min=8, max=1024),
               3: torch.export.Dim('W', min=8, max=1024)}, )


@pytest.mark.parametrize('generator', ['modulated', 'mixture', 'paper'])
@pytest.mark.parametrize('strict', [False, True])
def test_torch_export_with_named_dims_keeps_them_dynamic(generator, strict):
    # Traced at 20 x 18 (360 output pixels: a 3x3 mixture layer builds
    # filters there in eager mode), run at other batch and spatial sizes.
    # Non-strict export used to refuse named dims ("marked B as dynamic but
    # your code specialized it": int() of the sizes), and the mixture layer
    # chose its algorithm by the traced size, a guard the other sizes fail.
    layer = randomize(DRConv(4, 6, 3, region_num=3,
                             generator=generator)).eval()
    with torch.no_grad():
        program = torch.export.export(layer, (torch.randn(2, 4, 20, 18), ),
                                      dynamic_shapes=NAMED_DIMS,
                                      strict=strict)
        for shape in [(1, 4, 9, 13), (3, 4, 33, 8), (1, 4, 40, 41)]:
            x = torch.randn(shape)
            torch.testing.assert_close(program.module()(x), layer(x),
                                       rtol=0, atol=1e-5)


def test_onnx_export_with_named_dims_runs_at_other_sizes(tmp_path):
    # The case: the dynamo ONNX exporter with named Dims used to
    # return a graph fixed at the trace size for the 'paper' generator.
    module = Deployable(randomize(DRConv(3, 6, 3, padding=1, region_num=4,
                                         generator='paper'))).eval()
    path = str(tmp_path / 'paper.onnx')
    with torch.no_grad():
        torch.onnx.export(module, (torch.randn(2, 3, 12, 10), ), path,
                          dynamo=True, input_names=['inputs'],
                          dynamic_shapes=NAMED_DIMS, external_data=False)
    assert verify_dynamic_sizes(module, path, (12, 10)) == \
        other_sizes((12, 10))
