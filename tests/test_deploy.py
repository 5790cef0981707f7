"""Deployment: ONNX export + ONNX Runtime, and torch.compile.

Layers of every generator round-trip through ONNX Runtime at other batch and
spatial sizes than they were exported at; the DeepLabV3 segmentor and the
Mask R-CNN backbone + neck export and verify through the tool; a compiled
DRConv model matches eager in outputs, gradients and training steps.
"""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn

from mmdrconv.core.layers import DRConv
from mmdrconv.core.ops import export_forms, region_conv, region_scale

from helpers import DET, SEG, export_tool, random_checkpoint, randomize

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
OPS_DIR = osp.join(REPO, 'mmdrconv', 'core', 'ops')


class WithRegions(nn.Module):
    """A DRConv layer that also returns its region map."""

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


# One export per generator; between them, stride, dilation, groups and no
# bias. (Every generator x conv combination of the export form is checked
# against the fast path in eager mode below, without the slow export.)
@pytest.mark.parametrize('generator,conv', [
    ('modulated', dict(kernel_size=3, padding=1)),
    ('mixture', dict(kernel_size=3, stride=2, padding=2, dilation=2,
                     groups=2)),
    ('paper', dict(kernel_size=1, groups=2, bias=False)),
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
            top2 = layer.guide(x).topk(2, dim=1).values
        y_onnx, regions_onnx = session.run(None, {'x': x.numpy()})
        assert y_onnx.shape == tuple(y.shape)
        # Rounding may flip the region only where the guide nearly ties.
        clear = (top2[:, 0] - top2[:, 1] > 1e-4).numpy()
        assert clear.mean() > 0.95
        np.testing.assert_array_equal(regions_onnx[clear],
                                      regions.numpy()[clear])
        np.testing.assert_allclose(y_onnx.transpose(0, 2, 3, 1)[clear],
                                   y.permute(0, 2, 3, 1).numpy()[clear],
                                   rtol=0, atol=1e-4)
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


# --- whole models through the tool --------------------------------------

@pytest.mark.parametrize('config,root,outputs,shape,image_shape,mismatch', [
    (SEG, 'cityscapes', ['seg_logits'], (96, 160), (1, 3, 64, 128), True),
    # Two-stage: the RoI heads' input (the neck's features) and the RPN.
    (DET, 'coco', [f'feat{i}' for i in range(5)] +
     [f'rpn_{kind}_{i}' for kind in ('cls_scores', 'bbox_preds')
      for i in range(5)], (96, 96), (1, 3, 128, 128),
     False),  # the failure path once is enough (it costs a model load)
])
def test_tool_exports_and_verifies(config, root, outputs, shape, image_shape,
                                   mismatch, synthetic_data, tmp_path):
    checkpoint = random_checkpoint(config, tmp_path / 'model.pth')
    out = tmp_path / 'model.onnx'
    data = ['--cfg-options',
            f'test_dataloader.dataset.data_root={synthetic_data}/{root}/']
    # Traced at one size, verified on a real test image of another.
    code, log = export_tool(config, checkpoint, out, '--shape', *shape,
                            '--verify', *data)
    assert code == 0 and 'verification passed' in log, log
    for name in outputs:
        assert f'{name}: shape' in log
    assert f'on a {image_shape} test image' in log
    assert 'dynamic size check passed' in log, log
    standard_ops_only(out)
    if not mismatch:
        return
    # The tool's size check, independently: three other sizes and batches.
    from mmdrconv.deploy import deployable, load_model
    cfg, model = load_model(config, checkpoint, {
        'test_dataloader.dataset.data_root': f'{synthetic_data}/{root}/'})
    module = deployable(cfg, model)
    session = ort.InferenceSession(str(out),
                                   providers=['CPUExecutionProvider'])
    for size in [(1, 3, 57, 75), (3, 3, 97, 161), (1, 3, 192, 320)]:
        x = torch.randn(size)
        with torch.no_grad():
            expected = module(x)
        got, = session.run(None, {'inputs': x.numpy()})
        tolerance = 1e-4 + 1e-4 * expected.abs().max().item()
        np.testing.assert_allclose(got, expected.numpy(), rtol=0,
                                   atol=tolerance)
    # The graph of other weights (same model): a non-zero exit naming why.
    other = random_checkpoint(config, tmp_path / 'other.pth', seed=1)
    code, log = export_tool(config, other, out, '--verify-only', *data)
    assert code and 'verification FAILED' in log and 'max abs error' in log


def test_tool_refuses_a_checkpoint_of_another_model(tmp_path):
    from mmdrconv.apis import build_model, load_config
    from mmdrconv.openmmlab import CheckpointError
    twin = build_model(load_config(SEG.replace('-drconv-c3-c5', '')))
    torch.save(dict(state_dict=twin.state_dict()), tmp_path / 'twin.pth')
    with pytest.raises(CheckpointError, match='does not match the model'):
        export_tool(SEG, tmp_path / 'twin.pth', tmp_path / 'x.onnx')
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
    # to its eager autograd Function (disabled for dynamo, by torch's lazy
    # form of torch.compiler.disable, which dynamo reports as skipped),
    # nowhere else in the model.
    torch._dynamo.reset()
    explain = torch._dynamo.explain(small_drconv_net())(
        torch.randn(2, 3, 12, 12))
    assert explain.graph_break_count > 0
    for reason in explain.break_reasons:
        assert 'disable' in reason.reason or \
            'marked as skipped' in reason.reason, reason.reason
        assert reason.user_stack[-1].filename.startswith(OPS_DIR), reason


# --- detectors' dense heads -----------------------------------------------

def config_with(tmp_path, base, model):
    """A config inheriting the synthetic ``base`` with ``model`` merged."""
    path = tmp_path / 'config.py'
    path.write_text(f"_base_ = '{REPO}/configs/synthetic/{base}'\n"
                    f'model = {model!r}\n')
    return str(path)


def test_tool_exports_a_single_stage_detectors_dense_head(synthetic_data,
                                                          tmp_path):
    # The case: DRConv in RetinaNet's head only. The graph used to
    # hold backbone + neck alone (no DRConv) and the tool said it passed.
    config = config_with(tmp_path, 'retinanet_r50-w16_fpn_synthetic-coco.py',
                         dict(bbox_head=dict(conv_cfg=dict(type='DRConv',
                                                           region_num=4))))
    checkpoint = random_checkpoint(config, tmp_path / 'model.pth')
    out = tmp_path / 'retinanet.onnx'
    code, log = export_tool(
        config, checkpoint, out, '--shape', 256, 256, '--verify',
        '--cfg-options',
        f'test_dataloader.dataset.data_root={synthetic_data}/coco/')
    assert code == 0, log
    # Raw per-level outputs of the head (stacked_convs=2 in both branches:
    # 4 DRConv layers), checked in ONNX Runtime at other sizes and on an
    # image of the test set.
    names = [f'{kind}_{i}' for kind in ('cls_scores', 'bbox_preds')
             for i in range(5)]
    assert f'outputs: {", ".join(names)}; DRConv layers in the graph: 4)' \
        in log
    assert 'dynamic size check passed' in log
    assert 'verification passed' in log
    for name in names:
        assert f'{name}: shape (1, 36, ' in log  # 9 anchors x (4 classes|4)
    graph = standard_ops_only(out)
    assert [o.name for o in graph.output] == names


def test_tool_refuses_a_model_whose_drconv_the_graph_leaves_out(tmp_path):
    # DRConv in Mask R-CNN's mask head: the RoI heads need the boxes of the
    # post-processing, so the graph cannot hold them. Refused before the
    # export, naming them.
    config = config_with(tmp_path, 'mask-rcnn_r50-w16_fpn_synthetic-coco.py',
                         dict(roi_head=dict(mask_head=dict(conv_cfg=dict(
                             type='DRConv', region_num=4)))))
    checkpoint = random_checkpoint(config, tmp_path / 'model.pth')
    out = tmp_path / 'x.onnx'
    code, log = export_tool(config, checkpoint, out, '--shape', 128, 128)
    assert code and log.startswith(
        "refusing to export: 4 of the model's 4 DRConv layers are in parts of "
        'the model that the graph does not run')
    assert log.endswith(
        ', '.join(f'roi_head.mask_head.convs.{i}.conv' for i in range(4)) +
        '. Pass --allow-missing-drconv to export the rest anyway.')
    assert not out.exists()


def test_tool_verify_checks_its_data_before_exporting(tmp_path):
    checkpoint = random_checkpoint(SEG, tmp_path / 'model.pth')
    out = tmp_path / 'x.onnx'
    code, log = export_tool(SEG, checkpoint, out, '--shape', 64, 64,
                            '--verify', '--cfg-options',
                            'test_dataloader.dataset.data_root='
                            f'{tmp_path}/nowhere/')
    assert code and log.startswith('--verify: ') and 'not found' in log
    assert f'{tmp_path}/nowhere' in log
    assert not out.exists()  # failed before writing the graph
