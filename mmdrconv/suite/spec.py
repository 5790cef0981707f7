"""Reading a suite file: the matrix of task x variant x seed."""
import os
import os.path as osp
import warnings
from dataclasses import dataclass, field, fields
from typing import Dict, List, Optional

from mmengine.config import Config

SUITE_FIELDS = ('name', 'seeds', 'tasks')
# 'launcher': the old name of 'distributed' (until 0.3).
OPTIONAL_SUITE_FIELDS = ('datasets', 'profile', 'distributed', 'launcher',
                         'until_mde')
DISTRIBUTED_FIELDS = ('type', 'gpus', 'nnodes')
UNTIL_MDE_FIELDS = ('target', 'max_seeds')
GENERATED_KINDS = ('coco', 'cityscapes')
CONTROL_PREFIX = 'control'


@dataclass
class Task:
    name: str
    dataset: str  # key into the suite's datasets
    metrics: List[str]  # keys of the evaluator's output, e.g. 'mIoU'
    variants: Dict[str, str]  # variant name -> config path
    max_iters: Optional[int] = None  # None: the config's own schedule
    image_size: tuple = (128, 128)  # (H, W) for latency / memory profiling
    gpus: Optional[int] = None  # per-task GPU count of a distributed cell
    cfg_options: dict = field(default_factory=dict)
    # The standard twin every other variant is compared with; default: the
    # first variant.
    baseline: Optional[str] = None
    # Evaluations along training (the last at its end): the validation
    # curve. None: the config's own val_interval.
    evaluations: Optional[int] = None
    # The metric the verdicts are made on, with Holm's correction across
    # the task's variants; the other metrics are secondary (reported, no
    # verdict). Default: the first of ``metrics``.
    primary_metric: Optional[str] = None
    # Variants of known harm that must come out behind the twin. Default:
    # the variants whose names start with 'control'.
    controls: Optional[List[str]] = None
    # The task's own seeds, when they differ from the suite's (--until-mde
    # adds seeds task by task).
    seeds: Optional[List[int]] = None
    # The pilot that admitted the task to its preset (docs/suite.md, "the
    # gate"): 'RESULTS_JSON:TASK', whose controls came out behind on every
    # seed. Checked by the tests, not at run time.
    admitted_by: Optional[str] = None

    def __post_init__(self):
        if not self.variants:
            raise ValueError(f'task {self.name}: no variants')
        if self.primary_metric is None:
            self.primary_metric = self.metrics[0]
        elif self.primary_metric not in self.metrics:
            raise ValueError(
                f'task {self.name}: primary_metric {self.primary_metric!r} '
                f'is not one of its metrics {self.metrics}')
        if self.controls is None:
            self.controls = [v for v in self.variants
                             if v.startswith(CONTROL_PREFIX)]
        unknown = [v for v in self.controls if v not in self.variants]
        if unknown:
            raise ValueError(f'task {self.name}: controls {unknown} are not '
                             f'among its variants {list(self.variants)}')
        if self.seeds is not None:
            _check_seeds(f'task {self.name}', self.seeds)
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
        if self.baseline in self.controls:
            raise ValueError(f'task {self.name}: the baseline '
                             f'{self.baseline!r} cannot be a control')

    @property
    def compared(self) -> List[str]:
        """The variants compared with the twin that are not controls."""
        return [v for v in self.variants
                if v != self.baseline and v not in self.controls]


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
    # How a cell's processes start: dict(type='torchrun', gpus=G, nnodes=N)
    # runs each cell under torchrun; None: one process.
    distributed: Optional[dict]
    source: str
    # The preset's own stopping rule, dict(target=REL, max_seeds=N): what
    # --until-mde REL --max-seeds N asks for when the command line does not.
    until_mde: Optional[dict] = None

    def seeds_of(self, task: Task) -> List[int]:
        return list(task.seeds if task.seeds is not None else self.seeds)

    def cells(self) -> List[Cell]:
        return [
            Cell(task, variant, seed,
                 osp.join(self.work_dir, task.name, variant, f'seed{seed}'))
            for task in self.tasks for variant in task.variants
            for seed in self.seeds_of(task)
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
                                   'max_objects', 'appearance_cue',
                                   'object_size'),
                     required=('root', ))
        if data.get('generate') and data.get('kind') not in GENERATED_KINDS:
            raise ValueError(f'{where}: generate=True needs kind in '
                             f'{GENERATED_KINDS}, got {data.get("kind")!r}')


