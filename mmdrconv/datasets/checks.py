"""Clear errors for missing dataset files, before a run starts."""
import glob
import os.path as osp
from typing import Iterator

COCO_LAYOUT = """expected COCO layout (mmdet's CocoDataset):
  {root}/
    annotations/instances_train2017.json, instances_val2017.json
    train2017/*.jpg  val2017/*.jpg
Download COCO 2017 from the official site and unpack it there, or point the
config at your copy: --cfg-options train_dataloader.dataset.data_root=PATH
(likewise val_/test_dataloader). For the generated demo data run:
  python tools/generate_data.py coco data/synthetic/coco"""

CITYSCAPES_LAYOUT = """expected Cityscapes layout (mmseg's CityscapesDataset):
  {root}/
    leftImg8bit/{{train,val}}/<city>/*_leftImg8bit.png
    gtFine/{{train,val}}/<city>/*_gtFine_labelTrainIds.png
The *_labelTrainIds.png maps are made from gtFine's *_polygons.json by
cityscapesscripts (installed with mmdrconv):
  CITYSCAPES_DATASET={root} csCreateTrainIdLabelImgs
For the generated demo data run:
  python tools/generate_data.py cityscapes data/synthetic/cityscapes"""


def _datasets(cfg) -> Iterator[dict]:
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        dataset = loader['dataset']
        while 'dataset' in dataset:  # RepeatDataset, ClassBalanced, ...
            dataset = dataset['dataset']
        for part in dataset.get('datasets', [dataset]):
            yield part


def _join(root, path):
    return path if not root or osp.isabs(path) else osp.join(root, path)


def check_dataset(cfg) -> None:
    """Raise FileNotFoundError naming the missing files and the expected
    layout if a COCO or Cityscapes dataset of ``cfg`` is not on disk."""
    for dataset in _datasets(cfg):
        kind = dataset.get('type', '')
        root = dataset.get('data_root', '') or ''
        prefix = dataset.get('data_prefix', {}) or {}
        if kind == 'CocoDataset':
            ann = _join(root, dataset.get('ann_file', ''))
            images = _join(root, prefix.get('img', ''))
            missing = [p for p in (ann, images) if not osp.exists(p)]
            if missing:
                raise FileNotFoundError(
                    f'COCO dataset files not found: {", ".join(missing)}\n' +
                    COCO_LAYOUT.format(root=root or 'data/coco'))
        elif kind == 'CityscapesDataset':
            images = _join(root, prefix.get('img_path', ''))
            labels = _join(root, prefix.get('seg_map_path', ''))
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
