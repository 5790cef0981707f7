"""The generated datasets against the standard readers and converters."""
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmdrconv.datasets import check_dataset, generate


@pytest.fixture
def data_root(synthetic_data):
    return synthetic_data


def test_generation_is_deterministic(tmp_path, data_root):
    generate('coco', str(tmp_path / 'again'), num_train=8, num_val=4, seed=2)
    for name in ('instances_train.json', 'instances_val.json'):
        with open(data_root / 'coco' / 'annotations' / name) as a, \
                open(tmp_path / 'again' / 'annotations' / name) as b:
            assert json.load(a) == json.load(b)


def test_coco_annotations_match_pycocotools(data_root):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    coco = COCO(str(data_root / 'coco/annotations/instances_train.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == [
        'disc', 'square', 'triangle', 'cross']
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 8
    for ann in anns:
        image = coco.loadImgs(ann['image_id'])[0]
        mask = coco.annToMask(ann)
        assert mask.shape == (image['height'], image['width'])
        assert mask.sum() == pytest.approx(ann['area'], abs=1)
        rle = mask_utils.encode(np.asfortranarray(mask))
        np.testing.assert_allclose(mask_utils.toBbox(rle), ann['bbox'],
                                   atol=1)
        assert osp.isfile(data_root / 'coco' / 'train' / image['file_name'])


def test_coco_loads_through_mmdet(data_root):
    from mmdet.datasets import CocoDataset
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = _coco_val(CocoDataset, data_root)
    assert len(dataset) == 4
    sample = dataset[0]
    assert sample['img'].shape == (128, 128, 3)
    assert len(sample['gt_bboxes']) == len(sample['gt_masks']) > 0


def _coco_val(CocoDataset, data_root):
    return CocoDataset(
        data_root=str(data_root / 'coco'),
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        metainfo=dict(classes=('disc', 'square', 'triangle', 'cross')),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True,
                       with_mask=True)],
        test_mode=True)


def test_cityscapes_labels_follow_cityscapesscripts(data_root):
    import cv2
    from cityscapesscripts.helpers.labels import id2label
    ids = sorted(glob.glob(str(
        data_root / 'cityscapes/gtFine/train/*/*_labelIds.png')))
    assert len(ids) == 4
    for path in ids:
        label_ids = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        train_ids = cv2.imread(
            path.replace('_labelIds.png', '_labelTrainIds.png'),
            cv2.IMREAD_UNCHANGED)
        expected = np.vectorize(lambda i: id2label[i].trainId)(label_ids)
        expected[expected < 0] = 255
        np.testing.assert_array_equal(train_ids, expected)
        assert len(np.unique(train_ids)) >= 4  # several stuff/thing classes


def test_cityscapes_loads_through_mmseg(data_root):
    from mmseg.datasets import CityscapesDataset
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = CityscapesDataset(
            data_root=str(data_root / 'cityscapes'),
            data_prefix=dict(img_path='leftImg8bit/val',
                             seg_map_path='gtFine/val'),
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='LoadAnnotations')])
    assert len(dataset) == 2
    sample = dataset[0]
    assert sample['img'].shape == (128, 256, 3)
    assert sample['gt_seg_map'].shape == (128, 256)
    assert set(np.unique(sample['gt_seg_map'])) <= set(range(19)) | {255}


def _cfg(dataset):
    return Config(dict(train_dataloader=dict(dataset=dataset)))


def test_missing_coco_files_name_the_layout(tmp_path):
    cfg = _cfg(dict(type='CocoDataset', data_root=str(tmp_path),
                    ann_file='annotations/instances_train2017.json',
                    data_prefix=dict(img='train2017/')))
    with pytest.raises(FileNotFoundError,
                       match='instances_train2017.json') as error:
        check_dataset(cfg)
    assert 'expected COCO layout' in str(error.value)


def test_missing_cityscapes_label_maps_name_the_converter(tmp_path,
                                                          data_root):
    import shutil
    root = tmp_path / 'cs'
    shutil.copytree(data_root / 'cityscapes', root)
    for path in glob.glob(str(root / 'gtFine/**/*_labelTrainIds.png'),
                          recursive=True):
        os.remove(path)
    cfg = _cfg(dict(type='CityscapesDataset', data_root=str(root),
                    data_prefix=dict(img_path='leftImg8bit/train',
                                     seg_map_path='gtFine/train')))
    with pytest.raises(FileNotFoundError,
                       match='csCreateTrainIdLabelImgs'):
        check_dataset(cfg)
