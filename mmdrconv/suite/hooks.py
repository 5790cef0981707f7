import os.path as osp
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..fileio import dump_json_atomically, load_json

# message_hub keys: saved in checkpoints, so they survive a resume.
PAIRING_INFO = 'suite/pairing'


@HOOKS.register_module(force=True)
class SuiteResultHook(Hook):
    """Writes a suite cell's outcome: the last validation metrics, the
    validation curve (every evaluation), the pairing with the twin and the
    mean training time per iteration, as JSON (rank 0 only)."""

    priority = 'LOWEST'

    def __init__(self, out_file: str):
        self.out_file = out_file
        self.metrics: Optional[dict] = None
        self.curve: list = []

    @property
    def curve_file(self) -> str:
        # Beside the result: the evaluations so far, for a resumed cell.
        return osp.join(osp.dirname(self.out_file), 'curve.json')

    def before_train(self, runner) -> None:
        # Resumed: keep the evaluations up to the checkpoint's iteration;
        # later ones are redone.
        curve = load_json(self.curve_file, list) or []
        self.curve = [p for p in curve if p['iter'] <= runner.iter]
        if self._evaluation_lost(runner):
            # The checkpoint of an evaluation's iteration is saved before
            # that evaluation runs: interrupted between the two, the point
            # would be missing from the curve. Evaluate it now, as the run
            # uninterrupted did, before training on.
            runner.val_loop.run()

    def _evaluation_lost(self, runner) -> bool:
        loop = runner.train_loop
        interval = getattr(loop, 'val_interval', None)
        if not runner.iter or runner.val_loop is None or not interval or \
                runner.iter >= getattr(loop, 'max_iters', 0):
            return False  # not resumed, or the final one (train_cell's)
        return runner.iter >= getattr(loop, 'val_begin', 1) and \
            runner.iter % interval == 0 and \
            all(p['iter'] != runner.iter for p in self.curve)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = {k: float(v) for k, v in (metrics or {}).items()}
        self.curve = [p for p in self.curve if p['iter'] != runner.iter]
        self.curve.append(dict(iter=runner.iter, metrics=self.metrics))
        if is_main_process():
            dump_json_atomically(self.curve, self.curve_file)

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
                 if steady else None,
                 curve=self.curve,
                 pairing=runner.message_hub.get_info(PAIRING_INFO)),
            self.out_file)


@HOOKS.register_module(force=True)
class PairedStartHook(Hook):
    """Starts a suite cell from its twin's initial weights where names and
    shapes match, with every generator reseeded (``pairing.py``), and
    records what was shared and the first batch's file names.

    Runs after the Runner's own weight initialisation (``before_train``
    follows ``init_weights``) and only on a fresh start: a resumed cell has
    its weights from the checkpoint.
    """

    priority = 'VERY_HIGH'

    def __init__(self, twin_config: str, seed: int,
                 cfg_options: Optional[dict] = None):
        self.twin_config = twin_config
        self.seed = seed
        self.cfg_options = cfg_options

    def before_train(self, runner) -> None:
        if runner.iter > 0:
            return
        from .pairing import start_from_twin
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        runner.message_hub.update_info(
            PAIRING_INFO, start_from_twin(model, self.twin_config, self.seed,
                                          self.cfg_options))

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        info = runner.message_hub.get_info(PAIRING_INFO)
        if runner.iter == 0 and info is not None and \
                'first_batch' not in info:
            from .pairing import batch_ids
            runner.message_hub.update_info(
                PAIRING_INFO, dict(info, first_batch=batch_ids(data_batch)))
