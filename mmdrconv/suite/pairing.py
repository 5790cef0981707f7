"""Common random numbers for the cells of one seed (docs/suite.md).

Within a seed, every variant of a task starts from its standard twin's
initial weights wherever a state-dict entry has the same name and shape, and
draws the same random numbers for data order and augmentation. A paired
difference then measures the change of layer, not the luck of two
independent initialisations.

No cell waits for another: each builds its twin's model itself, under the
seed, and takes its initial state (no training: cheap). The twin's own cell
does the same, so all cells of a seed start from one state.
"""
import os.path as osp
from typing import Optional

import torch
from mmengine.runner.utils import set_random_seed

from ..apis import build_model, load_config


def twin_initial_state(config: str, seed: int,
                       cfg_options: Optional[dict] = None) -> dict:
    """The state dict of ``config``'s model built and initialised
    (``init_weights``) under ``seed``: deterministic, whatever ran before."""
    cfg = load_config(config, cfg_options)
    set_random_seed(seed)
    model = build_model(cfg)
    if hasattr(model, 'init_weights'):
        model.init_weights()
    return model.state_dict()


def load_shared(model: torch.nn.Module, state: dict) -> dict:
    """Copy every entry of ``state`` whose name and shape ``model`` has into
    it; the others keep their own initialisation.

    Returns the counts: ``shared`` / ``not_shared`` state-dict entries of
    ``model``, ``shared_numel`` / ``total_numel`` elements, and
    ``not_shared_modules``, the modules holding the entries not shared.
    """
    own = model.state_dict()
    shared = {k: v for k, v in state.items()
              if k in own and own[k].shape == v.shape}
    model.load_state_dict(shared, strict=False)
    not_shared = [k for k in own if k not in shared]
    return dict(
        shared=len(shared), not_shared=len(not_shared),
        shared_numel=sum(v.numel() for v in shared.values()),
        total_numel=sum(v.numel() for v in own.values()),
        not_shared_modules=sorted({k.rsplit('.', 1)[0] for k in not_shared}))


def start_from_twin(model: torch.nn.Module, twin_config: str, seed: int,
                    cfg_options: Optional[dict] = None) -> dict:
    """Give ``model`` its twin's initial weights where they fit
    (:func:`load_shared`), then reseed every generator with ``seed`` so that
    data augmentation and the model's own sampling start from the same
    state in every variant (the sampler's order depends on the seed alone).
    Returns the report of :func:`load_shared` with ``twin`` and ``seed``."""
    report = load_shared(model, twin_initial_state(twin_config, seed,
                                                   cfg_options))
    set_random_seed(seed)
    return dict(twin=twin_config, seed=seed, **report)


def batch_ids(data_batch) -> list:
    """File names of a batch's samples (its order as the sampler drew it)."""
    samples = data_batch.get('data_samples', ()) \
        if isinstance(data_batch, dict) else ()
    return [osp.basename(s.metainfo.get('img_path', '?')) for s in samples]
