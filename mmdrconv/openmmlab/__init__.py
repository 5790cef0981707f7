"""The OpenMMLab adapter: everything of mmdrconv that touches OpenMMLab.

Importing it (``custom_imports = dict(imports=['mmdrconv'])`` does, as does
every tool here) registers mmdrconv in the registries and applies the
patches below. The core (``mmdrconv.core.ops``, ``mmdrconv.core.layers``,
``mmdrconv.core.converter``) needs none of it.

Patches of upstream behaviour, each with its reason in its module:

==========================  ================  ==============================
what                        target            module
==========================  ================  ==============================
checkpoint loading policy   mmengine 0.10.7   ``checkpoint`` (weights only,
(every CheckpointLoader                       explicit allowlist, offline
scheme)                                       pretrained lookup)
checkpoint saving           mmengine 0.10.7   ``atomic_save`` (temp file +
(save_checkpoint,                             rename; the outdated file is
CheckpointHook)                               deleted after the new one)
mixed precision on the CPU  mmengine 0.10.7   ``amp`` (bfloat16 autocast
                                              optim wrapper for ``--amp``)
CPU distributed runs        mmengine 0.10.7   ``distributed`` (gloo, DDP
                                              without device_ids, exit)
resume (random states)      mmengine 0.10.7   ``randomness`` (RNG states in
                                              checkpoints, restored after
                                              the replay; validation
                                              draws none of training's)
==========================  ================  ==============================

Registrations (``registry``): ``DRConv`` / ``DRConv2d`` (conv layers, also
ResNet's ``dcn`` slot), ``ConvertToDRConv`` (any model),
``DRConvMobileNetV2``, and the suite's controls ``PointwiseConv`` and
``FrozenConv`` (conv layers, also for the ``dcn`` slot) and
``WithPointwiseConvs`` (any module), in mmengine's root MODELS registry,
which mmdet's and mmseg's registries inherit.
"""
from . import amp, checkpoint, registry  # noqa: F401
from .atomic_save import patch_atomic_checkpoint_saving
from .checkpoint import (CheckpointError, UntrustedCheckpointError,
                         trust_checkpoints, verify_checkpoint)
from .distributed import close_distributed, use_cpu_distributed

checkpoint.install()
patch_atomic_checkpoint_saving()

__all__ = [
    'CheckpointError', 'UntrustedCheckpointError', 'trust_checkpoints',
    'verify_checkpoint', 'close_distributed', 'use_cpu_distributed'
]
