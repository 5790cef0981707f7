"""What produced a suite cell's result: its key.

A finished cell is reused only when everything that decides its numbers is
unchanged: the resolved config (the variant's config file with its bases
and the task's cfg_options), the budget (iterations, processes), the seed,
the dataset's parameters, the protocol (the twin it starts from, its
evaluations along training, the metrics evaluated on each half of the val
set) and the code that runs inside a cell (:func:`code_version`). The key
is stored in the cell's ``cell_result.json`` (and, while it trains, in
``cell_key.json`` beside its checkpoints).
"""
import glob
import hashlib
import json
import os.path as osp
from fnmatch import fnmatchcase
from functools import lru_cache
from importlib import metadata
from typing import Dict, List, Optional

from .spec import Cell, Suite

KEY_FILE = 'cell_key.json'
KEY_PARTS = ('config', 'budget', 'seed', 'dataset', 'protocol', 'code')
# The package's source files that never run in a cell (patterns relative to
# the package): the suite's reading of its file, planning, launchers, key
# and report, the profiling, and the other command lines. Editing them
# changes no cell's numbers, so the code version leaves them out; every
# other file counts, a new one too until it is listed here.
# tests/test_suite_keys.py checks that no module a cell imports is listed.
OUTSIDE_CELL = ('suite/spec.py', 'suite/run.py', 'suite/seeding.py',
                'suite/jobs.py', 'suite/launchers.py', 'suite/slurm.py',
                'suite/keys.py', 'suite/invocations.py', 'suite/report.py',
                'suite/plots.py', 'suite/stats.py', 'suite/timing.py',
                'analysis/*', 'cli/*', 'deploy.py')
# Matched above, yet run by a cell's process (python -m
# mmdrconv.cli.suite_cell).
CELL_ENTRY = ('cli/__init__.py', 'cli/suite_cell.py')
# Run by a variant's profiling (python -m mmdrconv.cli.benchmark) beyond
# the cell's code: part of a profile's code version.
PROFILE_CODE = ('analysis/*', 'cli/benchmark.py')
SCOPES = dict(cell=CELL_ENTRY, profile=CELL_ENTRY + PROFILE_CODE)
PACKAGE = osp.dirname(osp.dirname(osp.abspath(__file__)))
STACK = ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmsegmentation')


def _stable(obj):
    """JSON for what a config may hold beyond JSON types (tuples become
    lists; a class or function by its name, never by its address)."""
    name = getattr(obj, '__qualname__', None)
    if name is not None:
        return f'{getattr(obj, "__module__", "")}.{name}'
    return str(obj)


def config_digest(config: str, cfg_options: dict) -> str:
    """A hash of the config as a cell reads it (bases and overrides
    applied)."""
    from ..apis import load_config
    cfg = load_config(config, dict(cfg_options) or None)
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=_stable)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _matches(path: str, patterns) -> bool:
    return any(fnmatchcase(path, pattern) for pattern in patterns)


def source_files(scope: str = 'cell',
                 package: Optional[str] = None) -> List[str]:
    """The package's source files (relative, '/'-separated) that run in a
    cell (``scope='cell'``) or in a variant's profiling (``'profile'``);
    ``package``: its folder, default :data:`PACKAGE`."""
    package = package or PACKAGE
    files = []
    for path in sorted(glob.glob(osp.join(package, '**', '*.py'),
                                 recursive=True)):
        relative = osp.relpath(path, package).replace(osp.sep, '/')
        if not _matches(relative, OUTSIDE_CELL) or _matches(relative,
                                                           SCOPES[scope]):
            files.append(relative)
    return files


@lru_cache(maxsize=None)
def code_version(scope: str = 'cell',
                 package: Optional[str] = None) -> Dict[str, str]:
    """mmdrconv's version, a hash of the source files of ``scope``
    (:func:`source_files`) and the versions of the stack it trains with.
    Computed once per process (``code_version.cache_clear()`` after
    editing the source in a test)."""
    package = package or PACKAGE
    digest = hashlib.sha256()
    for relative in source_files(scope, package):
        digest.update(relative.encode() + b'\0')
        with open(osp.join(package, relative), 'rb') as f:
            digest.update(f.read() + b'\0')
    from .. import __version__
    version = dict(mmdrconv=__version__, source=digest.hexdigest()[:16])
    for name in STACK:
        try:
            version[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            version[name] = 'not installed'
    return version


def dataset_parameters(suite: Suite, cell: Cell) -> dict:
    """The dataset as it decides the numbers: for generated data the
    generator's options (its folder does not matter: the same options give
    the same images), otherwise its root."""
    data = dict(suite.datasets[cell.task.dataset])
    if data.get('generate'):
        data.pop('root', None)
    return data


def _digest(config: str, options: dict, digests: Optional[dict]) -> str:
    """config_digest, cached in ``digests`` (one suite run: the seeds and
    tasks that share a config load it once)."""
    digests = {} if digests is None else digests
    which = (config, json.dumps(options, sort_keys=True, default=str))
    if which not in digests:
        digests[which] = config_digest(config, options)
    return digests[which]


def cell_key(suite: Suite, cell: Cell, processes: int,
             digests: Optional[dict] = None) -> dict:
    """The key of ``cell`` trained by ``processes`` processes (the
    launcher's choice: :meth:`~mmdrconv.suite.launchers.Launcher.processes`;
    they share the batch); ``digests``: see :func:`_digest`."""
    options = cell.task.cfg_options or {}
    key = dict(config=_digest(cell.config, options, digests),
               budget=dict(max_iters=cell.task.max_iters,
                           processes=processes),
               seed=cell.seed,
               dataset=dataset_parameters(suite, cell),
               protocol=dict(
                   twin=_digest(cell.task.variants[cell.task.baseline],
                                options, digests),
                   evaluations=cell.task.evaluations,
                   split_half=list(cell.task.metrics)),
               code=code_version())
    # Through JSON once, so that it compares equal to a stored key.
    return json.loads(json.dumps(key, default=list))


def _differences(old, new) -> List[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [f'{k} {old.get(k)!r} -> {new.get(k)!r}'
                for k in sorted(set(old) | set(new))
                if old.get(k) != new.get(k)]
    return [f'{old!r} -> {new!r}']


def key_changes(old: Optional[dict], new: dict) -> Optional[str]:
    """What differs between a stored key and the current one (None when
    nothing does), e.g. "budget changed (max_iters 2 -> 4)"."""
    if not isinstance(old, dict):
        return 'no record of what produced it (written by an older suite)'
    changes = []
    for part in KEY_PARTS:
        if old.get(part) == new.get(part):
            continue
        if part == 'config':
            changes.append("config changed (the variant's config file, its "
                           "bases or the task's cfg_options)")
        else:
            what = ', '.join(_differences(old.get(part), new[part]))
            changes.append(f'{part} changed ({what})')
    return '; '.join(changes) or None


def profile_key(config: str, image_size, repeat: int,
                digests: Optional[dict] = None) -> dict:
    """What a variant's profile (params, MACs, latency, memory) depends
    on."""
    key = dict(config=_digest(config, {}, digests), image_size=image_size,
               repeat=repeat, code=code_version('profile'))
    return json.loads(json.dumps(key, default=list))