def _check_seeds(where: str, seeds) -> None:
    if isinstance(seeds, (int, str)) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0
            for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f'{where}: seeds must be a non-empty list of '
                         f'distinct ints >= 0, got {seeds!r}')


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


def _optional_dict(path: str, key: str, value, form: str, allowed,
                   required) -> Optional[dict]:
    """``value`` of the suite's optional entry ``key``: None, or a dict
    of the ``allowed`` names (``form`` shows it in the error)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f'{path}: {key} must be {form}, got {value!r}')
    _check_names(f'{path}: {key}', value, allowed, required=required)
    return value


def _distributed(path: str, spec) -> Optional[dict]:
    """The suite's ``distributed`` entry, also under its old name
    ``launcher`` (which now names the command line's choice of where cells
    run: ``--launcher local|slurm``)."""
    if 'launcher' in spec:
        if 'distributed' in spec:
            raise ValueError(f'{path}: suite has both distributed and its old '
                             'name launcher; keep distributed')
        warnings.warn(f'{path}: the suite key launcher=dict(...) is now '
                      'named distributed=dict(...); rename it (the old name '
                      'is read until mmdrconv 0.3)', FutureWarning)
    distributed = _optional_dict(
        path, 'distributed', spec.get('distributed', spec.get('launcher')),
        "dict(type='torchrun', gpus=G, nnodes=N)", DISTRIBUTED_FIELDS,
        required=('type', ))
    if distributed is None:
        return None
    if distributed['type'] != 'torchrun':
        raise ValueError(f"{path}: distributed type must be 'torchrun', got "
                         f"{distributed['type']!r}")
    for name in ('gpus', 'nnodes'):
        if name in distributed and not _positive_int(distributed[name]):
            raise ValueError(f'{path}: distributed {name} must be a positive '
                             f'int, got {distributed[name]!r}')
    return dict(distributed)


def _until_mde(path: str, spec) -> Optional[dict]:
    """The suite's ``until_mde=dict(target=REL, max_seeds=N)``."""
    rule = _optional_dict(path, 'until_mde', spec.get('until_mde'),
                          'dict(target=REL, max_seeds=N)', UNTIL_MDE_FIELDS,
                          required=UNTIL_MDE_FIELDS)
    if rule is None:
        return None
    target, max_seeds = rule['target'], rule['max_seeds']
    if isinstance(target, bool) or not isinstance(target, (int, float)) \
            or not 0 < target < 1:
        raise ValueError(f'{path}: until_mde target is a relative '
                         f'difference in (0, 1), e.g. 0.05 for 5%, got '
                         f'{target!r}')
    if not _positive_int(max_seeds) or max_seeds < max(2, len(spec.seeds)):
        raise ValueError(f'{path}: until_mde max_seeds must be an int at '
                         f'least 2 and the suite\'s {len(spec.seeds)} seeds, '
                         f'got {max_seeds!r}')
    return dict(target=float(target), max_seeds=max_seeds)


def load_suite(path: str, work_dir: Optional[str] = None,
               task_seeds: Optional[Dict[str, List[int]]] = None) -> Suite:
    """The suite file at ``path``; ``task_seeds`` (task name -> seeds)
    replaces the seeds of those tasks (``--until-mde``)."""
    cfg = Config.fromfile(path)
    if 'suite' not in cfg:
        raise ValueError(f'{path}: a suite file defines `suite = dict(...)`')
    spec = cfg.suite
    _check_names(f'{path}: suite', spec,
                 SUITE_FIELDS + OPTIONAL_SUITE_FIELDS, required=SUITE_FIELDS)
    _check_seeds(path, spec.seeds)
    datasets = dict(spec.get('datasets', {}))
    _check_datasets(path, datasets)
    tasks = [_task(path, task, datasets) for task in spec.tasks]
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f'{path}: task names repeat: {names}')
    for name, seeds in (task_seeds or {}).items():
        if name not in names:
            raise ValueError(f'{path}: no task {name!r} to give seeds to; '
                             f'tasks: {names}')
        _check_seeds(f'{path}: task {name}', seeds)
        next(t for t in tasks if t.name == name).seeds = list(seeds)
    return Suite(name=spec.name, seeds=list(spec.seeds), tasks=tasks,
                 datasets=datasets,
                 work_dir=work_dir or osp.join('work_dirs', spec.name),
                 profile=dict(spec.get('profile', {})),
                 distributed=_distributed(path, spec), source=path,
                 until_mde=_until_mde(path, spec))
