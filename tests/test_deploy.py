"""Deployment: ONNX export + ONNX Runtime, and torch.compile.

Layers of every generator round-trip through ONNX Runtime at other batch and
spatial sizes than they were exported at; the DeepLabV3 segmentor and the
Mask R-CNN backbone + neck export and verify through the tool; a compiled
DRConv model matches eager in outputs, gradients and training steps.
"""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

from mmdrconv.layers import DRConv
from mmdrconv.ops import region_conv, region_scale
from mmdrconv.ops import export_forms

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
OPS_DIR = osp.join(REPO, 'mmdrconv', 'ops')


def randomize(module, std=0.3):
    # DRConv starts near a plain conv (zero-initialised modulation, tiny
    # guide): random parameters make regions and filters really differ.
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * std)
    return module


class WithRegions(nn.Module):
    """A DRConv layer that also returns its region map."""

    output_names = ('y', 'regions')

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x), self.layer.region_map(x)


def export(module, args, path, dynamic=True):
    dim = torch.export.Dim.DYNAMIC
    with torch.no_grad():
        torch.onnx.export(
            module, args, str(path), dynamo=True,
            dynamic_shapes=({0: dim, 2: dim, 3: dim}, ) if dynamic else None,
            external_data=False)
    return ort.InferenceSession(str(path),
                                providers=['CPUExecutionProvider'])


def standard_ops_only(path):
    graph = onnx.load(str(path)).graph
    domains = {node.domain for node in graph.node}
    assert domains <= {'', 'ai.onnx'}, domains
    return graph


@pytest.mark.parametrize('generator,conv', [
    ('modulated', dict(kernel_size=3, padding=1)),
    ('mixture', dict(kernel_size=3, padding=1)),
    ('paper', dict(kernel_size=3, padding=1)),
    ('mixture', dict(kernel_size=3, stride=2, padding=2, dilation=2,
                     groups=2)),
    ('modulated', dict(kernel_size=1, groups=2, bias=False)),
])
def test_layer_round_trips_through_onnx_runtime(generator, conv, tmp_path):
    layer = randomize(DRConv(8, 12, region_num=4, generator=generator,
                             **conv)).eval()
    module = WithRegions(layer).eval()
    path = tmp_path / 'layer.onnx'
    session = export(module, (torch.randn(2, 8, 12, 10), ), path)
    graph = standard_ops_only(path)
    argmax = [n for n in graph.node if n.op_type == 'ArgMax']
    assert argmax and all(a.i == 0 for n in argmax for a in n.attribute
                          if a.name == 'select_last_index')
    # Other batch and spatial sizes than exported at.
    for shape in [(3, 8, 15, 7), (1, 8, 9, 13)]:
        x = torch.randn(shape)
        with torch.no_grad():
            y, regions = module(x)
        y_onnx, regions_onnx = session.run(None, {'x': x.numpy()})
        assert y_onnx.shape == tuple(y.shape)
        np.testing.assert_allclose(y_onnx, y.numpy(), rtol=0, atol=1e-4)
        np.testing.assert_array_equal(regions_onnx, regions.numpy())
        assert len(np.unique(regions_onnx)) > 1  # regions really differ


class RegionOps(nn.Module):
    """Both ops on given tensors, to feed exact guide ties."""

    def forward(self, x, filters, guide, out, scales):
        return region_conv(x, filters, guide, padding=1), \
            region_scale(out, scales, guide)


def test_exported_ops_take_lowest_region_on_ties(tmp_path):
    x, filters = torch.randn(2, 3, 6, 5), torch.randn(2, 4, 5, 3, 3, 3)
    out, scales = torch.randn(2, 5, 6, 5), torch.randn(2, 4, 5)
    # Values from a small set: many exact ties between 2-4 regions.
    guide = torch.randint(0, 2, (2, 4, 6, 5)).float()
    args = (x, filters, guide, out, scales)
    session = export(RegionOps(), args, tmp_path / 'ops.onnx',
                     dynamic=False)
    feeds = {i.name: a.numpy() for i, a in zip(session.get_inputs(), args)}
    for got, expected in zip(session.run(None, feeds), RegionOps()(*args)):
        np.testing.assert_allclose(got, expected.numpy(), rtol=0, atol=1e-5)
    # Region 0 ties with another region for the maximum somewhere.
    tied = guide[:, 0] == guide.max(1).values
    assert (guide.sum(1)[tied] > 1).any()


@pytest.mark.parametrize('conv', [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=3, stride=2, padding=2, dilation=2),
    dict(kernel_size=1),
    dict(kernel_size=3, padding=1, groups=2, bias=False),
])
@pytest.mark.parametrize('generator', ['mixture', 'paper', 'modulated'])
def test_export_forms_match_the_fast_path(generator, conv, monkeypatch):
    layer = randomize(DRConv(4, 6, region_num=3, generator=generator,
                             **conv).double())
    x = torch.randn(2, 4, 9, 8, dtype=torch.float64)
    with torch.no_grad():
        fast = layer(x)
        monkeypatch.setattr(export_forms.torch.compiler, 'is_exporting',
                            lambda: True)
        exported = layer(x)
    torch.testing.assert_close(exported, fast)


def test_export_is_detected():
    assert not export_forms.is_exporting()
    seen = []

    class Probe(nn.Module):

        def forward(self, x):
            seen.append(export_forms.is_exporting())
            return x + 1

    torch.export.export(Probe(), (torch.ones(2), ))
    assert seen and all(seen)


