"""Mixed precision on the CPU (mmdrconv/openmmlab/amp.py): bfloat16 autocast
for segmentors, detectors refused up front."""
import pytest
import torch
import torch.nn as nn

from mmdrconv import DRConv
from mmdrconv.apis import load_config

from helpers import DET, SEG


def test_amp_on_the_cpu_is_bfloat16_autocast():
    from mmdrconv.openmmlab.amp import amp_optim_wrapper
    wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1),
                   clip_grad=dict(max_norm=10))
    assert amp_optim_wrapper(wrapper, cuda=False) == dict(
        type='CPUBFloat16OptimWrapper', optimizer=dict(type='SGD', lr=0.1),
        clip_grad=dict(max_norm=10))
    assert amp_optim_wrapper(wrapper, cuda=True)['type'] == 'AmpOptimWrapper'
    with pytest.raises(ValueError, match='autocast supports bfloat16 only, '
                       "but the config asks for dtype='float16'"):
        amp_optim_wrapper(dict(wrapper, type='AmpOptimWrapper',
                               dtype='float16'), cuda=False)


def test_amp_for_a_detector_on_the_cpu_is_refused_up_front():
    """mmcv's CPU nms has no bfloat16 kernel: without this check the first
    iteration dies with 'expected scalar type Float but found BFloat16'."""
    from mmdrconv.runner import prepare_train_cfg
    with pytest.raises(ValueError, match="cannot train detectors: mmcv's CPU "
                       r'ops \(nms'):
        prepare_train_cfg(load_config(DET), DET, 'unused', amp=True)


def test_amp_training_iteration_on_the_cpu(monkeypatch):
    """One training iteration of a DRConv model with --amp on the CPU: the
    forward runs in bfloat16, the float32 weights are updated."""
    from mmengine.model import BaseModel
    from mmengine.optim import build_optim_wrapper

    from mmdrconv import runner as runner_module
    from mmdrconv.runner import prepare_train_cfg
    logged = []
    monkeypatch.setattr(runner_module, 'print_log',
                        lambda message, **kwargs: logged.append(message))
    monkeypatch.setattr(runner_module, 'cpu_has_native_bfloat16',
                        lambda: False)

    class Net(BaseModel):
        def __init__(self):
            super().__init__()
            self.drconv = DRConv(3, 8, 3, padding=1, region_num=4)
            self.head = nn.Conv2d(8, 1, 1)

        def forward(self, inputs, data_samples=None, mode='loss'):
            return dict(loss=self.head(self.drconv(inputs)).float().pow(
                2).mean())

    cfg = prepare_train_cfg(load_config(SEG), SEG, 'unused', amp=True)
    assert cfg.optim_wrapper.type == 'CPUBFloat16OptimWrapper'
    assert 'loss_scale' not in cfg.optim_wrapper
    assert logged == [runner_module.SLOW_BFLOAT16]
    assert 'no native bfloat16 instructions' in logged[0]
    model = Net()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    dtypes = []
    model.drconv.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    before = model.drconv.weight.detach().clone()
    losses = model.train_step(dict(inputs=torch.randn(2, 3, 16, 16)),
                              optim_wrapper)
    assert dtypes == [torch.bfloat16]
    assert torch.isfinite(losses['loss'])
    assert model.drconv.weight.dtype == torch.float32
    assert not torch.equal(model.drconv.weight, before)
