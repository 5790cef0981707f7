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
is replaced the same way.
"""
import os
import os.path as osp
import tempfile

import torch

_PATCHED = '_mmdrconv_atomic'


def _is_local(filename) -> bool:
    return '://' not in str(filename)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _replace_atomically(filename: str, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``filename``, then
    rename it to ``filename``; on any failure the temporary file is removed
    and ``filename`` is left as it was."""
    folder = osp.dirname(osp.abspath(filename))
    os.makedirs(folder, exist_ok=True)
    fd, temporary = tempfile.mkstemp(
        dir=folder, prefix=f'.{osp.basename(filename)}.', suffix='.partial')
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private (0600)
        with os.fdopen(fd, 'wb') as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, filename)
    except BaseException:  # also KeyboardInterrupt: never leave the partial
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise


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
        _replace_atomically(str(filename),
                            lambda file: torch.save(checkpoint, file))
        return
    _fallback(checkpoint, filename, file_client_args=file_client_args,
              backend_args=backend_args)


def write_text_atomically(filename: str, text: str) -> None:
    _replace_atomically(filename, lambda file: file.write(text.encode()))


def dump_json_atomically(obj, filename: str) -> None:
    """``mmengine.dump(obj, filename)`` for .json, never half-written."""
    import mmengine
    write_text_atomically(filename, mmengine.dump(obj, file_format='json'))


def _save_checkpoint_with_step(self, runner, step, meta):
    """CheckpointHook._save_checkpoint_with_step of mmengine 0.10.7, with the
    outdated checkpoint removed after the new one is saved, not before, and
    ``last_checkpoint`` replaced atomically."""
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
