"""Evaluation noise: metrics on the two halves of the validation set
(mmdrconv/suite/split_half.py) and their standard error in the report."""
import csv
import json
import math

import pytest
import torch
from mmengine.registry import DefaultScope

from helpers import fabricated_suite


def test_evaluation_se_against_hand_computed_values():
    from mmdrconv.suite.stats import evaluation_se
    # (0.6 - 0.4)^2 = 0.04, (0.5 - 0.5)^2 = 0, (0.7 - 0.5)^2 = 0.04:
    # mean 0.08 / 3, se = sqrt(0.08 / 3 / 4) = 0.08165
    out = evaluation_se([(0.6, 0.4), (0.5, 0.5), (0.7, 0.5)])
    assert out['n'] == 3
    assert out['se'] == pytest.approx(math.sqrt(0.08 / 12))
    assert evaluation_se([]) == dict(se=None, n=0)


def _iou_sample(pred, label, num_classes=2):
    """One mmseg data sample as IoUMetric.process reads it."""
    return dict(pred_sem_seg=dict(data=torch.tensor(pred)[None]),
                gt_sem_seg=dict(data=torch.tensor(label)[None]))


def test_split_half_iou_metric_evaluates_each_half():
    from mmseg.evaluation import IoUMetric  # noqa: F401 (registers it)

    from mmdrconv.suite.split_half import SplitHalfMetric
    with DefaultScope.overwrite_default_scope('mmseg'):
        metric = SplitHalfMetric(dict(type='IoUMetric'), keys=['mIoU'])
    metric.dataset_meta = dict(classes=('a', 'b'))
    label = [[0, 0], [1, 1]]
    # Even positions (half0) predicted perfectly; odd ones (half1) with
    # class b everywhere: IoU(a) = 0, IoU(b) = 2 / 4 -> mIoU 25.
    samples = [_iou_sample(label if i % 2 == 0 else [[1, 1], [1, 1]], label)
               for i in range(4)]
    metric.process({}, samples)
    out = metric.evaluate(len(samples))
    assert out['mIoU@half0'] == pytest.approx(100.0)
    assert out['mIoU@half1'] == pytest.approx(25.0)
    # The whole set, unchanged: a: 4 / 6 px, b: 4 / 8 -> (66.67 + 50) / 2
    assert out['mIoU'] == pytest.approx((4 / 6 + 4 / 8) / 2 * 100, abs=0.01)
    assert metric.metric.results == []  # cleared, as BaseMetric does


def _coco_file(tmp_path, num_images=4):
    images = [dict(id=i + 1, file_name=f'{i}.png', height=64, width=64)
              for i in range(num_images)]
    annotations = [dict(id=i + 1, image_id=i + 1, category_id=1,
                        bbox=[10, 10, 20, 20], area=400, iscrowd=0,
                        segmentation=[[10, 10, 30, 10, 30, 30, 10, 30]])
                   for i in range(num_images)]
    path = tmp_path / 'val.json'
    path.write_text(json.dumps(dict(
        images=images, annotations=annotations,
        categories=[dict(id=1, name='disc')])))
    return str(path)


def test_split_half_coco_metric_scores_each_half_on_its_own_images(
        tmp_path):
    """half0's images (positions 0, 2) get exact boxes, half1's a box
    beside the object: if a half were scored against every image, half0's
    AP would count the other half's objects as missed and fall to about
    0.5."""
    from mmdet.evaluation import CocoMetric  # noqa: F401 (registers it)

    from mmdrconv.suite.split_half import SplitHalfMetric
    ann_file = _coco_file(tmp_path)
    with DefaultScope.overwrite_default_scope('mmdet'):
        metric = SplitHalfMetric(
            dict(type='CocoMetric', ann_file=ann_file, metric='bbox'),
            keys=['coco/bbox_mAP'])
    metric.dataset_meta = dict(classes=('disc', ))
    samples = []
    for index in range(4):
        box = [10., 10., 30., 30.] if index % 2 == 0 else [40., 40., 60., 60.]
        samples.append(dict(
            img_id=index + 1, ori_shape=(64, 64),
            pred_instances=dict(bboxes=torch.tensor([box]),
                                scores=torch.tensor([0.9 if index % 2 == 0
                                                     else 0.5]),
                                labels=torch.tensor([0]))))
    metric.process({}, samples)
    out = metric.evaluate(len(samples))
    assert out['coco/bbox_mAP@half0'] == pytest.approx(1.0)
    assert out['coco/bbox_mAP@half1'] == pytest.approx(0.0)
    # The whole set: recall 0.5 at precision 1 (the hits score higher),
    # 51 of COCO's 101 recall points.
    assert out['coco/bbox_mAP'] == pytest.approx(0.505, abs=0.001)
    # The wrapped metric keeps its whole image list for the next epoch.
    assert metric.metric.img_ids == [1, 2, 3, 4]
    # CocoMetric's loaded file is visible through the wrapper (the
    # annotation check of mmdrconv.datasets reads it).
    assert metric._coco_api is metric.metric._coco_api


