"""Reading a suite file: the matrix of task x variant x seed."""
import os
import os.path as osp
from dataclasses import dataclass, field, fields
from typing import Dict, List, Optional

from mmengine.config import Config

SUITE_FIELDS = ('name', 'seeds', 'tasks')
OPTIONAL_SUITE_FIELDS = ('datasets', 'profile', 'launcher')
GENERATED_KINDS = ('coco', 'cityscapes')


@dataclass
class Task:
    name: str
    dataset: str  # key into the suite's datasets
    metrics: List[str]  # keys of the evaluator's output, e.g. 'mIoU'
    variants: Dict[str, str]  # variant name -> config path
    max_iters: Optional[int] = None  # None: the config's own schedule
    image_size: tuple = (128, 128)  # (H, W) for latency / memory profiling
    gpus: Optional[int] = None  # per-task GPU count under a launcher
    cfg_options: dict = field(default_factory=dict)
    # The standard twin every other variant is compared with; default: the
    # first variant.
    baseline: Optional[str] = None
    # Evaluations along training (the last at its end): the validation
    # curve. None: the config's own val_interval.
    evaluations: Optional[int] = None

    def __post_init__(self):
        if not self.variants:
            raise ValueError(f'task {self.name}: no variants')
        if self.evaluations is not None and (
                isinstance(self.evaluations, bool)
                or not isinstance(self.evaluations, int)
                or self.evaluations < 1):
            raise ValueError(f'task {self.name}: evaluations must be a '
                             f'positive int (evaluations along training), '
                             f'got {self.evaluations!r}')
        if self.baseline is None:
            self.baseline = next(iter(self.variants))
        elif self.baseline not in self.variants:
            raise ValueError(
                f'task {self.name}: baseline {self.baseline!r} is not one of '
                f'its variants {list(self.variants)}')


@dataclass
class Cell:
    task: Task
    variant: str
    seed: int
    work_dir: str

    @property
    def config(self) -> str:
        return self.task.variants[self.variant]

    @property
    def label(self) -> str:
        return f'{self.task.name} | {self.variant} | seed {self.seed}'

    @property
    def result_file(self) -> str:
        return osp.join(self.work_dir, 'cell_result.json')


@dataclass
class Suite:
    name: str
    seeds: List[int]
    tasks: List[Task]
    datasets: Dict[str, dict]
    work_dir: str
    profile: dict
    launcher: Optional[dict]
    source: str

    def cells(self) -> List[Cell]:
        return [
            Cell(task, variant, seed,
                 osp.join(self.work_dir, task.name, variant, f'seed{seed}'))
            for task in self.tasks for variant in task.variants
            for seed in self.seeds
        ]


def _check_names(where: str, given, allowed, required=()) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f'{where}: unknown key(s) {unknown}; allowed: '
                         f'{sorted(allowed)}')
    missing = [k for k in required if k not in given]
    if missing:
        raise ValueError(f'{where}: missing {missing}')


def _check_datasets(path: str, datasets: dict) -> None:
    for name, data in datasets.items():
        where = f'{path}: dataset {name!r}'
        _check_names(where, data, ('kind', 'root', 'generate', 'num_train',
                                   'num_val', 'image_size', 'seed',
                                   'max_objects', 'appearance_cue'),
                     required=('root', ))
        if data.get('generate') and data.get('kind') not in GENERATED_KINDS:
            raise ValueError(f'{where}: generate=True needs kind in '
                             f'{GENERATED_KINDS}, got {data.get("kind")!r}')


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and \
        value >= 1


def _check_counts(where: str, task: dict) -> None:
    """max_iters 0 would silently mean "the config's own schedule"."""
    for name in ('max_iters', 'gpus'):
        value = task.get(name)
        if value is not None and not _positive_int(value):
            raise ValueError(f'{where}: {name} must be a positive int (or '
                             f'left out), got {value!r}')
    size = task.get('image_size', (128, 128))
    if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(
            _positive_int(v) for v in size):
        raise ValueError(f'{where}: image_size must be (height, width) in '
                         f'pixels, got {size!r}')


def _task(path: str, task: dict, datasets: dict) -> Task:
    where = f'{path}: task {task.get("name", "?")!r}'
    _check_names(where, task, [f.name for f in fields(Task)],
                 required=('name', 'dataset', 'metrics', 'variants'))
    if task['dataset'] not in datasets:
        raise ValueError(f'{where}: dataset {task["dataset"]!r} is not one '
                         f'of the suite\'s datasets {sorted(datasets)}')
    metrics = task['metrics']
    if isinstance(metrics, str) or not metrics or not all(
            isinstance(m, str) for m in metrics):
        raise ValueError(f'{where}: metrics must be a non-empty list of '
                         f"evaluator keys, e.g. ['coco/bbox_mAP'], got "
                         f'{metrics!r}')
    variants = task['variants']
    if not isinstance(variants, dict) or not variants:
        raise ValueError(f'{where}: variants must map variant names to '
                         f'config paths, got {variants!r}')
    _check_counts(where, task)
    task = Task(**{**task, 'metrics': list(metrics),
                   'image_size': tuple(task.get('image_size', (128, 128)))})
    for variant, config in task.variants.items():
        if not isinstance(config, str) or not osp.isfile(config):
            raise FileNotFoundError(
                f'{path}: config of {task.name}/{variant} not found: '
                f'{config} (working directory {os.getcwd()})')
    return task


def load_suite(path: str, work_dir: Optional[str] = None) -> Suite:
    cfg = Config.fromfile(path)
    if 'suite' not in cfg:
        raise ValueError(f'{path}: a suite file defines `suite = dict(...)`')
    spec = cfg.suite
    _check_names(f'{path}: suite', spec,
                 SUITE_FIELDS + OPTIONAL_SUITE_FIELDS, required=SUITE_FIELDS)
    seeds = spec.seeds
    if isinstance(seeds, (int, str)) or not seeds or not all(
            isinstance(s, int) and s >= 0 for s in seeds) or len(
                set(seeds)) != len(seeds):
        raise ValueError(f'{path}: seeds must be a non-empty list of '
                         f'distinct ints >= 0, got {seeds!r}')
    datasets = dict(spec.get('datasets', {}))
    _check_datasets(path, datasets)
    tasks = [_task(path, task, datasets) for task in spec.tasks]
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f'{path}: task names repeat: {names}')
    return Suite(name=spec.name, seeds=list(spec.seeds), tasks=tasks,
                 datasets=datasets,
                 work_dir=work_dir or osp.join('work_dirs', spec.name),
                 profile=dict(spec.get('profile', {})),
                 launcher=spec.get('launcher'), source=path)
