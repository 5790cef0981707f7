"""Clear errors for missing dataset files, before a run starts."""
import glob
import os.path as osp
from typing import Iterator

from .data_root import (EVALUATED_BY, LOADERS, evaluator_ann_files,
                        innermost_datasets, join_root)

COCO_LAYOUT = """expected COCO layout (mmdet's CocoDataset):
  {root}/
    annotations/instances_train2017.json, instances_val2017.json
    train2017/*.jpg  val2017/*.jpg
Download COCO 2017 from the official site and unpack it there, or point
tools/train.py and tools/test.py at your copy with --data-root PATH (it moves
the train/val/test data and the evaluator's annotation file together; other
tools: --cfg-options test_dataloader.dataset.data_root=PATH/).
For the generated demo data run:
  python tools/generate_data.py coco data/synthetic/coco"""

CITYSCAPES_LAYOUT = """expected Cityscapes layout (mmseg's CityscapesDataset):
  {root}/
    leftImg8bit/{{train,val}}/<city>/*_leftImg8bit.png
    gtFine/{{train,val}}/<city>/*_gtFine_labelTrainIds.png
The *_labelTrainIds.png maps are made from gtFine's *_polygons.json by
cityscapesscripts (installed with mmdrconv):
  CITYSCAPES_DATASET={root} csCreateTrainIdLabelImgs
Or point tools/train.py and tools/test.py at your copy with --data-root PATH
(other tools: --cfg-options test_dataloader.dataset.data_root=PATH/).
For the generated demo data run:
  python tools/generate_data.py cityscapes data/synthetic/cityscapes"""


def _datasets(cfg) -> Iterator[dict]:
    for key in LOADERS:
        loader = cfg.get(key)
        if loader:
            yield from innermost_datasets(loader)


def check_dataset(cfg) -> None:
    """Raise FileNotFoundError naming the missing files and the expected
    layout if a COCO or Cityscapes dataset of ``cfg`` is not on disk."""
    for dataset in _datasets(cfg):
        kind = dataset.get('type', '')
        root = dataset.get('data_root', '') or ''
        prefix = dataset.get('data_prefix', {}) or {}
        if kind == 'CocoDataset':
            ann = join_root(root, dataset.get('ann_file', ''))
            images = join_root(root, prefix.get('img', ''))
            missing = [p for p in (ann, images) if not osp.exists(p)]
            if missing:
                raise FileNotFoundError(
                    f'COCO dataset files not found: {", ".join(missing)}\n' +
                    COCO_LAYOUT.format(root=root or 'data/coco'))
        elif kind == 'CityscapesDataset':
            images = join_root(root, prefix.get('img_path', ''))
            labels = join_root(root, prefix.get('seg_map_path', ''))
            suffix = dataset.get('seg_map_suffix',
                                 '_gtFine_labelTrainIds.png')
            problem = None
            if not osp.isdir(images):
                problem = f'image folder not found: {images}'
            elif not osp.isdir(labels):
                problem = f'label folder not found: {labels}'
            elif not glob.glob(osp.join(labels, '**', '*' + suffix),
                               recursive=True):
                problem = (f'no *{suffix} label maps under {labels} (were '
                           'they converted from *_polygons.json?)')
            if problem:
                raise FileNotFoundError(
                    f'Cityscapes dataset incomplete: {problem}\n' +
                    CITYSCAPES_LAYOUT.format(root=root or 'data/cityscapes'))
    for evaluator_key, _ in EVALUATED_BY:
        for ann_file in evaluator_ann_files(cfg.get(evaluator_key)):
            if '://' not in ann_file and not osp.isfile(ann_file):
                raise FileNotFoundError(
                    f'{evaluator_key}.ann_file not found: {ann_file}\n'
                    'It should be the annotation file of the data being '
                    'evaluated; --data-root PATH moves both together, or '
                    f'set it: --cfg-options {evaluator_key}.ann_file=PATH')
