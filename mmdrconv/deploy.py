"""Export OpenMMLab models with DRConv to ONNX and check them in ONNX Runtime.

What is exported (tensor mode, as upstream OpenMMLab before mmdeploy):

- segmentors: the whole encoder-decoder, ``inputs -> seg_logits`` (the decode
  head's logits at its own resolution; resizing and argmax stay outside);
- detectors: backbone, neck and dense head, ``inputs -> raw per-level
  outputs``: a single-stage detector's head outputs (classification scores,
  box regressions, ...); a two-stage detector's neck features (the RoI
  heads' input) and RPN outputs. Post-processing (anchors, box decoding,
  NMS) and the RoI heads stay with the user.

A model whose DRConv layers the exported part does not run (e.g. in RoI
heads) is refused by the tool, naming them (:func:`drconv_coverage`).

``inputs`` is the normalised (B, 3, H, W) batch the model's
data_preprocessor makes; batch, height and width are dynamic in the graph.
DRConv layers switch to their export formulation automatically
(mmdrconv.core.ops.export_forms), so the graph holds only standard ONNX ops.

Used by tools/deployment/export_onnx.py; the latency comparison of the two
runtimes is mmdrconv.analysis.onnx_benchmark.
"""
import copy
import inspect
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import DATASETS, init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint_to_model

from .apis import codebase_of, model_for_measuring
from .core.layers import DRConv
from .datasets import check_dataset
from .openmmlab import verify_checkpoint

INPUT_NAME = 'inputs'
# Float32 tolerance of --verify: |ONNX Runtime - PyTorch| may not exceed
# ATOL + RTOL * max|PyTorch| for any output. Deep networks accumulate
# rounding differences of reordered float32 sums; 1e-4 relative to the
# output range is far below anything a wrong graph produces.
DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-4


class SegmentorLogits(nn.Module):
    """``inputs -> seg_logits`` of an mmseg EncoderDecoder (tensor mode)."""

    output_names = ('seg_logits', )

    def __init__(self, segmentor: nn.Module):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.segmentor(inputs, None, mode='tensor')


def _head_output_kinds(head: nn.Module) -> List[str]:
    """What a dense head's forward returns, one per-level list each: the
    arguments of its ``loss_by_feat`` before the ground truth (mmdet 3.x's
    contract: ``loss_by_feat(*self(x), batch_gt_instances, ...)``), e.g.
    ['cls_scores', 'bbox_preds'] or, for FCOS, also 'centernesses'."""
    names = list(inspect.signature(head.loss_by_feat).parameters)
    return names[:names.index('batch_gt_instances')]


