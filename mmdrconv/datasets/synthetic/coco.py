"""A COCO-format instance dataset of textured shapes, generated from a seed:
four classes that differ in texture as much as in shape, scale changes and
occlusion. Read by mmdet's CocoDataset and scored by CocoMetric
(pycocotools)."""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

from .textures import paint, style_of

COCO_CLASSES = ('disc', 'square', 'triangle', 'cross')


# Each class: shape + its own texture + a hue range that overlaps others.
_COCO_STYLE = {
    'disc': ('smooth', (200, 80, 60)),
    'square': ('checker', (60, 160, 200)),
    'triangle': ('stripes', (90, 190, 80)),
    'cross': ('dots', (200, 180, 60)),
}


def _shape_mask(kind, height, width, cx, cy, size, angle):
    mask = np.zeros((height, width), np.uint8)
    r = size / 2
    if kind == 'disc':
        cv2.ellipse(mask, (int(cx), int(cy)), (int(r), int(r * 0.8)),
                    np.degrees(angle), 0, 360, 1, -1)
        return mask.astype(bool)
    if kind == 'square':
        corners = [(-r, -r), (r, -r), (r, r), (-r, r)]
    elif kind == 'triangle':
        corners = [(0, -r), (r, r * 0.8), (-r, r * 0.8)]
    else:  # cross
        a, b = r, r / 3
        corners = [(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b),
                   (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b)]
    c, s = np.cos(angle), np.sin(angle)
    points = np.array([(cx + x * c - y * s, cy + x * s + y * c)
                       for x, y in corners], np.int32)
    cv2.fillPoly(mask, [points], 1)
    return mask.astype(bool)


def _mask_polygons(mask: np.ndarray) -> List[List[float]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        if len(contour) >= 3:
            polygons.append(contour.reshape(-1).astype(float).tolist())
    return polygons


# Object side as a fraction of the image's shorter side (scale changes).
DEFAULT_OBJECT_SIZE = (0.15, 0.5)


def _coco_scene(rng, height, width, max_objects, appearance_cue=1.0,
                object_size=DEFAULT_OBJECT_SIZE):
    image = np.empty((height, width, 3), np.float32)
    background = rng.uniform(70, 150, size=3)
    paint(image, np.ones((height, width), bool), rng, background,
          rng.choice(['grain', 'smooth', 'stripes']), 0.35)
    objects = []
    for _ in range(rng.integers(2, max_objects + 1)):
        label = int(rng.integers(len(COCO_CLASSES)))
        kind = COCO_CLASSES[label]
        size = rng.uniform(*object_size) * min(height, width)
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        mask = _shape_mask(kind, height, width, cx, cy, size,
                           rng.uniform(0, np.pi))
        if mask.sum() < 20:
            continue
        texture, color = style_of(rng, kind, _COCO_STYLE, appearance_cue)
        color = np.clip(np.asarray(color) + rng.normal(0, 35, 3), 20, 235)
        paint(image, mask, rng, color, texture, 0.45)
        for other in objects:  # later objects occlude earlier ones
            other['mask'] &= ~mask
        objects.append(dict(label=label, mask=mask, full=mask.sum()))
    image += rng.normal(0, 6, image.shape)
    kept = [o for o in objects
            if o['mask'].sum() >= max(20, 0.3 * o['full'])]
    return np.clip(image, 0, 255).astype(np.uint8), kept


def generate_coco(root: str,
                  num_train: int = 200,
                  num_val: int = 50,
                  image_size: Tuple[int, int] = (128, 128),
                  max_objects: int = 5,
                  seed: int = 0,
                  appearance_cue: float = 1.0,
                  object_size: Tuple[float, float] = DEFAULT_OBJECT_SIZE
                  ) -> Dict[str, str]:
    """Write a COCO-format instance dataset under ``root``.

    Layout: ``{train,val}/*.png`` and ``annotations/instances_{split}.json``
    with boxes, polygon masks, areas and categories. ``appearance_cue``:
    how often an object wears its class's texture and colour
    (:func:`~.textures.style_of`; below 1 the shape must tell the class).
    ``object_size``: the range of an object's side, as fractions of the
    image's shorter side, drawn uniformly.
    """
    from pycocotools import mask as mask_utils
    height, width = image_size
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    paths = {}
    categories = [dict(id=i + 1, name=n, supercategory='shape')
                  for i, n in enumerate(COCO_CLASSES)]
    for split, count in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, annotations = [], []
        for index in range(count):
            image, objects = _coco_scene(rng, height, width, max_objects,
                                         appearance_cue, object_size)
            file_name = f'{split}_{index:06d}.png'
            cv2.imwrite(osp.join(root, split, file_name), image[..., ::-1])
            image_id = index + 1
            images.append(dict(id=image_id, file_name=file_name,
                               height=height, width=width))
            for obj in objects:
                polygons = _mask_polygons(obj['mask'])
                if not polygons:
                    continue
                # Area and box of the polygons as pycocotools rasterises
                # them, so the annotation is self-consistent.
                rle = mask_utils.merge(
                    mask_utils.frPyObjects(polygons, height, width))
                area = float(mask_utils.area(rle))
                if area < 10:
                    continue
                box = [float(v) for v in mask_utils.toBbox(rle)]
                annotations.append(
                    dict(id=len(annotations) + 1, image_id=image_id,
                         category_id=obj['label'] + 1, bbox=box, area=area,
                         segmentation=polygons, iscrowd=0))
        path = osp.join(root, 'annotations', f'instances_{split}.json')
        with open(path, 'w') as f:
            json.dump(dict(images=images, annotations=annotations,
                           categories=categories), f)
        paths[split] = path
    return paths
