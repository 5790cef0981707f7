# Registers DRConv and applies mmdrconv's compatibility fixes (checkpoint
# loading on torch >= 2.6, offline pretrained weights). Every config here
# inherits it, baselines included, so both sides of a comparison run on the
# same stack.
custom_imports = dict(imports=['mmdrconv'], allow_failed_imports=False)
