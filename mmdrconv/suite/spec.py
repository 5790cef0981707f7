"""Reading a suite file: the matrix of task x variant x seed."""
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from mmengine.config import Config

SUITE_FIELDS = ('name', 'seeds', 'tasks')


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

    def __post_init__(self):
        if not self.variants:
            raise ValueError(f'task {self.name}: no variants')
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


def load_suite(path: str, work_dir: Optional[str] = None) -> Suite:
    cfg = Config.fromfile(path)
    if 'suite' not in cfg:
        raise ValueError(f'{path}: a suite file defines `suite = dict(...)`')
    spec = cfg.suite
    missing = [k for k in SUITE_FIELDS if k not in spec]
    if missing:
        raise ValueError(f'{path}: suite is missing {missing}')
    tasks = []
    for task in spec.tasks:
        task = Task(**{**task, 'image_size': tuple(task.get('image_size',
                                                            (128, 128)))})
        for variant, config in task.variants.items():
            if not osp.isfile(config):
                raise FileNotFoundError(
                    f'{path}: config of {task.name}/{variant} not found: '
                    f'{config}')
        tasks.append(task)
    return Suite(name=spec.name, seeds=list(spec.seeds), tasks=tasks,
                 datasets=dict(spec.get('datasets', {})),
                 work_dir=work_dir or osp.join('work_dirs', spec.name),
                 profile=dict(spec.get('profile', {})),
                 launcher=spec.get('launcher'), source=path)
