# Loads mmdrconv's OpenMMLab adapter (mmdrconv.openmmlab): registers DRConv
# and applies its checkpoint-loading policy (weights only, explicit
# allowlist; offline pretrained weights). Every config here inherits it,
# baselines included, so both sides of a comparison run on the same stack.
custom_imports = dict(imports=['mmdrconv'], allow_failed_imports=False)
