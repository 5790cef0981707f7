"""One data root for a whole config: dataloaders and COCO evaluators together.

Upstream configs write ``val_evaluator = dict(ann_file=data_root + ...)``, so
the evaluator's annotation file is fixed when the config is parsed; moving
only the dataloaders (``--cfg-options val_dataloader.dataset.data_root=...``)
would evaluate the new images against the old annotation file. The functions
here keep the two together. They work on config dicts only (no mmengine).
"""
import os.path as osp
from typing import Iterator, List, Optional, Tuple

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# Which dataloader an evaluator scores.
EVALUATED_BY = (('val_evaluator', 'val_dataloader'),
                ('test_evaluator', 'test_dataloader'))


def innermost_datasets(loader) -> Iterator[dict]:
    """The dataset dicts that read files: through wrappers (RepeatDataset,
    ClassBalancedDataset, ...) and into ConcatDataset's parts."""
    dataset = loader['dataset']
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    yield from dataset.get('datasets', [dataset])


def join_root(root: Optional[str], path: str) -> str:
    """A dataset path as mmengine's BaseDataset resolves it."""
    return path if not root or osp.isabs(path) else osp.join(root, path)


def _same_file(a: str, b: str) -> bool:
    return osp.realpath(a) == osp.realpath(b)


def _metrics_with_ann_file(evaluator) -> List[dict]:
    if not evaluator:
        return []
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        evaluator = evaluator['metrics']
    metrics = evaluator if isinstance(evaluator, (list, tuple)) else [
        evaluator
    ]
    return [m for m in metrics if isinstance(m, dict) and m.get('ann_file')]


def evaluator_ann_files(evaluator) -> List[str]:
    """The annotation files an evaluator config reads (COCO metrics)."""
    return [m['ann_file'] for m in _metrics_with_ann_file(evaluator)]


def _annotation_files(loader) -> List[Tuple[dict, str]]:
    """(dataset dict, its annotation file as the dataset resolves it)."""
    return [(d, join_root(d.get('data_root'), d['ann_file']))
            for d in innermost_datasets(loader) if d.get('ann_file')]


def _is_under(path: str, root: str) -> bool:
    path, root = osp.normpath(path), osp.normpath(root)
    return path.startswith(root + osp.sep)


def set_data_root(cfg, root: str) -> None:
    """``--data-root``: read every split from ``root`` and score val/test
    against the annotation files under ``root``.

    The evaluators' ``ann_file`` moves with the dataloaders when it is the
    dataset's annotation file or lies under the config's old data root;
    otherwise a ValueError names it (it cannot be moved unambiguously).
    """
    if not osp.isdir(root):
        raise FileNotFoundError(f'--data-root {root}: no such folder')
    moved = {}  # old annotation path -> new, per dataloader
    old_roots = {}
    for key in LOADERS:
        loader = cfg.get(key)
        if not loader:
            continue
        for dataset in innermost_datasets(loader):
            old = dataset.get('data_root')
            old_roots.setdefault(key, old)
            if dataset.get('ann_file') and not osp.isabs(dataset['ann_file']):
                moved[(key, join_root(old, dataset['ann_file']))] = \
                    join_root(root, dataset['ann_file'])
            dataset['data_root'] = root
    for evaluator_key, loader_key in EVALUATED_BY:
        old_root = old_roots.get(loader_key)
        for metric in _metrics_with_ann_file(cfg.get(evaluator_key)):
            ann_file = metric['ann_file']
            new = next((v for (k, old), v in moved.items()
                        if k == loader_key and
                        osp.normpath(old) == osp.normpath(ann_file)), None)
            if new is None and old_root and _is_under(ann_file, old_root):
                new = osp.join(root, osp.relpath(ann_file, old_root))
            if new is None:
                raise ValueError(
                    f'--data-root: {evaluator_key}.ann_file {ann_file!r} is '
                    f"neither {loader_key}'s annotation file nor under the "
                    f"config's data root {old_root!r}, so it cannot move "
                    'with the data; set it too: --cfg-options '
                    f'{evaluator_key}.ann_file=PATH')
            metric['ann_file'] = new


def align_evaluator_ann_files(cfg) -> List[str]:
    """Make each COCO evaluator read its dataloader's annotation file.

    An evaluator ``ann_file`` that names the dataloader's annotation file
    (same relative path) under another root is what a config with a moved
    ``data_root`` looks like: it is moved to the dataloader's file. Returns a
    note per change, for the log. Other differences are left to the check at
    evaluation time (:class:`~mmdrconv.datasets.EvaluationDataCheckHook`).
    """
    notes = []
    for evaluator_key, loader_key in EVALUATED_BY:
        loader = cfg.get(loader_key)
        if not loader:
            continue
        files = _annotation_files(loader)
        for metric in _metrics_with_ann_file(cfg.get(evaluator_key)):
            ann_file = metric['ann_file']
            if any(_same_file(ann_file, f) for _, f in files):
                continue
            for dataset, dataset_file in files:
                relative = osp.normpath(dataset['ann_file'])
                if not osp.isabs(relative) and osp.normpath(
                        ann_file).endswith(osp.sep + relative):
                    metric['ann_file'] = dataset_file
                    notes.append(
                        f'{evaluator_key}.ann_file follows '
                        f"{loader_key}'s data_root: {ann_file} -> "
                        f'{dataset_file}')
                    break
    return notes
