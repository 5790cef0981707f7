"""What produced a suite cell's result: its key.

A finished cell is reused only when everything that decides its numbers is
unchanged: the resolved config (the variant's config file with its bases
and the task's cfg_options), the budget, the seed, the dataset's parameters
and the code (mmdrconv's version and source, and the versions of the
OpenMMLab stack). The key is stored in the cell's ``cell_result.json`` (and,
while it trains, in ``cell_key.json`` beside its checkpoints).
"""
import glob
import hashlib
import json
import os.path as osp
from functools import lru_cache
from importlib import metadata
from typing import Dict, List, Optional

from .spec import Cell, Suite

KEY_FILE = 'cell_key.json'
KEY_PARTS = ('config', 'budget', 'seed', 'dataset', 'code')
# Modules that only format a report from finished results: editing them
# changes no cell's numbers, so they are not part of the code version.
REPORT_ONLY = ('suite/report.py', 'suite/plots.py', 'suite/stats.py')
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


@lru_cache(maxsize=None)
def code_version() -> Dict[str, str]:
    """mmdrconv's version and a hash of its source files (report-only
    modules excepted), and the versions of the stack it trains with."""
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    digest = hashlib.sha256()
    for path in sorted(glob.glob(osp.join(package, '**', '*.py'),
                                 recursive=True)):
        relative = osp.relpath(path, package).replace(osp.sep, '/')
        if relative in REPORT_ONLY:
            continue
        digest.update(relative.encode() + b'\0')
        with open(path, 'rb') as f:
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


def cell_key(suite: Suite, cell: Cell, digests: Optional[dict] = None
             ) -> dict:
    """The key of ``cell`` (``digests``: see :func:`_digest`)."""
    launcher = suite.launcher or {}
    # Training processes: with a launcher they share the batch.
    processes = ((cell.task.gpus or launcher.get('gpus', 1)) *
                 launcher.get('nnodes', 1)) if launcher else 1
    key = dict(config=_digest(cell.config, cell.task.cfg_options or {},
                              digests),
               budget=dict(max_iters=cell.task.max_iters,
                           processes=processes),
               seed=cell.seed,
               dataset=dataset_parameters(suite, cell),
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
               repeat=repeat, code=code_version())
    return json.loads(json.dumps(key, default=list))
