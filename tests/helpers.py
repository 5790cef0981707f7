"""Helpers shared by the tests (not part of the package)."""
import multiprocessing
import os
import os.path as osp
import signal
import time

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The generated-data DRConv configs most tests train, build or check.
DET = osp.join(REPO, 'configs/synthetic/'
               'mask-rcnn_r50-w16-drconv-c3-c5_fpn_synthetic-coco.py')
SEG = osp.join(REPO, 'configs/synthetic/'
               'deeplabv3_r50-w16-d8-drconv-c3-c5_synthetic-cityscapes.py')


def randomize(module, std=0.3):
    """Every parameter of ``module`` drawn from N(0, std^2), in place: away
    from the initialisation, where the regions of the default generator are
    equal and some paths are trivially zero."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * std)
    return module



def random_checkpoint(config, path, seed=0):
    """A checkpoint of ``config``'s model whose DRConv layers have random
    guides and generators, so regions matter in an exported graph."""
    from mmdrconv.apis import build_model, load_config
    from mmdrconv.core.layers import DRConv
    torch.manual_seed(seed)
    model = build_model(load_config(config))
    model.init_weights()
    drconvs = [m for m in model.modules() if isinstance(m, DRConv)]
    assert drconvs
    for layer in drconvs:
        randomize(layer.guide, 0.05)
        randomize(layer.generator_module, 0.05)
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


def export_tool(*args):
    """tools/deployment/export_onnx.py, in this process (its imports are
    paid once); returns (exit code, printed text)."""
    import contextlib
    import io

    from mmdrconv.cli.export_onnx import main as export_tool_main
    printed = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(printed):
        try:
            export_tool_main([str(a) for a in args])
        except SystemExit as error:
            code = error.code
            printed.write(str(error.code))
    return code, printed.getvalue()

SYN = osp.join(REPO, 'configs/synthetic')
# The layers each control weakens (3x3 -> 1x1): ResNet-50's c3-c5 conv2
# (4, 6 and 3 blocks), MobileNetV2's depthwise convs of layers 3-7 (3, 4,
# 3, 3 and 1 blocks).
RESNET_WEAKENED = {f'backbone.layer{stage}.{block}.conv2'
                   for stage, blocks in ((2, 4), (3, 6), (4, 3))
                   for block in range(blocks)}
MOBILENET_WEAKENED = {f'backbone.layer{stage}.{block}.conv.1.conv'
                      for stage, blocks in ((3, 3), (4, 4), (5, 3), (6, 3),
                                            (7, 1))
                      for block in range(blocks)}


def fabricated_suite(work_dir):
    """A suite of one toy task with fabricated results (3 seeds; one failed
    cell) and profiles, for the report's statistics: (suite, cells,
    results, profiles)."""
    from mmdrconv.suite.spec import Suite, Task
    task = Task(name='toy', dataset='toy', metrics=['acc'],
                variants=dict(standard='a.py', drconv='b.py',
                              drconv_mixture='c.py', worse='d.py',
                              dcnv2='e.py'), image_size=(64, 96))
    suite = Suite(name='fabricated', seeds=[0, 1, 2], tasks=[task],
                  datasets={}, work_dir=str(work_dir), profile={},
                  distributed=None, source='fabricated.py')
    values = dict(standard=[0.50, 0.52, 0.54], drconv=[0.60, 0.63, 0.62],
                  drconv_mixture=[0.49, 0.55, 0.52],
                  worse=[0.40, 0.41, 0.45], dcnv2=[0.53, 0.57, None])
    cells = suite.cells()
    results = []
    for cell in cells:
        value = values[cell.variant][cell.seed]
        # Validation curves at 10, 20, 30, 40: the twin gains 0.04 (seed 0),
        # 0.02, 0.06 from iteration 30 on; the others end flat.
        rise = {0: 0.04, 1: 0.02, 2: 0.06}[cell.seed] \
            if cell.variant == 'standard' else 0.0
        curve = [dict(iter=i, metrics=dict(acc=value - rise * (i < 40)))
                 for i in (10, 20, 30, 40)] if value is not None else []
        results.append(
            dict(status='failed', error='RuntimeError: boom') if value is None
            else dict(status='ok', metrics=dict(acc=value), curve=curve,
                      train_time_per_iter=0.1 * (cell.seed + 1)))
    profiles = {('toy', v): dict(params=2e6, macs=4e9, batch_size=2,
                                 latency_ms=5.0)
                for v in task.variants}
    return suite, cells, results, profiles


def smoke_suite(folder, synthetic_data) -> str:
    """The smoke preset on the session's generated data, with absolute
    config paths: nothing is written into the repository."""
    path = folder / 'smoke.py'
    path.write_text(
        f"_base_ = '{REPO}/configs/suites/smoke.py'\n"
        "suite = dict(\n"
        "    datasets=dict(\n"
        f"        coco=dict(_delete_=True, root='{synthetic_data}/coco'),\n"
        "        cityscapes=dict(_delete_=True,\n"
        f"                        root='{synthetic_data}/cityscapes')),\n"
        "    tasks=[dict(task, variants={k: '" + REPO + "/' + v for k, v in"
        " task['variants'].items()})\n"
        "           for task in _base_.suite.tasks])\n")
    return str(path)


def _hold(folder, held, shared=False):
    from mmdrconv.runlock import hold_folder
    with hold_folder(folder, 'work dir', shared=shared):
        held.set()
        time.sleep(60)


class Holder:
    """Another process holding ``folder`` (forked: no imports to wait for);
    started once it holds it."""

    def __init__(self, folder, shared=False):
        context = multiprocessing.get_context('fork')
        held = context.Event()
        self.process = context.Process(target=_hold,
                                       args=(str(folder), held, shared))
        self.process.start()
        assert held.wait(30)
        self.pid = self.process.pid

    def kill(self):
        os.kill(self.pid, signal.SIGKILL)  # no clean-up runs

    def wait(self):
        self.process.join()


def start_holder(folder, shared=False):
    return Holder(folder, shared)
