"""Helpers shared by the tests (not part of the package)."""
import os.path as osp

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The generated-data DRConv configs most tests train, build or check.
DET = osp.join(REPO, 'configs/synthetic/'
               'mask-rcnn_r50-w16-drconv-c3-c5_fpn_synthetic-coco.py')
SEG = osp.join(REPO, 'configs/synthetic/'
               'deeplabv3_r50-w16-d8-drconv-c3-c5_synthetic-cityscapes.py')


def randomize(module, std=0.3):
    """Every parameter of ``module`` drawn from N(0, std^2), in place: away
    from the initialisation, where the regions of the default generator are
    equal and some paths are trivially zero."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * std)
    return module
