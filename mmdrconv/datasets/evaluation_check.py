"""Stop a COCO evaluation whose annotation file is not the evaluated data's.

CocoMetric scores predictions against its own ``ann_file``. When that file
describes other images (another copy of the data, another split), COCO
evaluation does not fail: it reports mAP 0.000, or a plausible wrong number
when the image ids happen to coincide. Before each val/test epoch this hook
compares the evaluated dataset with every COCO metric's annotation file:
same image ids, file names, sizes, and the dataset's boxes among the file's.
"""
import os.path as osp
from typing import Dict, Optional, Tuple

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from .data_root import evaluator_ann_files

_SHOWN = 3  # differences named in the message


def _box_key(box) -> Tuple[float, ...]:
    return tuple(round(float(v), 1) for v in box)


def annotation_mismatch(dataset, coco, ann_file: str) -> Optional[str]:
    """What differs between ``dataset`` (an mmdet COCO-style dataset) and
    ``coco`` (a pycocotools COCO of ``ann_file``), or None."""
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    dataset_file = getattr(dataset, 'ann_file', '?')
    where = (f'the evaluator reads {ann_file}, the dataset reads '
             f'{dataset_file}')
    in_file = [info for info in infos if info['img_id'] in coco.imgs]
    if infos and not in_file:
        return (f"the evaluator's annotation file shares no image with the "
                f'{len(infos)} images evaluated ({where})')
    problems = []
    missing = len(infos) - len(in_file)
    if missing:
        problems.append(f'{missing} of {len(infos)} evaluated images are not '
                        'in the annotation file')
    for info in in_file:
        image = coco.imgs[info['img_id']]
        name = osp.basename(info.get('img_path', ''))
        if image.get('file_name') and name and \
                osp.basename(image['file_name']) != name:
            problems.append(f"image id {info['img_id']} is "
                            f"{image['file_name']!r} there, {name!r} here")
        elif (image.get('height'), image.get('width')) != (
                info.get('height'), info.get('width')):
            problems.append(
                f"image id {info['img_id']} is {image.get('height')}x"
                f"{image.get('width')} there, {info.get('height')}x"
                f"{info.get('width')} here")
        else:
            boxes = {
                _box_key([a['bbox'][0], a['bbox'][1],
                          a['bbox'][0] + a['bbox'][2],
                          a['bbox'][1] + a['bbox'][3]])
                for a in coco.imgToAnns.get(info['img_id'], [])
            }
            extra = [i for i in info.get('instances', [])
                     if _box_key(i['bbox']) not in boxes]
            if extra:
                problems.append(f"image id {info['img_id']} has "
                                f'{len(extra)} boxes that the annotation '
                                'file does not')
        if len(problems) >= _SHOWN:
            break
    if not problems:
        return None
    return (f"the evaluator's annotation file does not describe the "
            f'evaluated images ({where}): ' + '; '.join(problems))


@HOOKS.register_module(force=True)
class EvaluationDataCheckHook(Hook):
    """Raise ValueError before a val/test epoch whose COCO metric reads an
    annotation file that does not describe the evaluated dataset.

    Cheap when the metric and the dataset read the same file (image ids
    only); a full comparison otherwise, once per pair of files.
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self._checked: Dict[Tuple[int, int], None] = {}

    def before_val_epoch(self, runner) -> None:
        self._check(runner, runner.val_loop, 'val')

    def before_test_epoch(self, runner) -> None:
        self._check(runner, runner.test_loop, 'test')

    def _check(self, runner, loop, split: str) -> None:
        dataset = loop.dataloader.dataset
        # CocoMetric keeps the loaded file, not its name: take it from the
        # config for the message.
        cfg = getattr(runner, 'cfg', None) or {}
        files = evaluator_ann_files(cfg.get(f'{split}_evaluator'))
        ann_file = files[0] if len(files) == 1 else 'its ann_file'
        if not hasattr(dataset, 'get_data_info'):
            return
        for metric in loop.evaluator.metrics:
            coco = getattr(metric, '_coco_api', None)
            if coco is None or getattr(metric, 'format_only', False):
                continue
            key = (id(dataset), id(metric))
            if key in self._checked:
                continue
            problem = annotation_mismatch(dataset, coco, ann_file)
            if problem:
                raise ValueError(
                    f'{split}_evaluator ({type(metric).__name__}): {problem}. '
                    f'Its scores would be wrong. Point {split}_evaluator.'
                    f"ann_file at the {split}_dataloader's annotation file, "
                    'or give the data root once with --data-root.')
            self._checked[key] = None
