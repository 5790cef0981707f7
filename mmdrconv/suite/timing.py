"""Training-step time of every variant of a suite, side by side in one
process, to size a preset before running it::

    python -m mmdrconv.suite.timing configs/suites/full.py [--rounds 3]

Every model is built from its config (optimizer included) and trained on a
random batch of the config's training batch size at the task's image size.
The variants take turns, round by round, so a change in machine load hits
all of them alike; the ratios to the suite's reference (its first task's
standard twin) are what carries over to a calmer machine. Both wall time and
the process's CPU time are measured: on a machine shared with other jobs,
the CPU time of a single-threaded run (``--threads 1``) is the number that
the load disturbs least.
"""
import argparse
import logging
import os
import statistics
import time
from typing import List

import torch


def _train_step(config: str, size) -> callable:
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper

    from ..analysis.inputs import random_batch
    from ..apis import build_model, load_config
    cfg = load_config(config)
    model = revert_sync_batchnorm(build_model(cfg))
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = random_batch(cfg, batch_size=cfg.train_dataloader.batch_size,
                         size=tuple(size))

    def step():
        model.train_step(batch, optim)

    return step


def time_variants(suite, rounds: int = 3, steps: int = 3, warmup: int = 2,
                  log=print) -> List[dict]:
    """Median seconds per training step of every task x variant."""
    from ..analysis.timing import keep_freed_memory
    keep_freed_memory()
    torch.manual_seed(0)
    # The weight-initialisation report of every model is not wanted here.
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    runs = []
    for task in suite.tasks:
        for variant, config in task.variants.items():
            step = _train_step(config, task.image_size)
            for _ in range(warmup):
                step()
            runs.append(dict(task=task, variant=variant, step=step,
                             times=[]))
            log(f'built {task.name} | {variant}')
    for index in range(rounds):
        for run in runs:
            wall, cpu = [], []
            for _ in range(steps):
                start, start_cpu = time.perf_counter(), time.process_time()
                run['step']()
                wall.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
            run['times'].append(statistics.median(wall))
            run.setdefault('cpu', []).append(statistics.median(cpu))
            log(f"round {index + 1}: {run['task'].name} | {run['variant']}: "
                f"{run['times'][-1]:.3f} s/step, {run['cpu'][-1]:.3f} CPU "
                's/step')
    reference = statistics.median(runs[0]['cpu'])
    return [
        dict(task=r['task'].name, variant=r['variant'],
             max_iters=r['task'].max_iters,
             step_s=statistics.median(r['times']),
             cpu_s=statistics.median(r['cpu']),
             vs_reference=statistics.median(r['cpu']) / reference)
        for r in runs
    ]


def main(argv=None):
    from .spec import load_suite
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('suite')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (default: torch\'s)')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    suite = load_suite(args.suite)
    rows = time_variants(suite, args.rounds, args.steps,
                         log=lambda line: print(line, flush=True))
    seeds = len(suite.seeds)
    print(f'{"task":24s} {"variant":15s} {"s/step":>7s} {"CPU s":>7s} '
          f'{"CPU x ref":>9s} {"steps x seeds":>13s} {"wall min":>8s}')
    total = 0.0
    for row in rows:
        iters = (row['max_iters'] or 0) * seeds
        total += row['step_s'] * iters / 60
        print(f"{row['task']:24s} {row['variant']:15s} "
              f"{row['step_s']:7.3f} {row['cpu_s']:7.3f} "
              f"{row['vs_reference']:9.2f} {iters:13d} "
              f"{row['step_s'] * iters / 60:8.1f}")
    print(f'training steps of the whole suite at these wall times: '
          f'{total:.1f} min (without start-up, evaluation and profiling); '
          f'{torch.get_num_threads()} threads; load average '
          f'{os.getloadavg()[0]:.1f}')


if __name__ == '__main__':
    main()
