"""Training-step time of every variant of a suite, side by side in one
process, to size a preset before running it (command line:
mmdrconv/cli/suite_timing.py).

Every model is built from its config (optimizer included) and trained on a
random batch of the config's training batch size at the task's image size.
The variants take turns, round by round (mmdrconv.core.timing's
interleaved rounds), so a change in machine load hits all of them alike;
the ratios to the suite's reference (its first task's standard twin) are
what carries over to a calmer machine. Both wall time and the process's CPU
time are measured: on a machine shared with other jobs, the CPU time of a
single-threaded run (``--threads 1``) is the number that the load disturbs
least.
"""
import logging
from typing import Callable, List


def _train_step(config: str, size) -> Callable[[], None]:
    from mmengine.optim import build_optim_wrapper

    from ..analysis.inputs import random_batch
    from ..apis import model_for_measuring
    cfg, model = model_for_measuring(config)
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
    from mmengine.logging import MMLogger

    from ..core.timing import interleaved_rounds, keep_freed_memory
    keep_freed_memory()
    # The weight-initialisation report of every model is not wanted here.
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    runs, tasks = {}, {task.name: task for task in suite.tasks}
    for task in suite.tasks:
        for variant, config in task.variants.items():
            runs[task.name, variant] = _train_step(config, task.image_size)
            log(f'built {task.name} | {variant}')

    def log_round(index, key, seconds):
        log(f"round {index + 1}: {key[0]} | {key[1]}: "
            f"{seconds['wall']:.3f} s/step, {seconds['process_cpu']:.3f} CPU "
            's/step')

    result = interleaved_rounds(runs, rounds, steps, warmup,
                                clocks=('wall', 'process_cpu'), log=log_round)
    reference = result.seconds(next(iter(runs)), 'process_cpu').median
    return [
        dict(task=name, variant=variant, max_iters=tasks[name].max_iters,
             step_s=result.seconds((name, variant)).median,
             cpu_s=result.seconds((name, variant), 'process_cpu').median,
             vs_reference=result.seconds((name, variant),
                                         'process_cpu').median / reference)
        for name, variant in runs
    ]