def test_verify_reports_a_wrong_graph(tmp_path):
    from mmdrconv.deploy import VerificationError, verify_onnx
    module = WithRegions(randomize(DRConv(4, 6, 3, padding=1,
                                          region_num=3))).eval()
    x = torch.randn(1, 4, 8, 8)
    path = tmp_path / 'layer.onnx'
    export(module, (x, ), path)
    report = verify_onnx(module, str(path), x)
    assert report['y']['max_abs_err'] <= 1e-4
    with torch.no_grad():
        module.layer.weight.mul_(1.01)  # PyTorch no longer equals the file
    with pytest.raises(VerificationError, match='y: max abs error'):
        verify_onnx(module, str(path), x)


# --- whole models through the tool --------------------------------------

SEG = ('configs/synthetic/'
       'deeplabv3_r50-w16-d8-drconv-c3-c5_synthetic-cityscapes.py')
DET = 'configs/synthetic/mask-rcnn_r50-w16-drconv-c3-c5_fpn_synthetic-coco.py'


def random_checkpoint(config, path):
    """A checkpoint of ``config``'s model whose DRConv layers have random
    guides and generators, so regions matter in the exported graph."""
    from mmdrconv.apis import build_model, load_config
    model = build_model(load_config(config))
    model.init_weights()
    drconvs = [m for m in model.modules() if isinstance(m, DRConv)]
    assert drconvs
    for layer in drconvs:
        randomize(layer.guide, 0.05)
        randomize(layer.filter_generator, 0.05)
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


def run_tool(*args):
    result = subprocess.run(
        [sys.executable, 'tools/deployment/export_onnx.py', *map(str, args)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize('config,root,outputs,shape', [
    (SEG, 'cityscapes', ['seg_logits'], (96, 160)),
    (DET, 'coco', [f'feat{i}' for i in range(5)], (96, 96)),
])
def test_tool_exports_and_verifies(config, root, outputs, shape,
                                   synthetic_data, tmp_path):
    checkpoint = random_checkpoint(config, tmp_path / 'model.pth')
    out = tmp_path / 'model.onnx'
    data_root = f'{synthetic_data}/{root}/'
    options = [f'test_dataloader.dataset.data_root={data_root}']
    # Traced at one size, verified on a real test image of another.
    code, log = run_tool(config, checkpoint, out, '--shape', *shape,
                         '--verify', '--cfg-options', *options)
    assert code == 0, log[-3000:]
    assert 'verification passed' in log
    for name in outputs:
        assert f'{name}: shape' in log
    standard_ops_only(out)
    # A tolerance nothing can meet fails with a non-zero exit and names why.
    code, log = run_tool(config, checkpoint, out, '--verify', '--atol', '-1',
                         '--cfg-options', *options)
    assert code != 0 and 'verification FAILED' in log, log[-3000:]


def test_tool_refuses_a_checkpoint_of_another_model(tmp_path):
    from mmdrconv.apis import build_model, load_config
    twin = build_model(load_config(SEG.replace('-drconv-c3-c5', '')))
    torch.save(dict(state_dict=twin.state_dict()), tmp_path / 'twin.pth')
    code, log = run_tool(SEG, tmp_path / 'twin.pth', tmp_path / 'x.onnx')
    assert code != 0 and 'does not match the model' in log, log[-2000:]
    assert not (tmp_path / 'x.onnx').exists()


# --- torch.compile --------------------------------------------------------

def small_drconv_net():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        DRConv(8, 8, 3, padding=1, region_num=4),  # modulated: region_scale
        nn.ReLU(inplace=True),
        DRConv(8, 8, 3, padding=1, region_num=4, generator='mixture'),
        nn.ReLU(), nn.Conv2d(8, 2, 1))
    for module in net:
        if isinstance(module, DRConv):
            randomize(module, 0.2)
    return net


def test_torch_compile_matches_eager():
    torch.manual_seed(0)
    eager = small_drconv_net()
    compiled_net = small_drconv_net()
    compiled_net.load_state_dict(eager.state_dict())
    compiled = torch.compile(compiled_net)
    params = [list(eager.parameters()), list(compiled_net.parameters())]
    optims = [torch.optim.SGD(p, lr=0.05) for p in params]
    for step in range(3):  # new regions every step: no recompile trouble
        x = torch.randn(2, 3, 12, 12)
        target = torch.randn(2, 2, 12, 12)
        outputs = []
        for model, optim in zip((eager, compiled), optims):
            optim.zero_grad()
            y = model(x)
            ((y - target)**2).mean().backward()
            outputs.append(y.detach())
        torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5,
                                   atol=1e-5)
        for p_eager, p_compiled in zip(*params):
            torch.testing.assert_close(p_compiled.grad, p_eager.grad,
                                       rtol=1e-4, atol=1e-5)
        for optim in optims:
            optim.step()
    for p_eager, p_compiled in zip(*params):
        torch.testing.assert_close(p_compiled, p_eager, rtol=1e-4,
                                   atol=1e-5)


def test_graph_breaks_are_the_documented_ones():
    # docs/deploy.md: dynamo breaks the graph only where DRConv hands over
    # to its eager autograd Function (torch.compiler.disable'd), nowhere
    # else in the model.
    torch._dynamo.reset()
    explain = torch._dynamo.explain(small_drconv_net())(
        torch.randn(2, 3, 12, 12))
    assert explain.graph_break_count > 0
    for reason in explain.break_reasons:
        assert 'disable' in reason.reason, reason.reason
        assert reason.user_stack[-1].filename.startswith(OPS_DIR), reason
