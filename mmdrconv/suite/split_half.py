"""Evaluation noise of a suite cell: its metrics on the two halves of the
validation set.

A finite validation set makes every metric a noisy estimate of the model's
value on the data's distribution. Splitting the set into two halves (the
samples at even and odd positions of the dataset's order) and evaluating
each gives two independent estimates of half the precision; the standard
error of the whole set's value is about |half0 - half1| / 2 (stats.py,
``evaluation_se``), which the report sets beside the seed-to-seed spread.
"""
from typing import Dict, List, Optional, Sequence

from mmengine.dist import broadcast_object_list, collect_results, \
    is_main_process
from mmengine.evaluator import BaseMetric
# mmengine 0.10.7's own helper of BaseMetric.evaluate (private).
from mmengine.evaluator.metric import _to_cpu
from mmengine.registry import METRICS

HALVES = ('half0', 'half1')


def half_key(metric: str, half: str) -> str:
    """The result key of ``metric`` on one half: ``mIoU@half0``."""
    return f'{metric}@{half}'


@METRICS.register_module(force=True)
class SplitHalfMetric(BaseMetric):
    """Wraps any metric: its results on the whole set, unchanged, plus
    ``keys`` (full names, e.g. ``coco/bbox_mAP``) on each half, as
    ``<key>@half0`` / ``<key>@half1``.

    Metrics that evaluate against a list of image ids (mmdet's CocoMetric:
    ``img_ids``) are given each half's ids, so an image of the other half
    does not count as missed. ``strict``: a key the metric does not
    produce is an error (one metric in the evaluator); without it, such
    keys are left to the evaluator's other metrics.
    """

    def __getattr__(self, name: str):
        # Anything else is the wrapped metric's (e.g. CocoMetric's
        # ``_coco_api`` for the annotation check of mmdrconv.datasets).
        if name == 'metric':
            raise AttributeError(name)
        return getattr(self.metric, name)

    def __init__(self, metric: dict, keys: Sequence[str],
                 strict: bool = True):
        self.metric = METRICS.build(metric)
        super().__init__(collect_device=self.metric.collect_device,
                         prefix=None)
        self.keys = list(keys)
        self.strict = strict

    @property
    def dataset_meta(self) -> Optional[dict]:
        return self.metric.dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, meta: dict) -> None:
        self.metric.dataset_meta = meta

    def process(self, data_batch, data_samples) -> None:
        self.metric.process(data_batch, data_samples)

    def _named(self, values: Dict[str, float]) -> Dict[str, float]:
        prefix = self.metric.prefix
        return {f'{prefix}/{k}' if prefix else k: v
                for k, v in values.items()}

    def _on_half(self, results: List) -> Dict[str, float]:
        ids = getattr(self.metric, 'img_ids', None)
        if ids is not None:
            self.metric.img_ids = sorted(
                {pred['img_id'] for _, pred in results})
        try:
            return self._named(self.metric.compute_metrics(results))
        finally:
            if ids is not None:
                self.metric.img_ids = ids

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = self._named(self.metric.compute_metrics(results))
        missing = [k for k in self.keys if k not in metrics]
        if missing and self.strict:
            raise KeyError(f'split-half evaluation: {missing} not among '
                           f'the metric\'s results {sorted(metrics)}')
        keys = [k for k in self.keys if k in metrics]
        for index, half in enumerate(HALVES):
            values = self._on_half(results[index::2]) if keys else {}
            # A key missing on a half (CocoMetric returns nothing when the
            # half has no detection at all) is left out, not guessed; the
            # report then pools the cells that have both halves.
            metrics.update({half_key(k, half): values[k] for k in keys
                            if k in values})
        return metrics

    def evaluate(self, size: int) -> dict:
        # As BaseMetric.evaluate, on the wrapped metric's results, without
        # its prefix (compute_metrics names the keys itself).
        results = collect_results(self.metric.results, size,
                                  self.collect_device)
        if is_main_process():
            metrics = [self.compute_metrics(_to_cpu(results))]
        else:
            metrics = [None]
        broadcast_object_list(metrics)
        self.metric.results.clear()
        return metrics[0]


def split_half_evaluation(cfg, keys: Sequence[str]) -> None:
    """Wrap each of the config's validation metrics in
    :class:`SplitHalfMetric` for ``keys``: one metric must produce them all;
    with several, each halves the keys it produces (the suite checks that
    the evaluator produced every task metric)."""
    evaluator = cfg.val_evaluator
    if isinstance(evaluator, (list, tuple)):
        cfg.val_evaluator = [
            dict(type='SplitHalfMetric', metric=m, keys=list(keys),
                 strict=False) for m in evaluator]
    else:
        cfg.val_evaluator = dict(type='SplitHalfMetric', metric=evaluator,
                                 keys=list(keys))
