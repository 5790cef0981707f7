"""Small COCO- and Cityscapes-format datasets, generated from a seed.

Scenes are built so that one filter for the whole image is a poor fit: the
classes differ in texture as much as in shape, objects vary in scale and
occlude each other, and stuff classes have their own textures. The files
follow the real formats exactly, so the standard readers and metrics apply:
mmdet's CocoDataset + CocoMetric (pycocotools), mmseg's CityscapesDataset +
IoUMetric, with labelTrainIds made by cityscapesscripts' json2labelImg, the
converter users run on real Cityscapes.
"""
import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Tuple

import cv2
import numpy as np

COCO_CLASSES = ('disc', 'square', 'triangle', 'cross')
CITYSCAPES_CITY = 'synthcity'


# ---------------------------------------------------------------- textures
def _noise_field(rng, height, width, scale):
    """Smooth random field in [0, 1] (upsampled white noise)."""
    small = rng.random((max(2, height // scale), max(2, width // scale)))
    field = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(field, 0, 1)


def _texture(rng, kind: str, height: int, width: int) -> np.ndarray:
    """A (H, W) pattern in [0, 1] that identifies a class."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    period = rng.uniform(4, 7)
    angle = rng.uniform(0, np.pi)
    if kind == 'stripes':
        t = xx * np.cos(angle) + yy * np.sin(angle)
        return 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * t / period))
    if kind == 'checker':
        return ((xx // period + yy // period) % 2).astype(np.float32)
    if kind == 'dots':
        return ((np.sin(2 * np.pi * xx / period) *
                 np.sin(2 * np.pi * yy / period)) > 0.5).astype(np.float32)
    if kind == 'smooth':
        return _noise_field(rng, height, width, 16)
    if kind == 'grain':
        return rng.random((height, width)).astype(np.float32)
    if kind == 'windows':
        return (((xx % 8) < 4) & ((yy % 10) < 5)).astype(np.float32)
    if kind == 'gradient':
        return (yy / max(1, height - 1)).astype(np.float32)
    raise ValueError(kind)


def _paint(image, mask, rng, base_color, kind, contrast):
    h, w = image.shape[:2]
    pattern = _texture(rng, kind, h, w)[..., None]
    color = np.asarray(base_color, np.float32)
    layer = color * (1 - contrast) + color * contrast * 2 * pattern
    image[mask] = layer[mask]


# ---------------------------------------------------------------- COCO
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


def _coco_scene(rng, height, width, max_objects):
    image = np.empty((height, width, 3), np.float32)
    background = rng.uniform(70, 150, size=3)
    _paint(image, np.ones((height, width), bool), rng, background,
           rng.choice(['grain', 'smooth', 'stripes']), 0.35)
    objects = []
    for _ in range(rng.integers(2, max_objects + 1)):
        label = int(rng.integers(len(COCO_CLASSES)))
        kind = COCO_CLASSES[label]
        size = rng.uniform(0.15, 0.5) * min(height, width)  # scale changes
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        mask = _shape_mask(kind, height, width, cx, cy, size,
                           rng.uniform(0, np.pi))
        if mask.sum() < 20:
            continue
        texture, color = _COCO_STYLE[kind]
        color = np.clip(np.asarray(color) + rng.normal(0, 35, 3), 20, 235)
        _paint(image, mask, rng, color, texture, 0.45)
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
                  seed: int = 0) -> Dict[str, str]:
    """Write a COCO-format instance dataset under ``root``.

    Layout: ``{train,val}/*.png`` and ``annotations/instances_{split}.json``
    with boxes, polygon masks, areas and categories.
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
            image, objects = _coco_scene(rng, height, width, max_objects)
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


# ---------------------------------------------------------- Cityscapes
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


def _render_cityscapes(rng, label_ids: np.ndarray) -> np.ndarray:
    from cityscapesscripts.helpers.labels import name2label
    height, width = label_ids.shape
    image = np.zeros((height, width, 3), np.float32)
    for name, (texture, color) in _CITYSCAPES_STYLE.items():
        mask = label_ids == name2label[name].id
        if mask.any():
            color = np.clip(np.asarray(color) + rng.normal(0, 20, 3), 10, 245)
            _paint(image, mask, rng, color, texture, 0.35)
    light = 0.75 + 0.5 * _noise_field(rng, height, width, 32)[..., None]
    image = image * light + rng.normal(0, 5, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def generate_cityscapes(root: str,
                        num_train: int = 100,
                        num_val: int = 30,
                        image_size: Tuple[int, int] = (128, 256),
                        seed: int = 0) -> Dict[str, List[str]]:
    """Write a Cityscapes-format dataset under ``root``.

    Layout: ``leftImg8bit/{split}/<city>/*_leftImg8bit.png`` and
    ``gtFine/{split}/<city>/*_gtFine_{polygons.json,labelIds.png,
    labelTrainIds.png}``; the label images are made from the polygons by
    cityscapesscripts' json2labelImg, as for real Cityscapes.
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
            image = _render_cityscapes(rng, ids)
            cv2.imwrite(osp.join(image_dir, f'{stem}_leftImg8bit.png'),
                        image[..., ::-1])
            written[split].append(stem)
    return written


# What each generator writes under its root: replaced as a whole when the
# data is regenerated, so no file of an earlier, larger request survives.
GENERATED_PATHS = dict(coco=('train', 'val', 'annotations'),
                       cityscapes=('leftImg8bit', 'gtFine'))
MIN_IMAGE_SIDE = 32  # smaller images leave no room for the objects


def check_generate_options(task: str, options: dict) -> None:
    """Raise ValueError naming a generation option that makes no sense."""
    if task not in GENERATED_PATHS:
        raise ValueError(f'unknown dataset {task!r}; use one of '
                         f'{sorted(GENERATED_PATHS)}')
    for name in ('num_train', 'num_val', 'max_objects'):
        value = options.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or \
                value < 1:
            unit = 'objects' if name == 'max_objects' else 'images'
            raise ValueError(f'{name} must be a positive number of {unit}, '
                             f'got {value!r}')
    seed = options.get('seed', 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f'seed must be an int >= 0, got {seed!r}')
    size = options.get('image_size')
    if size is not None:
        if len(size) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool)
                for v in size):
            raise ValueError(f'image_size must be (height, width), got '
                             f'{size!r}')
        if min(size) < MIN_IMAGE_SIDE:
            raise ValueError(f'image_size {tuple(size)}: height and width '
                             f'must be at least {MIN_IMAGE_SIDE} pixels')


def generate(task: str, root: str, **options) -> None:
    """Generate the dataset of ``task`` ('coco' or 'cityscapes') at ``root``
    once; a marker file records the options, so a changed request or an
    interrupted generation is redone.

    Regenerating replaces the earlier files (it is written aside first, then
    swapped in). Files under ``root`` that this function did not write are
    never deleted: if the paths it writes exist without its marker,
    FileExistsError names them.
    """
    check_generate_options(task, options)
    marker = osp.join(root, f'.generated-{task}.json')
    request = json.dumps(dict(sorted(options.items())), default=list)
    if osp.isfile(marker):
        with open(marker) as f:
            if f.read() == request:
                return
    else:
        foreign = [osp.join(root, p) for p in GENERATED_PATHS[task]
                   if osp.exists(osp.join(root, p))]
        if foreign:
            raise FileExistsError(
                f'{", ".join(foreign)} already exist and were not written by '
                f'the {task} generator (no {marker}); generating there '
                'would mix or delete other data. Choose another folder, or '
                'remove them first.')
    makers = dict(coco=generate_coco, cityscapes=generate_cityscapes)
    os.makedirs(root, exist_ok=True)
    staging = osp.join(root, f'.staging-{task}')
    shutil.rmtree(staging, ignore_errors=True)
    try:
        makers[task](staging, **options)
        with open(marker, 'w') as f:
            f.write('incomplete')  # ours, but not a finished request
        for path in GENERATED_PATHS[task]:
            shutil.rmtree(osp.join(root, path), ignore_errors=True)
            os.replace(osp.join(staging, path), osp.join(root, path))
        with open(marker, 'w') as f:
            f.write(request)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
