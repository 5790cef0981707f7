"""The data root (--data-root, mmdrconv/datasets/data_root.py) and the COCO
evaluator's annotation file (evaluation_check.py): moved together, or the
run stops naming what does not fit."""
import json
import os.path as osp
import shutil

import pytest
import torch

from mmdrconv.apis import load_config

from helpers import DET, SEG


def _coco_cfg(cfg_options=None):
    return load_config(DET, cfg_options)


def test_data_root_moves_dataloaders_and_evaluators(synthetic_data):
    from mmdrconv.runner import prepare_test_cfg
    root = str(synthetic_data / 'coco')
    cfg = prepare_test_cfg(load_config(DET), DET, DET, work_dir='unused',
                           data_root=root)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.data_root == root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        assert cfg[evaluator].ann_file == osp.join(
            root, 'annotations/instances_val.json')


def test_data_root_option_on_both_tools():
    from mmdrconv.cli import test, train
    assert train.parse_args(['c.py', '--data-root', 'D']).data_root == 'D'
    assert test.parse_args(['c.py', 'k.pth', '--data-root', 'D']).data_root \
        == 'D'


def test_data_root_refuses_what_it_cannot_move(tmp_path):
    from mmdrconv.datasets.data_root import set_data_root
    with pytest.raises(FileNotFoundError,
                       match=f'--data-root {tmp_path}/nope: no such folder'):
        set_data_root(load_config(DET), str(tmp_path / 'nope'))
    cfg = _coco_cfg({'val_evaluator.ann_file': '/elsewhere/val.json'})
    with pytest.raises(ValueError, match=r"--data-root: val_evaluator\."
                       r"ann_file '/elsewhere/val.json' is neither "
                       r"val_dataloader's annotation file nor under the "
                       r"config's data root 'data/synthetic/coco/'"):
        set_data_root(cfg, str(tmp_path))


def test_evaluator_follows_a_dataloader_moved_by_cfg_options(
        synthetic_data):
    from mmdrconv.datasets.data_root import align_evaluator_ann_files
    root = f'{synthetic_data}/coco/'
    cfg = _coco_cfg({f'{s}_dataloader.dataset.data_root': root
                     for s in ('train', 'val', 'test')})
    assert cfg.val_evaluator.ann_file == \
        'data/synthetic/coco/annotations/instances_val.json'
    notes = align_evaluator_ann_files(cfg)
    expected = f'{root}annotations/instances_val.json'
    assert cfg.val_evaluator.ann_file == cfg.test_evaluator.ann_file == \
        expected
    assert notes == [
        f"{s}_evaluator.ann_file follows {s}_dataloader's data_root: "
        f'data/synthetic/coco/annotations/instances_val.json -> {expected}'
        for s in ('val', 'test')]
    assert align_evaluator_ann_files(cfg) == []  # now consistent


def test_missing_evaluator_annotation_file_is_named(synthetic_data):
    from mmdrconv.datasets import check_dataset
    root = f'{synthetic_data}/coco/'
    options = {f'{s}_dataloader.dataset.data_root': root
               for s in ('train', 'val', 'test')}
    options['val_evaluator.ann_file'] = '/missing/instances_val2017.json'
    with pytest.raises(FileNotFoundError) as error:
        check_dataset(_coco_cfg(options))
    assert str(error.value).startswith(
        'val_evaluator.ann_file not found: /missing/instances_val2017.json')
    assert '--data-root' in str(error.value)


def test_missing_data_message_recommends_data_root(tmp_path):
    from mmdrconv.datasets import check_dataset
    cfg = _coco_cfg({'train_dataloader.dataset.data_root': str(tmp_path)})
    with pytest.raises(FileNotFoundError) as error:
        check_dataset(cfg)
    assert 'tools/train.py and tools/test.py at your copy with --data-root ' \
           'PATH' in str(error.value)
    assert '--cfg-options train_dataloader' not in str(error.value)


