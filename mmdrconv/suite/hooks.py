from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..openmmlab.atomic_save import dump_json_atomically


@HOOKS.register_module(force=True)
class SuiteResultHook(Hook):
    """Writes a suite cell's outcome: the last validation metrics and the
    mean training time per iteration, as JSON (rank 0 only)."""

    priority = 'LOWEST'

    def __init__(self, out_file: str):
        self.out_file = out_file
        self.metrics: Optional[dict] = None

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = {k: float(v) for k, v in (metrics or {}).items()}

    def after_run(self, runner) -> None:
        if self.metrics is not None:
            self.write(runner)

    def write(self, runner) -> None:
        if not is_main_process():
            return
        times = runner.message_hub.get_scalar('train/time') \
            if 'train/time' in runner.message_hub.log_scalars else None
        history = list(times.data[0]) if times is not None else []
        # The first iterations pay for oneDNN primitive creation.
        steady = history[5:] or history
        # Atomic: a cell interrupted while writing must not leave a file
        # that stops the suite's next run.
        dump_json_atomically(
            dict(status='ok', metrics=self.metrics, iters=runner.iter,
                 train_time_per_iter=(sum(steady) / len(steady))
                 if steady else None), self.out_file)
