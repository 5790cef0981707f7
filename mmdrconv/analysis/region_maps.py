"""Region maps of every DRConv layer, painted over the input image.

``capture_region_maps`` needs torch alone; numpy (``overlay``) and
OpenMMLab (``render_region_maps``) are imported where they are used, so
that ``mmdrconv.analysis`` imports on a machine with torch only.
"""
import os
import os.path as osp
from typing import Dict

import torch
import torch.nn.functional as F

from ..core.layers import DRConv
from ..core.complexity import run_with_hooks

# 16 distinct colours (RGB); regions beyond 16 reuse them.
PALETTE = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
    (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
    (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195))


def capture_region_maps(model: torch.nn.Module,
                        run) -> Dict[str, torch.Tensor]:
    """Region index maps (B, h, w) of every DRConv of ``model`` during
    ``run()``, keyed by module name."""
    maps: Dict[str, torch.Tensor] = {}

    def make_hook(name):
        def hook(module, inputs, output):
            maps[name] = module.region_map(inputs[0]).cpu()
        return hook

    run_with_hooks(model, (DRConv, ), make_hook, run)
    return maps


def check_alpha(alpha: float) -> None:
    if not 0 <= alpha <= 1:  # also refuses NaN
        raise ValueError(f'alpha must be in [0, 1] (0: the image only, 1: '
                         f'the region colours only), got {alpha}')


def overlay(image_rgb: 'np.ndarray', region: 'np.ndarray',
            alpha: float = 0.5) -> 'np.ndarray':
    """Blend region colours over an RGB image of the same size."""
    import numpy as np
    check_alpha(alpha)
    colours = np.asarray(PALETTE, np.uint8)[region % len(PALETTE)]
    return (image_rgb * (1 - alpha) + colours * alpha).astype(np.uint8)


def render_region_maps(config: str, checkpoint: str, image: str,
                       out_dir: str, alpha: float = 0.5) -> Dict[str, str]:
    """Run ``config``'s model from ``checkpoint`` on ``image`` and save one
    PNG overlay per DRConv layer in ``out_dir``. Returns name -> path."""
    check_alpha(alpha)
    if not osp.isfile(image):
        raise FileNotFoundError(f'image not found: {image}')
    from ..outputs import check_output_dir
    check_output_dir(out_dir, 'OUT_DIR')  # before the model runs
    import mmcv
    import numpy as np
    from mmcv.transforms import Compose
    from mmengine.runner.checkpoint import _load_checkpoint_to_model

    from ..apis import build_model, load_config
    from ..openmmlab import verify_checkpoint
    cfg = load_config(config)
    model = build_model(cfg)
    _load_checkpoint_to_model(model, verify_checkpoint(model, checkpoint),
                              strict=True)
    model.eval()
    if not any(isinstance(m, DRConv) for m in model.modules()):
        raise ValueError(f'{config}: the model has no DRConv layer')
    pipeline = [
        step for step in cfg.test_dataloader.dataset.pipeline
        if step['type'] != 'LoadAnnotations'
    ]
    pipeline[0] = dict(type='LoadImageFromFile')
    data = Compose(pipeline)(dict(img_path=image, img_id=0))
    batch = model.data_preprocessor(
        dict(inputs=[data['inputs']], data_samples=[data['data_samples']]),
        False)
    maps = capture_region_maps(
        model, lambda: model(batch['inputs'], batch['data_samples'],
                             mode='tensor'))
    picture = mmcv.imread(image, channel_order='rgb')
    height, width = batch['inputs'].shape[-2:]
    valid_h, valid_w = data['data_samples'].metainfo['img_shape'][:2]
    written = {}
    for name, region in maps.items():
        # Feature map -> network input size -> unpadded -> original image.
        region = F.interpolate(region[:1, None].float(), size=(height, width),
                               mode='nearest')[0, 0, :valid_h, :valid_w]
        region = mmcv.imresize(region.numpy().astype(np.uint8),
                               picture.shape[1::-1], interpolation='nearest')
        path = osp.join(out_dir, f'{name}.png')
        mmcv.imwrite(overlay(picture, region, alpha)[..., ::-1], path)
        written[name] = path
    return written