class DetectorOutputs(nn.Module):
    """``inputs -> raw outputs`` of an mmdet detector, per feature level and
    without post-processing: a single-stage detector's dense head outputs
    (``cls_scores_0``, ..., ``bbox_preds_0``, ...); a two-stage detector's
    neck features (``feat0``, ...: the RoI heads' input) and RPN outputs
    (``rpn_cls_scores_0``, ...); another detector's features alone."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector
        levels = detector.neck.num_outs if getattr(detector, 'with_neck',
                                                   False) else None
        if levels is None:
            levels = len(detector.backbone.out_indices)
        rpn_head = getattr(detector, 'rpn_head', None)
        bbox_head = getattr(detector, 'bbox_head', None)
        self.head, prefix = (rpn_head, 'rpn_') if rpn_head is not None else \
            (bbox_head, '')
        if self.head is not None and not hasattr(self.head, 'loss_by_feat'):
            self.head = None  # not a dense head (DETR-like)
        names = []
        if self.head is None or rpn_head is not None:
            names += [f'feat{i}' for i in range(levels)]
        if self.head is not None:
            names += [f'{prefix}{kind}_{i}'
                      for kind in _head_output_kinds(self.head)
                      for i in range(levels)]
        self.output_names = tuple(names)

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        features = tuple(self.detector.extract_feat(inputs))
        outputs = []
        if self.head is None or getattr(self.detector, 'rpn_head',
                                        None) is not None:
            outputs += features
        if self.head is not None:
            for per_level in self.head(features):
                outputs += per_level
        return tuple(outputs)


def load_model(config: str,
               checkpoint: Optional[str],
               cfg_options: Optional[dict] = None
               ) -> Tuple[Config, nn.Module]:
    """Build ``config``'s model in eval mode. With ``checkpoint``, its weights
    are loaded through mmengine's CheckpointLoader and must fit the model
    exactly (mmdrconv.openmmlab.verify_checkpoint); without, the model keeps
    its initialisation (for latency measurements)."""
    # SyncBN (multi-GPU configs) runs as plain BN in a single-process graph.
    cfg, model = model_for_measuring(config, cfg_options,
                                     init_weights=not checkpoint)
    if checkpoint:
        _load_checkpoint_to_model(model, verify_checkpoint(model, checkpoint),
                                  strict=True)
    return cfg, model.eval()


def deployable(cfg: Config, model: nn.Module) -> nn.Module:
    """The part of ``model`` that is exported, as a one-input module."""
    if codebase_of(cfg) == 'mmseg':
        return SegmentorLogits(model).eval()
    return DetectorOutputs(model).eval()


# Parts of a model that inference never runs: their DRConv layers are not
# missing from an inference graph.
TRAINING_ONLY = ('auxiliary_head', )


def drconv_coverage(module: nn.Module, model: nn.Module,
                    shape: Sequence[int]) -> Tuple[List[str], List[str]]:
    """(DRConv layers of ``model`` that running ``module``, the part to
    export, at ``shape`` = (H, W) reaches; those it does not, training-only
    parts excepted), by name. The exported graph holds what the module runs,
    so a layer it does not reach (e.g. in a RoI head) is not in the graph."""
    layers = {id(m): n for n, m in model.named_modules()
              if isinstance(m, DRConv)}
    reached = set()
    handles = [m.register_forward_hook(
        lambda layer, args, out: reached.add(id(layer)))
        for m in model.modules() if id(m) in layers]
    try:
        with torch.no_grad():
            module(torch.randn(1, 3, *shape))
    finally:
        for handle in handles:
            handle.remove()
    run = [n for i, n in layers.items() if i in reached]
    missing = [n for i, n in layers.items() if i not in reached and
               not n.split('.')[0] in TRAINING_ONLY]
    return run, missing


def default_shape(cfg: Config) -> Tuple[int, int]:
    """(H, W) to trace at: the test pipeline's Resize scale (mmcv's scales
    are (w, h)), else 512 x 512. Any size runs in the exported graph."""
    for step in cfg.test_dataloader.dataset.get('pipeline', []):
        scale = step.get('scale') if step.get('type') == 'Resize' else None
        if scale:
            return int(scale[1]), int(scale[0])
    return 512, 512


def _feature_sizes(module: nn.Module, inputs: torch.Tensor
                   ) -> List[Tuple[int, ...]]:
    """Spatial size of every 4-D tensor a submodule returns, in call
    order."""
    sizes = []

    def record(_, __, output):
        for t in output if isinstance(output, (tuple, list)) else (output, ):
            if isinstance(t, torch.Tensor) and t.dim() == 4:
                sizes.append(tuple(t.shape[2:]))
    handles = [m.register_forward_hook(record) for m in module.modules()]
    try:
        with torch.no_grad():
            module(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return sizes


def check_trace_shape(module: nn.Module, shape: Sequence[int]) -> None:
    """ValueError (naming ``--shape``) unless ``module`` can be traced at
    ``shape`` = (H, W) into a graph of any size.

    torch.export fixes every size that is 1 at trace time to 1 (its 0/1
    specialisation): traced where a feature map that follows the input
    size is one pixel high or wide (e.g. 8 x 8 into an output-stride-8
    segmentor), the graph runs at that size only. Such maps are found by
    running the model at ``shape`` and, where some map is 1 pixel, at twice
    it (batch 1: the batch does not change spatial sizes).
    """
    height, width = shape
    try:
        at = _feature_sizes(module, torch.randn(1, 3, height, width))
        if not any(1 in size for size in at):
            return
        double = _feature_sizes(module, torch.randn(1, 3, 2 * height,
                                                    2 * width))
    except Exception as error:  # the model's own message, with the size
        raise ValueError(f'--shape {height} {width}: the model does not run '
                         f'at this size ({type(error).__name__}: '
                         f'{error})') from error
    minimum = [1, 1]
    for small, large in zip(at, double):
        for d in range(2):
            if small[d] == 1 and large[d] != 1:  # follows the input size
                # the input size per feature pixel, twice: maps of >= 2
                minimum[d] = max(minimum[d], 2 * shape[d])
    if minimum != [1, 1]:
        need = [max(m, s) for m, s in zip(minimum, shape)]
        raise ValueError(
            f'--shape {height} {width} is too small for the model: some of '
            'its feature maps would be 1 pixel high or wide, and the '
            'exporter fixes such sizes, so the graph would run at this '
            f'size only. Trace at least --shape {need[0]} {need[1]}.')


def export_onnx(module: nn.Module, out_file: str,
                shape: Sequence[int] = (128, 256),
                batch_size: int = 2) -> None:
    """Export ``module`` (one (B, 3, H, W) input) to ``out_file`` with the
    dynamo exporter; batch, height and width stay dynamic. (Traced at batch
    2: a traced size of 1 would let torch.export specialise the batch.)"""
    height, width = shape
    dummy = torch.randn(batch_size, 3, height, width)
    dynamic = torch.export.Dim.DYNAMIC
    with torch.no_grad():
        torch.onnx.export(
            module, (dummy, ),
            out_file,
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=list(module.output_names),
            dynamic_shapes=({0: dynamic, 2: dynamic, 3: dynamic}, ),
            external_data=False)


def sample_inputs(cfg: Config, model: nn.Module, index: int = 0
                  ) -> torch.Tensor:
    """Image ``index`` of the config's test dataset through its test pipeline
    and the model's data_preprocessor: the (1, 3, H, W) model input."""
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    check_dataset(dict(test_dataloader=dict(dataset=dataset_cfg)))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(dataset_cfg)
    if len(dataset) == 0:
        raise ValueError('the test dataset of the config is empty')
    item = dataset[index % len(dataset)]
    batch = model.data_preprocessor(
        dict(inputs=[item['inputs']], data_samples=[item['data_samples']]),
        False)
    return batch['inputs']


