"""Checkpoints that survive a full disk or an interrupt while being saved.

mmengine 0.10.7 writes ``iter_N.pth`` in place, and its CheckpointHook deletes
the outdated checkpoint (``max_keep_ckpts``) *before* saving the new one and
rewrites ``last_checkpoint`` in place. A full disk or Ctrl-C during the save
then leaves a truncated newest file, the previous one already deleted, and
``last_checkpoint`` pointing at a file that is gone: nothing to resume from.

:func:`patch_atomic_checkpoint_saving` fixes all three: a checkpoint is
written to a temporary file in the same folder, flushed to disk and renamed
over the final name (``os.replace`` is atomic on POSIX and Windows), so the
final name holds either the old or the complete new file; the outdated
checkpoint is deleted only after the new one is saved; ``last_checkpoint``
is replaced the same way (the file helpers: :mod:`mmdrconv.fileio`).
"""
import os
import os.path as osp

import torch

from ..fileio import replace_atomically, write_text_atomically

_PATCHED = '_mmdrconv_atomic'


def _is_local(filename) -> bool:
    return '://' not in str(filename)


def save_checkpoint_atomically(checkpoint,
                               filename,
                               file_client_args=None,
                               backend_args=None,
                               _fallback=None):
    """mmengine's ``save_checkpoint`` for local files, written atomically.
    Other destinations (``pavi://``, ``s3://``, custom backends) go to
    mmengine's own function."""
    if _is_local(filename) and file_client_args is None and \
            not backend_args:
        replace_atomically(str(filename),
                           lambda file: torch.save(checkpoint, file))
        return
    _fallback(checkpoint, filename, file_client_args=file_client_args,
              backend_args=backend_args)


def _keep_earlier_file(runner, path: str) -> None:
    """Rename the local checkpoint ``path`` if it exists: it was written by
    another run (this one is about to save under its name, e.g. resumed from
    an older checkpoint of a run that went further), and is not this run's
    to replace."""
    if not _is_local(path) or not osp.isfile(path):
        return
    root, ext = osp.splitext(path)
    kept, number = f'{root}.earlier{ext}', 1
    while osp.exists(kept):
        number += 1
        kept = f'{root}.earlier{number}{ext}'
    os.replace(path, kept)
    runner.logger.warning(f'{path} was written by an earlier run, not this '
                          f'one: kept as {kept}')


def _save_checkpoint_with_step(self, runner, step, meta):
    """CheckpointHook._save_checkpoint_with_step of mmengine 0.10.7, with the
    outdated checkpoint removed after the new one is saved, not before,
    ``last_checkpoint`` replaced atomically, and a checkpoint of the same
    name that this run did not write kept (renamed), not replaced."""
    from mmengine.dist import is_main_process
    outdated = None
    if self.max_keep_ckpts > 0:
        # _save_checkpoint and _save_best_checkpoint may both call this in
        # one epoch with the same step.
        if not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.file_backend.join_path(
                    self.out_dir,
                    self.filename_tmpl.format(self.keep_ckpt_ids.popleft()))
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

    ckpt_filename = self.filename_tmpl.format(step)
    self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
    runner.message_hub.update_info('last_ckpt', self.last_ckpt)
    written = self.__dict__.setdefault('_mmdrconv_written', set())
    if is_main_process() and self.last_ckpt not in written:
        _keep_earlier_file(runner, self.last_ckpt)
    runner.save_checkpoint(
        self.out_dir,
        ckpt_filename,
        self.file_client_args,
        save_optimizer=self.save_optimizer,
        save_param_scheduler=self.save_param_scheduler,
        meta=meta,
        by_epoch=self.by_epoch,
        backend_args=self.backend_args,
        **self.args)
    if not is_main_process():
        return
    written.add(self.last_ckpt)
    write_text_atomically(osp.join(runner.work_dir, 'last_checkpoint'),
                          self.last_ckpt)
    if outdated is not None and outdated != self.last_ckpt:
        if self.file_backend.isfile(outdated):
            self.file_backend.remove(outdated)
        elif self.file_backend.isdir(outdated):  # deepspeed: a folder
            self.file_backend.rmtree(outdated)


def patch_atomic_checkpoint_saving() -> None:
    """Make mmengine save checkpoints atomically (idempotent).

    Replaces ``save_checkpoint`` where mmengine's Runner, its package and
    its single-device strategy look it up, and
    ``CheckpointHook._save_checkpoint_with_step``.
    """
    import mmengine.runner
    import mmengine.runner.checkpoint as checkpoint_module
    import mmengine.runner.runner as runner_module
    from mmengine.hooks import CheckpointHook

    original = checkpoint_module.save_checkpoint
    if getattr(original, _PATCHED, False):
        return

    def save_checkpoint(checkpoint, filename, file_client_args=None,
                        backend_args=None):
        save_checkpoint_atomically(checkpoint, filename, file_client_args,
                                   backend_args, _fallback=original)

    save_checkpoint.__doc__ = save_checkpoint_atomically.__doc__
    setattr(save_checkpoint, _PATCHED, True)
    for module in (checkpoint_module, runner_module, mmengine.runner):
        module.save_checkpoint = save_checkpoint
    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step
