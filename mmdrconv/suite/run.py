"""Run a suite: generate data, train and evaluate every cell, profile every
variant, and write the report. Finished cells are skipped, interrupted ones
resume from their last checkpoint, and a failing cell is recorded without
stopping the others."""
import collections
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import List, Optional

import mmengine

from ..datasets import generate
from .report import write_report
from .spec import Cell, Suite, load_suite

# Lines of a cell's output echoed live: the progress display.
PROGRESS_MARKERS = ('Iter(train)', 'Iter(val)', 'Error', 'Traceback',
                    'resumed', 'Resumed')
_PROGRESS_FIELDS = re.compile(
    r'(Iter\((?:train|val)\)\s*\[\s*\d+/\d+\])|(eta: \S+)|'
    r'(?<![\w.])(loss: [\d.]+)|((?:coco/(?:bbox|segm)_mAP|mIoU): [\d.]+)')


def _progress(line: str) -> str:
    """The compact form of an mmengine log line: iteration, eta, loss,
    headline metrics."""
    fields = [m.group(0) for m in _PROGRESS_FIELDS.finditer(line)]
    return '  '.join(fields) if fields else line.rstrip()[-200:]


def _data_options(suite: Suite, cell: Cell) -> dict:
    """Point a config at the suite's copy of its dataset."""
    data = suite.datasets.get(cell.task.dataset, {})
    if not data.get('generate', False):
        return {}
    root = data['root'].rstrip('/') + '/'
    options = {f'{loader}.dataset.data_root': root
               for loader in ('train_dataloader', 'val_dataloader',
                              'test_dataloader')}
    if data['kind'] == 'coco':
        for split, evaluator in (('val', 'val_evaluator'),
                                 ('val', 'test_evaluator')):
            options[f'{evaluator}.ann_file'] = \
                f'{root}annotations/instances_{split}.json'
    return options


def _stream(command: List[str], log_file: str, prefix: str) -> tuple:
    """Run ``command``, echo its progress lines, keep all in ``log_file``."""
    tail = collections.deque(maxlen=40)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    with open(log_file, 'a') as log, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=env) as process:
        for line in process.stdout:
            log.write(line)
            tail.append(line)
            if any(marker in line for marker in PROGRESS_MARKERS):
                print(f'{prefix} {_progress(line)}', flush=True)
        code = process.wait()
    return code, ''.join(tail)


def _cell_command(suite: Suite, cell: Cell, resume: bool) -> List[str]:
    options = {**_data_options(suite, cell), **cell.task.cfg_options}
    args = [cell.config, cell.work_dir, cell.result_file, '--seed',
            str(cell.seed)]
    if cell.task.max_iters:
        args += ['--max-iters', str(cell.task.max_iters)]
    if resume:
        args.append('--resume')
    if options:
        args += ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
    launcher = suite.launcher or {}
    if launcher.get('type') == 'torchrun':
        gpus = cell.task.gpus or launcher.get('gpus', 1)
        return [sys.executable, '-m', 'torch.distributed.run',
                f'--nproc_per_node={gpus}',
                f"--nnodes={launcher.get('nnodes', 1)}",
                '-m', 'mmdrconv.suite.cell'] + args + ['--launcher',
                                                       'pytorch']
    return [sys.executable, '-m', 'mmdrconv.suite.cell'] + args


def run_cell(suite: Suite, cell: Cell, index: int, total: int) -> dict:
    prefix = f'[{suite.name} {index}/{total}]'
    if osp.isfile(cell.result_file):
        result = mmengine.load(cell.result_file)
        if result.get('status') == 'ok':
            print(f'{prefix} {cell.label}: finished earlier, skipped',
                  flush=True)
            return result
    os.makedirs(cell.work_dir, exist_ok=True)
    resume = osp.isfile(osp.join(cell.work_dir, 'last_checkpoint'))
    print(f'{prefix} {cell.label}: '
          f"{'resuming from its last checkpoint' if resume else 'training'}"
          f" ({cell.config})", flush=True)
    start = time.time()
    code, tail = _stream(_cell_command(suite, cell, resume),
                         osp.join(cell.work_dir, 'cell.log'), prefix)
    if code == 0 and osp.isfile(cell.result_file):
        result = mmengine.load(cell.result_file)
    else:
        result = dict(status='failed', error=_last_error(tail),
                      exit_code=code)
        mmengine.dump(result, cell.result_file)
        print(f'{prefix} {cell.label}: FAILED ({result["error"]})',
              flush=True)
    result['wall_time_s'] = result.get('wall_time_s', time.time() - start)
    mmengine.dump(result, cell.result_file)
    return result


def _last_error(tail: str) -> str:
    lines = [line for line in tail.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if 'Error' in line or 'Exception' in line:
            return line.strip()[-300:]
    return lines[-1].strip()[-300:] if lines else 'no output'


def profile_variants(suite: Suite) -> dict:
    profiles = {}
    for task in suite.tasks:
        for variant, config in task.variants.items():
            out = osp.join(suite.work_dir, task.name, variant,
                           'profile.json')
            if not osp.isfile(out):
                os.makedirs(osp.dirname(out), exist_ok=True)
                print(f'[{suite.name}] profiling {task.name} | {variant}',
                      flush=True)
                command = [sys.executable, '-m', 'mmdrconv.analysis.profile',
                           config, '--out', out, '--size',
                           *map(str, task.image_size),
                           '--repeat', str(suite.profile.get('repeat', 10))]
                code, tail = _stream(command, out + '.log',
                                     f'[{suite.name}]')
                if code != 0:
                    profiles[(task.name, variant)] = dict(
                        error=_last_error(tail))
                    continue
            profiles[(task.name, variant)] = mmengine.load(out)
    return profiles


def prepare_data(suite: Suite) -> None:
    for name, data in suite.datasets.items():
        if data.get('generate', False):
            options = {k: v for k, v in data.items()
                       if k not in ('generate', 'kind', 'root')}
            print(f'[{suite.name}] dataset {name}: {data["root"]}',
                  flush=True)
            generate(data['kind'], data['root'], **options)


def run_suite(path: str, work_dir: Optional[str] = None,
              skip_profile: bool = False) -> dict:
    suite = load_suite(path, work_dir)
    start = time.time()
    prepare_data(suite)
    cells = suite.cells()
    results = [run_cell(suite, cell, i + 1, len(cells))
               for i, cell in enumerate(cells)]
    profiles = {} if skip_profile else profile_variants(suite)
    report = write_report(suite, cells, results, profiles,
                          wall_time_s=time.time() - start)
    print(f'[{suite.name}] report: {report["markdown"]}', flush=True)
    return report


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(
        description='Run a benchmark suite (baseline vs DRConv)')
    parser.add_argument('suite',
                        help='suite file, e.g. configs/suites/demo.py')
    parser.add_argument('--work-dir', help='default: work_dirs/<suite name>')
    parser.add_argument('--skip-profile', action='store_true',
                        help='no latency / memory / FLOPs measurements')
    args = parser.parse_args(argv)
    report = run_suite(args.suite, args.work_dir, args.skip_profile)
    print(open(report['markdown']).read())
    if report['failed']:
        sys.exit(f"{report['failed']} cell(s) failed; see the report")


if __name__ == '__main__':
    main()