def test_split_half_names_a_missing_key():
    from mmseg.evaluation import IoUMetric  # noqa: F401

    from mmdrconv.suite.split_half import SplitHalfMetric
    with DefaultScope.overwrite_default_scope('mmseg'):
        metric = SplitHalfMetric(dict(type='IoUMetric'), keys=['mDice'])
    metric.dataset_meta = dict(classes=('a', 'b'))
    metric.process({}, [_iou_sample([[0]], [[0]])] * 2)
    with pytest.raises(KeyError, match=r"\['mDice'\] not among"):
        metric.evaluate(2)


def test_an_evaluator_of_several_metrics_halves_each_ones_keys():
    """A list val_evaluator: each metric halves the keys it produces; a key
    none produces is left to the suite's own check of the task metrics."""
    from mmengine.config import Config
    from mmseg.evaluation import IoUMetric  # noqa: F401

    from mmdrconv.suite.split_half import (SplitHalfMetric,
                                           split_half_evaluation)
    cfg = Config(dict(val_evaluator=[dict(type='IoUMetric'),
                                     dict(type='IoUMetric',
                                          iou_metrics=['mDice'])]))
    split_half_evaluation(cfg, ['mIoU', 'mDice'])
    assert [m['strict'] for m in cfg.val_evaluator] == [False, False]
    with DefaultScope.overwrite_default_scope('mmseg'):
        metric = SplitHalfMetric(**{k: v for k, v in
                                    cfg.val_evaluator[1].items()
                                    if k != 'type'})
    metric.dataset_meta = dict(classes=('a', 'b'))
    label = [[0, 0], [1, 1]]
    metric.process({}, [_iou_sample(label, label)] * 2)
    out = metric.evaluate(2)
    assert out['mDice@half0'] == out['mDice@half1'] == pytest.approx(100)
    assert 'mIoU@half0' not in out and 'mIoU' not in out


def test_report_sets_evaluation_noise_beside_seed_noise(tmp_path):
    from mmdrconv.suite.report import write_report
    suite, cells, results, profiles = fabricated_suite(tmp_path)
    # Halves of the final value: +-0.02 around it for the twin, +-0.04
    # for drconv; the other variants evaluated no halves.
    spread = dict(standard=0.02, drconv=0.04)
    for cell, result in zip(cells, results):
        half = spread.get(cell.variant)
        if half is not None and result['status'] == 'ok':
            value = result['metrics']['acc']
            result['metrics'].update({'acc@half0': value + half,
                                      'acc@half1': value - half})
    report = write_report(suite, cells, results, profiles, wall_time_s=60)
    rows = {r['variant']: r for r in report['summary']}
    # whole-set se = |half0 - half1| / 2 = 0.02 for the twin
    assert rows['standard']['evaluation_se']['acc'] == dict(se=pytest.approx(
        0.02), n=3)
    # paired difference per half: +0.02 and -0.02 -> se 0.02
    assert rows['drconv']['difference']['acc']['evaluation_se'] == \
        pytest.approx(0.02)
    assert rows['worse']['difference']['acc']['evaluation_se'] is None
    text = open(report['markdown']).read()
    assert 'Evaluation noise / seed noise' in text
    assert 'acc: `standard` 0.020 / 0.020; paired differences drconv ' \
        '0.020 / 0.015.' in text
    with open(report['csv']) as f:
        lines = {line['variant']: line for line in csv.DictReader(f)}
    assert float(lines['standard']['evaluation_se']) == pytest.approx(0.02)
    assert float(lines['drconv']['diff_evaluation_se']) == \
        pytest.approx(0.02)
    assert lines['worse']['diff_evaluation_se'] == ''
    # drconv's "ahead" (+0.097) is well outside 1.96 x 0.02: no caveat.
    assert 'seeds 0, 1, 2 (p 0.00822, Holm-adjusted 0.0247): ahead.' in text


def test_a_verdict_within_the_validation_sets_noise_says_so(tmp_path):
    from mmdrconv.suite.report import write_report
    suite, cells, results, profiles = fabricated_suite(tmp_path)
    for cell, result in zip(cells, results):
        # Halves +-0.02 (twin) and +-0.12 (drconv): the difference's halves
        # are +0.10 / -0.10 around it, se 0.10, and 1.96 x 0.10 > 0.097.
        half = dict(standard=0.02, drconv=0.12).get(cell.variant)
        if half is not None:
            value = result['metrics']['acc']
            result['metrics'].update({'acc@half0': value + half,
                                      'acc@half1': value - half})
    report = write_report(suite, cells, results, profiles, wall_time_s=60)
    rows = {r['variant']: r for r in report['summary']}
    assert rows['drconv']['difference']['acc']['evaluation_se'] == \
        pytest.approx(0.10)
    text = open(report['markdown']).read()
    assert "over seeds 0, 1, 2 (p 0.00822, Holm-adjusted 0.0247): ahead; " \
        "but the validation set's own " \
        'standard error of this difference, 0.100, is as large as that: ' \
        'confirm it on more or other validation images.' in text
    # No halves for "worse": its "behind" stands without a caveat.
    assert 'over seeds 0, 1, 2 (p 0.00332, Holm-adjusted 0.0133): behind.' \
        in text