def onnx_session(path: str, threads: int = 0):
    """An ONNX Runtime CPU session (``threads`` = 0: its default)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options,
                                providers=['CPUExecutionProvider'])


def run_torch(module: nn.Module, inputs: torch.Tensor) -> List[np.ndarray]:
    with torch.no_grad():
        outputs = module(inputs)
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs, )
    return [o.float().numpy() for o in outputs]


def compare_outputs(names: Sequence[str], expected: Sequence[np.ndarray],
                    actual: Sequence[np.ndarray]) -> Dict[str, dict]:
    """Per output: max |actual - expected|, max |expected|, shapes."""
    if len(expected) != len(actual):
        raise ValueError(f'ONNX Runtime returned {len(actual)} outputs, '
                         f'PyTorch {len(expected)}')
    report = {}
    for name, ref, got in zip(names, expected, actual):
        if ref.shape != got.shape:
            report[name] = dict(max_abs_err=float('inf'),
                                max_abs=float(np.abs(ref).max()),
                                shape=ref.shape, onnx_shape=got.shape)
            continue
        report[name] = dict(max_abs_err=float(np.abs(got - ref).max()),
                            max_abs=float(np.abs(ref).max()),
                            shape=ref.shape, onnx_shape=got.shape)
    return report


class VerificationError(RuntimeError):
    """ONNX Runtime's output differs from PyTorch's beyond the tolerance."""


def _verified_session(onnx_file: str):
    """An ONNX Runtime session, or VerificationError saying the file does
    not load (not an ONNX graph, truncated, ...)."""
    try:
        return onnx_session(onnx_file)
    except Exception as error:  # onnxruntime's errors share no base class
        raise VerificationError(
            f'{onnx_file} does not load in ONNX Runtime: '
            f'{str(error).splitlines()[0]}') from error


def _check_session(module: nn.Module, session, inputs: torch.Tensor,
                   atol: float, rtol: float) -> Tuple[Dict[str, dict],
                                                      List[str]]:
    """Compare ``session`` with ``module`` on ``inputs``: (report, what
    failed)."""
    expected = run_torch(module, inputs)
    try:
        actual = session.run(
            None, {session.get_inputs()[0].name: inputs.numpy()})
    except Exception as error:  # onnxruntime's errors share no base class
        return {}, [f'ONNX Runtime fails: {str(error).splitlines()[0]}']
    report = compare_outputs(module.output_names, expected, actual)
    failed = []
    for name, r in report.items():
        r['tolerance'] = atol + rtol * r['max_abs']
        if r['shape'] != r['onnx_shape']:
            failed.append(f'{name}: ONNX Runtime shape {r["onnx_shape"]} '
                          f'vs PyTorch {r["shape"]}')
        elif not r['max_abs_err'] <= r['tolerance']:
            failed.append(f'{name}: max abs error {r["max_abs_err"]:.3g} > '
                          f'tolerance {r["tolerance"]:.3g}')
    return report, failed


def verify_onnx(module: nn.Module, onnx_file: str, inputs: torch.Tensor,
                atol: float = DEFAULT_ATOL,
                rtol: float = DEFAULT_RTOL) -> Dict[str, dict]:
    """Run ``onnx_file`` in ONNX Runtime and ``module`` in PyTorch on
    ``inputs``; raise VerificationError naming the outputs that differ by
    more than ``atol + rtol * max|PyTorch output|``. Returns the report."""
    report, failed = _check_session(module, _verified_session(onnx_file),
                                    inputs, atol, rtol)
    if failed:
        raise VerificationError(
            f'{osp.basename(onnx_file)} does not reproduce PyTorch on an '
            f'input of shape {tuple(inputs.shape)}: ' + '; '.join(failed))
    return report


def other_sizes(shape: Sequence[int]) -> List[Tuple[int, int, int]]:
    """(batch, H, W) inputs unlike the traced (2, H, W) = ``shape``: smaller,
    just larger and twice as large, all odd, at batch sizes 1 and 3."""
    height, width = shape
    return [(1, (3 * height // 4) | 1, (3 * width // 4) | 1),
            (3, (height + 1) | 1, (width + 1) | 1),
            (1, 2 * height + 1, 2 * width + 3)]


def verify_dynamic_sizes(module: nn.Module, onnx_file: str,
                         shape: Sequence[int],
                         atol: float = DEFAULT_ATOL,
                         rtol: float = DEFAULT_RTOL
                         ) -> List[Tuple[int, int, int]]:
    """Check that the graph traced at ``shape`` runs at ``other_sizes`` and
    matches PyTorch there (random inputs); raise VerificationError naming
    the sizes where it does not. Returns the sizes checked."""
    session = _verified_session(onnx_file)
    generator = torch.Generator().manual_seed(0)
    problems = []
    sizes = other_sizes(shape)
    for batch, height, width in sizes:
        inputs = torch.randn(batch, 3, height, width, generator=generator)
        _, failed = _check_session(module, session, inputs, atol, rtol)
        if failed:
            problems.append(f'{batch}x3x{height}x{width}: ' +
                            '; '.join(failed))
    if problems:
        raise VerificationError(
            f'{osp.basename(onnx_file)} (traced at {shape[0]}x{shape[1]}) is '
            'not a graph of any size: ' + ' | '.join(problems))
    return sizes