def test_segmentation_config_on_coco_data_names_the_missing_folder(
        synthetic_data):
    from mmdrconv.datasets import check_dataset
    from mmdrconv.runner import prepare_train_cfg
    coco = str(synthetic_data / 'coco')
    cfg = prepare_train_cfg(load_config(SEG), SEG, 'unused', data_root=coco)
    with pytest.raises(FileNotFoundError,
                       match=f'image folder not found: {coco}/leftImg8bit'):
        check_dataset(cfg)


@pytest.fixture(scope='module')
def coco_val(synthetic_data):
    from mmdet.datasets import CocoDataset
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        return CocoDataset(
            data_root=str(synthetic_data / 'coco'),
            ann_file='annotations/instances_val.json',
            data_prefix=dict(img='val/'),
            metainfo=dict(classes=('disc', 'square', 'triangle', 'cross')),
            pipeline=[], test_mode=True)


def _coco_api(path):
    from mmdet.datasets.api_wrappers import COCO
    return COCO(str(path))


def test_annotation_check_passes_the_right_file(coco_val, synthetic_data):
    from mmdrconv.datasets.evaluation_check import annotation_mismatch
    ann = synthetic_data / 'coco/annotations/instances_val.json'
    assert annotation_mismatch(coco_val, _coco_api(ann), str(ann)) is None


def test_annotation_check_refuses_a_file_without_shared_images(
        coco_val, synthetic_data, tmp_path):
    from mmdrconv.datasets.evaluation_check import annotation_mismatch
    data = json.loads(
        (synthetic_data / 'coco/annotations/instances_val.json').read_text())
    for image in data['images']:
        image['id'] += 1000
    for ann in data['annotations']:
        ann['image_id'] += 1000
    other = tmp_path / 'shifted.json'
    other.write_text(json.dumps(data))
    problem = annotation_mismatch(coco_val, _coco_api(other), str(other))
    assert problem == (
        "the evaluator's annotation file shares no image with the 4 images "
        f'evaluated (the evaluator reads {other}, the dataset reads '
        f"{synthetic_data}/coco/annotations/instances_val.json)")


def test_annotation_check_refuses_another_copy_of_the_data(
        coco_val, tmp_path):
    """Same file names and image ids, other content (another seed): the
    case that scored 0.000 instead of 0.525."""
    from mmdrconv.datasets import generate
    from mmdrconv.datasets.evaluation_check import annotation_mismatch
    generate('coco', str(tmp_path / 'copy'), num_train=1, num_val=4, seed=7)
    other = tmp_path / 'copy/annotations/instances_val.json'
    problem = annotation_mismatch(coco_val, _coco_api(other), str(other))
    assert problem.startswith("the evaluator's annotation file does not "
                              'describe the evaluated images')
    assert 'image id 1 has' in problem and 'boxes that the annotation file ' \
        'does not' in problem


def test_runner_stops_before_evaluating_against_another_file(
        synthetic_data, tmp_path):
    from mmdrconv.datasets import generate
    from mmdrconv.runner import build_runner, prepare_test_cfg
    generate('coco', str(tmp_path / 'copy'), num_train=1, num_val=4, seed=7)
    other = str(tmp_path / 'other_val.json')
    shutil.copy(tmp_path / 'copy/annotations/instances_val.json', other)
    checkpoint = tmp_path / 'model.pth'
    torch.save(dict(state_dict={}), checkpoint)
    options = {f'{s}_dataloader.dataset.data_root': str(synthetic_data /
                                                        'coco')
               for s in ('train', 'val', 'test')}
    options['test_evaluator.ann_file'] = other
    cfg = prepare_test_cfg(_coco_cfg(options), DET, str(checkpoint),
                           work_dir=str(tmp_path / 'work'))
    runner = build_runner(cfg)
    runner.load_or_resume = lambda: None  # weights are beside the point
    with pytest.raises(ValueError) as error:
        runner.test()
    assert str(error.value).startswith(
        f'test_evaluator (CocoMetric): the evaluator\'s annotation file does '
        f'not describe the evaluated images (the evaluator reads {other}')
