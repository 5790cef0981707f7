"""Random states in checkpoints: a resumed run is the run it continues.

Patch of mmengine 0.10.7's resume, which restores weights, optimizer,
schedulers and iteration but no random state: the resumed run continues
from the seed's start, then replays the batches it skips (loading them
again), so from the first resumed iteration on its dropout, RoI sampling
and main-process augmentation draw other numbers than the uninterrupted
run (a different run, though the suite pairs it as the same).

:class:`RandomStateHook` (registered by ``mmdrconv.runner.build_runner``):

- every checkpoint holds the random states of every rank
  (``checkpoint['random_states']``): torch's (CPU and CUDA), numpy's
  global generator's and Python's ``random``, as tensors and builtins, so
  that they load with ``weights_only=True`` and the checkpoint allowlist
  unchanged (:mod:`mmdrconv.openmmlab.checkpoint`);
- a resumed run restores them right before it fetches the first batch
  after the resume point. With an iteration-based loop that is after
  mmengine's replay of the skipped batches, which moves the sampler to its
  position and generator state and takes the data workers' augmentation
  states to where they were (they load the same batches again); with an
  epoch-based loop, at the start of the resumed epoch;
- validation runs with the training's random states set aside and
  restored after it: the uninterrupted run validates after the checkpoint
  of its iteration, the run resumed from that checkpoint does not, and
  validation must not move the training's random numbers.

What it cannot restore, and says so at resume: augmentation states kept by
data workers that persist across the epochs of an epoch-based loop (they
live in the worker processes, and no batch is replayed), and a resume in
the middle of an epoch-based loop's epoch (mmengine restarts the epoch).
"""
import logging
import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

CHECKPOINT_KEY = 'random_states'


def random_states() -> dict:
    """This process's random states, as tensors and builtins."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states = dict(
        torch=torch.get_rng_state(),
        numpy=dict(kind=kind, keys=torch.from_numpy(keys.astype(np.int64)),
                   pos=int(pos), has_gauss=int(has_gauss),
                   gauss=float(gauss)),
        python=random.getstate())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict) -> None:
    """Restore what :func:`random_states` returned."""
    torch.set_rng_state(states['torch'])
    numpy = states['numpy']
    np.random.set_state((numpy['kind'], numpy['keys'].numpy().astype(
        np.uint32), numpy['pos'], numpy['has_gauss'], numpy['gauss']))
    version, internal, gauss_next = states['python']
    random.setstate((version, tuple(internal), gauss_next))
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


class _RestoreAfterReplay:
    """Stands in for IterBasedTrainLoop's data iterator during a resume: it
    passes on the batches mmengine replays to skip what was trained, then
    restores the random states before the next batch is fetched, and gives
    the loop its own iterator back."""

    def __init__(self, loop: IterBasedTrainLoop, states: dict):
        self.loop, self.states = loop, states
        self.iterator = loop.dataloader_iterator
        self.replayed = loop.iter  # what mmengine's run() skips

    def __iter__(self):
        return self

    def __next__(self):
        if self.replayed > 0:
            self.replayed -= 1
            return next(self.iterator)
        set_random_states(self.states)
        self.loop.dataloader_iterator = self.iterator
        return next(self.iterator)


class RandomStateHook(Hook):
    """Saves the random states in checkpoints and restores them on resume
    (see the module's documentation)."""

    # Before CheckpointHook (VERY_LOW) in after_train_iter / _epoch, where
    # a distributed run gathers every rank's states for the checkpoint.
    priority = 'LOW'

    def __init__(self):
        self._gathered: Optional[List[dict]] = None  # distributed runs
        self._outside_validation: Optional[dict] = None
        self._to_restore: Optional[dict] = None
        self._none_saved = False  # a checkpoint of an earlier version

    # ------------------------------------------------------------- saving
    def _gather(self) -> None:
        if get_world_size() > 1:  # before_save_checkpoint runs on rank 0
            self._gathered = all_gather_object(random_states())

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self._gather()

    def after_train_epoch(self, runner) -> None:
        self._gather()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._gathered is not None:
            states = self._gathered
        else:  # the training's states, also when saved during validation
            states = [self._outside_validation or random_states()]
        checkpoint[CHECKPOINT_KEY] = states

    # ---------------------------------------------------------- validation
    def before_val(self, runner) -> None:
        self._outside_validation = random_states()

    def after_val(self, runner) -> None:
        if self._outside_validation is not None:
            set_random_states(self._outside_validation)
            self._outside_validation = None

    # ------------------------------------------------------------ resuming
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # Also called by load_from without resume (weights for a new run):
        # before_train restores only where training continues (iter > 0).
        states = checkpoint.get(CHECKPOINT_KEY)
        self._to_restore, self._none_saved = None, states is None
        if states is None:
            return
        if len(states) != get_world_size():
            print_log(
                f'The checkpoint holds the random states of {len(states)} '
                f'processes, this run has {get_world_size()}: they are not '
                'restored, so the resumed run draws other random numbers '
                'than the interrupted one would have.', logger='current',
                level=logging.WARNING)
            return
        self._to_restore = states[get_rank()]

    def before_train(self, runner) -> None:
        states, self._to_restore = self._to_restore, None
        loop = runner.train_loop
        if loop.iter == 0:  # a new run (weights from load_from, if any)
            return
        if states is None:
            if self._none_saved:
                print_log('The checkpoint holds no random states (saved '
                          'before mmdrconv kept them): the resumed run draws '
                          'other random numbers than the interrupted one '
                          'would have.', logger='current',
                          level=logging.WARNING)
            return
        if isinstance(loop, IterBasedTrainLoop):
            loop.dataloader_iterator = _RestoreAfterReplay(loop, states)
        elif isinstance(loop, EpochBasedTrainLoop):
            self._warn_unrestorable(loop)
            set_random_states(states)  # the epoch's iterator comes next
        else:
            print_log(f'{type(loop).__name__}: the random states of the '
                      'checkpoint are not restored (known loops: '
                      'IterBasedTrainLoop, EpochBasedTrainLoop).',
                      logger='current', level=logging.WARNING)

    @staticmethod
    def _warn_unrestorable(loop: EpochBasedTrainLoop) -> None:
        dataloader = loop.dataloader
        if loop.iter % max(len(dataloader), 1):
            print_log('Resumed in the middle of an epoch: mmengine trains the '
                      'epoch again from its start, so this run differs from '
                      'the interrupted one.', logger='current',
                      level=logging.WARNING)
        if dataloader.num_workers and dataloader.persistent_workers:
            print_log('The data workers persist across epochs, and their '
                      'augmentation states are not in the checkpoint: the '
                      'resumed run augments differently from the '
                      'interrupted one (persistent_workers=False or an '
                      'IterBasedTrainLoop restores them).',
                      logger='current', level=logging.WARNING)
