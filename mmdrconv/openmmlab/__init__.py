"""The OpenMMLab adapter: everything of mmdrconv that touches OpenMMLab.

Importing it (``custom_imports = dict(imports=['mmdrconv'])`` does, as does
every tool here) registers mmdrconv in the registries and applies the
patches below. The core (``mmdrconv.ops``, ``mmdrconv.layers``,
``mmdrconv.converter``) needs none of it.

Patches of upstream behaviour, each with its reason in its module:

==========================  ================  ==============================
what                        target            module
==========================  ================  ==============================
checkpoint loading policy   mmengine 0.10.7   ``checkpoint`` (weights only,
(every CheckpointLoader                       explicit allowlist, offline
scheme)                                       pretrained lookup)
CPU distributed runs        mmengine 0.10.7   ``distributed`` (gloo, DDP
                                              without device_ids, exit)
==========================  ================  ==============================

Registrations (``registry``): ``DRConv`` / ``DRConv2d`` (conv layers, also
ResNet's ``dcn`` slot), ``ConvertToDRConv`` (any model), and
``DRConvMobileNetV2``, in mmengine's root MODELS registry, which mmdet's
and mmseg's registries inherit.
"""
from . import checkpoint, registry  # noqa: F401
from .checkpoint import (CheckpointError, UntrustedCheckpointError,
                         trust_checkpoints, verify_checkpoint)
from .distributed import close_distributed, use_cpu_distributed

checkpoint.install()

__all__ = [
    'CheckpointError', 'UntrustedCheckpointError', 'trust_checkpoints',
    'verify_checkpoint', 'close_distributed', 'use_cpu_distributed'
]
