"""Small helpers shared by tools/, the benchmark suite and the tests."""
import copy
import os.path as osp
from typing import Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.utils import get_installed_path


def resolve_config_path(path: str) -> str:
    """'mmdet::faster_rcnn/x.py' -> the upstream config file installed with
    mmdet (or mmseg); other paths are returned unchanged."""
    if '::' not in path:
        return path
    package, relative = path.split('::', 1)
    resolved = osp.join(get_installed_path(package), '.mim', 'configs',
                        relative)
    if not osp.isfile(resolved):
        raise FileNotFoundError(f'{path}: no such config in the installed '
                                f'{package} ({resolved})')
    return resolved


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config and apply overrides. Paths may be our configs or
    upstream ones (``mmdet::...``, ``mmseg::...``)."""
    cfg = Config.fromfile(resolve_config_path(path))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def task_of(cfg: Config) -> str:
    """'detection' or 'segmentation', from the config's default scope."""
    scope = cfg.get('default_scope', 'mmdet')
    if scope not in ('mmdet', 'mmseg'):
        raise ValueError(f"default_scope must be 'mmdet' or 'mmseg', got "
                         f'{scope!r}')
    return 'detection' if scope == 'mmdet' else 'segmentation'


def build_model(cfg: Config) -> torch.nn.Module:
    """Build ``cfg.model`` in the config's default scope (no weight init)."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    # Some builders (mmseg's EncoderDecoder) edit the dict they are given.
    return MODELS.build(copy.deepcopy(cfg.model))


def _model_cfg(cfg: Config) -> dict:
    model = cfg.model
    while model.get('type') == 'ConvertToDRConv':
        model = model['model']
    return model


def num_classes_of(cfg: Config, default: int = 80) -> int:
    model = _model_cfg(cfg)
    for head in ('decode_head', 'bbox_head'):
        if head in model:
            return model[head]['num_classes']
    roi_head = model.get('roi_head')
    if roi_head is not None:
        return roi_head['bbox_head']['num_classes']
    return default


def demo_batch(cfg: Config,
               batch_size: int = 1,
               size: Tuple[int, int] = (96, 128),
               num_objects: Sequence[int] = None) -> dict:
    """A random batch in the format the config's model expects.

    Detection: boxes (and masks when the model has a mask head);
    segmentation: a random label map.
    """
    height, width = size
    if task_of(cfg) == 'detection':
        from mmdet.testing import demo_mm_inputs
        with_mask = 'mask_head' in str(_model_cfg(cfg))
        return demo_mm_inputs(
            batch_size, image_shapes=(3, height, width),
            num_items=list(num_objects or [3] * batch_size),
            num_classes=min(10, num_classes_of(cfg)), with_mask=with_mask)
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    num_classes = num_classes_of(cfg, default=19)
    inputs, samples = [], []
    for _ in range(batch_size):
        inputs.append(torch.randint(0, 256, (3, height, width),
                                    dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(
            img_shape=size, ori_shape=size, pad_shape=size,
            scale_factor=(1.0, 1.0), flip=False))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, height, width)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)
