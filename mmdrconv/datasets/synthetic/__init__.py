"""Small COCO- and Cityscapes-format datasets, generated from a seed.

Scenes are built so that one filter for the whole image is a poor fit: the
classes differ in texture as much as in shape, objects vary in scale and
occlude each other, and stuff classes have their own textures;
``appearance_cue`` below 1 gives objects and regions other classes'
textures too, so that shape and layout must tell the class. The files
follow the real formats exactly, so the standard readers and metrics apply:
mmdet's CocoDataset + CocoMetric (pycocotools), mmseg's CityscapesDataset +
IoUMetric. One module per dataset (``coco``, ``cityscapes``) over shared
``textures``; this module generates either once per request.
"""
import json
import os
import os.path as osp
import shutil

from ...outputs import check_output_dir
from ...runlock import hold_folder
from .cityscapes import CITYSCAPES_CITY, generate_cityscapes
from .coco import COCO_CLASSES, generate_coco

__all__ = ['generate', 'check_generate_options', 'generate_coco',
           'generate_cityscapes', 'COCO_CLASSES', 'CITYSCAPES_CITY',
           'MIN_IMAGE_SIDE']

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
    cue = options.get('appearance_cue', 1.0)
    if isinstance(cue, bool) or not isinstance(cue, (int, float)) or \
            not 0 <= cue <= 1:
        raise ValueError(f'appearance_cue must be a probability in [0, 1], '
                         f'got {cue!r}')
    object_size = options.get('object_size')
    if object_size is not None:
        if task != 'coco':
            raise ValueError(f'object_size is an option of the coco '
                             f'generator, not of {task!r}')
        if not isinstance(object_size, (list, tuple)) or \
                len(object_size) != 2 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    for v in object_size) or \
                not 0 < object_size[0] <= object_size[1] <= 1:
            raise ValueError(
                'object_size must be (low, high) fractions of the shorter '
                f'image side with 0 < low <= high <= 1, got {object_size!r}')
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
    FileExistsError names them. A folder another run is generating into is
    refused (:class:`~mmdrconv.runlock.FolderInUseError`).
    """
    check_generate_options(task, options)
    check_output_dir(root, 'data folder')
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
    with hold_folder(root, 'data folder'):
        _generate_locked(task, root, marker, request, options)


def _generate_locked(task: str, root: str, marker: str, request: str,
                     options: dict) -> None:
    if osp.isfile(marker):
        with open(marker) as f:
            if f.read() == request:  # generated meanwhile by another run
                return
    makers = dict(coco=generate_coco, cityscapes=generate_cityscapes)
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
