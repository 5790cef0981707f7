"""A Cityscapes-format street-scene dataset, generated from a seed: stuff
and thing classes with their own textures under uneven light. The label
images are made from the polygons by cityscapesscripts' json2labelImg, as
for real Cityscapes, so mmseg's CityscapesDataset and IoUMetric apply."""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

from .textures import noise_field, paint, style_of

CITYSCAPES_CITY = 'synthcity'


# label name -> (texture, base colour); textures differ per class.
_CITYSCAPES_STYLE = {
    'sky': ('gradient', (120, 170, 230)),
    'building': ('windows', (140, 110, 90)),
    'vegetation': ('grain', (60, 130, 50)),
    'sidewalk': ('checker', (170, 160, 150)),
    'road': ('smooth', (80, 80, 85)),
    'car': ('stripes', (30, 60, 160)),
    'person': ('dots', (200, 60, 60)),
    'pole': ('smooth', (150, 150, 60)),
}


def _blob(rng, cx, cy, rx, ry, points=14):
    angles = np.sort(rng.uniform(0, 2 * np.pi, points))
    radius = rng.uniform(0.7, 1.0, points)
    return [[float(cx + rx * r * np.cos(a)), float(cy + ry * r * np.sin(a))]
            for a, r in zip(angles, radius)]


def _rect(x0, y0, x1, y1):
    return [[float(x0), float(y0)], [float(x1), float(y0)],
            [float(x1), float(y1)], [float(x0), float(y1)]]


def _cityscapes_objects(rng, height, width) -> List[dict]:
    """Polygons in drawing order (later ones cover earlier, as in
    Cityscapes)."""
    horizon = rng.uniform(0.35, 0.55) * height
    objects = [dict(label='sky', polygon=_rect(0, 0, width, height))]
    x = 0.0
    while x < width:  # a skyline of buildings and trees
        w = rng.uniform(0.08, 0.25) * width
        top = rng.uniform(0.05, 0.8) * horizon
        if rng.random() < 0.7:
            objects.append(dict(label='building',
                                polygon=_rect(x, top, x + w, horizon + 2)))
        else:
            objects.append(dict(label='vegetation', polygon=_blob(
                rng, x + w / 2, (top + horizon) / 2, w / 2,
                (horizon - top) / 2 + 4)))
        x += w
    objects.append(dict(label='sidewalk',
                        polygon=_rect(0, horizon, width, height)))
    vanish = rng.uniform(0.3, 0.7) * width
    objects.append(dict(label='road', polygon=[
        [vanish - 0.05 * width, horizon], [vanish + 0.05 * width, horizon],
        [width * rng.uniform(0.85, 1.0), height],
        [width * rng.uniform(0.0, 0.15), height]]))
    for _ in range(rng.integers(0, 3)):
        px = rng.uniform(0.05, 0.95) * width
        objects.append(dict(label='pole', polygon=_rect(
            px, rng.uniform(0.1, 0.5) * horizon, px + 2, horizon +
            rng.uniform(0.05, 0.2) * height)))
    for _ in range(rng.integers(1, 4)):  # cars: scale grows downwards
        cy = rng.uniform(horizon + 0.1 * height, 0.95 * height)
        s = (cy - horizon) / (height - horizon)
        cw, ch = (0.12 + 0.25 * s) * width, (0.06 + 0.15 * s) * height
        cx = rng.uniform(0.1, 0.9) * width
        objects.append(dict(label='car', polygon=_rect(
            cx - cw / 2, cy - ch, cx + cw / 2, cy)))
    for _ in range(rng.integers(1, 4)):
        cy = rng.uniform(horizon + 0.05 * height, 0.98 * height)
        s = (cy - horizon) / (height - horizon)
        ph = (0.1 + 0.3 * s) * height
        px = rng.uniform(0.05, 0.95) * width
        objects.append(dict(label='person', polygon=_blob(
            rng, px, cy - ph / 2, ph / 6, ph / 2, points=10)))
    for obj in objects:
        obj['polygon'] = [[min(max(x, 0.0), width - 1.0),
                           min(max(y, 0.0), height - 1.0)]
                          for x, y in obj['polygon']]
    return objects


def _render_cityscapes(rng, label_ids: np.ndarray,
                       appearance_cue: float = 1.0) -> np.ndarray:
    from cityscapesscripts.helpers.labels import name2label
    height, width = label_ids.shape
    image = np.zeros((height, width, 3), np.float32)
    for name in _CITYSCAPES_STYLE:
        mask = label_ids == name2label[name].id
        texture, color = style_of(rng, name, _CITYSCAPES_STYLE,
                                  appearance_cue)
        if mask.any():
            color = np.clip(np.asarray(color) + rng.normal(0, 20, 3), 10, 245)
            paint(image, mask, rng, color, texture, 0.35)
    light = 0.75 + 0.5 * noise_field(rng, height, width, 32)[..., None]
    image = image * light + rng.normal(0, 5, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def generate_cityscapes(root: str,
                        num_train: int = 100,
                        num_val: int = 30,
                        image_size: Tuple[int, int] = (128, 256),
                        seed: int = 0,
                        appearance_cue: float = 1.0
                        ) -> Dict[str, List[str]]:
    """Write a Cityscapes-format dataset under ``root``.

    Layout: ``leftImg8bit/{split}/<city>/*_leftImg8bit.png`` and
    ``gtFine/{split}/<city>/*_gtFine_{polygons.json,labelIds.png,
    labelTrainIds.png}``; the label images are made from the polygons by
    cityscapesscripts' json2labelImg, as for real Cityscapes.
    ``appearance_cue``: how often a region wears its class's texture and
    colour (:func:`~.textures.style_of`; below 1 the layout must tell the
    class).
    """
    from cityscapesscripts.preparation.json2labelImg import json2labelImg
    height, width = image_size
    rng = np.random.default_rng(seed)
    written: Dict[str, List[str]] = {}
    for split, count in (('train', num_train), ('val', num_val)):
        image_dir = osp.join(root, 'leftImg8bit', split, CITYSCAPES_CITY)
        label_dir = osp.join(root, 'gtFine', split, CITYSCAPES_CITY)
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(label_dir, exist_ok=True)
        written[split] = []
        for index in range(count):
            stem = f'{CITYSCAPES_CITY}_{0 if split == "train" else 1:06d}_' \
                   f'{index:06d}'
            polygons = osp.join(label_dir, f'{stem}_gtFine_polygons.json')
            with open(polygons, 'w') as f:
                json.dump(dict(imgHeight=height, imgWidth=width,
                               objects=_cityscapes_objects(
                                   rng, height, width)), f)
            label_ids = osp.join(label_dir, f'{stem}_gtFine_labelIds.png')
            json2labelImg(polygons, label_ids, 'ids')
            json2labelImg(polygons,
                          osp.join(label_dir,
                                   f'{stem}_gtFine_labelTrainIds.png'),
                          'trainIds')
            ids = cv2.imread(label_ids, cv2.IMREAD_UNCHANGED)
            image = _render_cityscapes(rng, ids, appearance_cue)
            cv2.imwrite(osp.join(image_dir, f'{stem}_leftImg8bit.png'),
                        image[..., ::-1])
            written[split].append(stem)
    return written
