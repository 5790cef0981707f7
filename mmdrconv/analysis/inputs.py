"""Random inputs in the format a config's model expects, for measuring
complexity and speed without a dataset."""
from typing import Sequence, Tuple

import torch
from mmengine.config import Config

from ..apis import codebase_of, model_cfg, num_classes_of


def random_batch(cfg: Config,
                 batch_size: int = 1,
                 size: Tuple[int, int] = (96, 128),
                 num_objects: Sequence[int] = None) -> dict:
    """A random batch in the format the config's model expects.

    Detection: boxes (and masks when the model has a mask head);
    segmentation: a random label map.
    """
    height, width = size
    if codebase_of(cfg) == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        with_mask = 'mask_head' in str(model_cfg(cfg))
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
