"""Helpers shared by the layer and op tests (not part of the package)."""
import torch


def randomize(module, std=0.3):
    """Every parameter of ``module`` drawn from N(0, std^2), in place: away
    from the initialisation, where the regions of the default generator are
    equal and some paths are trivially zero."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * std)
    return module
