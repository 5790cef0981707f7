"""Inference latency of configs' exported parts in PyTorch (eager) and ONNX
Runtime (CPU), side by side in one process.

Models keep their initialisation: latency does not depend on trained
values. The export itself is mmdrconv.deploy's (the graph that
tools/deployment/export_onnx.py writes).
"""
import os.path as osp
import tempfile
from functools import partial
from typing import Optional, Sequence

import torch

from ..apis import model_for_measuring
from ..deploy import (INPUT_NAME, deployable, export_onnx, onnx_session,
                      run_torch)
from ..core.timing import interleaved_rounds, keep_freed_memory, num_threads

RUNTIMES = ('torch', 'onnx')


def benchmark_runtimes(configs: Sequence[str],
                       shape: Sequence[int] = (128, 256),
                       batch_size: int = 1,
                       rounds: int = 5,
                       repeat: int = 5,
                       threads: int = 2,
                       work_dir: Optional[str] = None) -> dict:
    """Time each config's exported part in both runtimes, in paired,
    interleaved rounds (mmdrconv.core.timing: each (config, runtime)
    pair takes the median of ``repeat`` calls per round; ratios are taken
    within a round). Both runtimes use ``threads`` intra-op threads.

    Returns ``{'ms': {(config, runtime): median ms}, 'onnx_vs_torch':
    {config: ratio}, 'vs_first': {(config, runtime): ratio to configs[0]}}``,
    each ratio a Spread (median, lowest, highest round).
    """
    if not configs:
        raise ValueError('benchmark_runtimes needs at least one config')
    inputs = torch.randn(batch_size, 3, *shape)
    work_dir = work_dir or tempfile.mkdtemp(prefix='mmdrconv-onnx-')
    with num_threads(threads):
        keep_freed_memory()
        calls = {}
        for index, config in enumerate(configs):
            cfg, model = model_for_measuring(config)
            module = deployable(cfg, model)
            path = osp.join(work_dir, f'model{index}.onnx')
            export_onnx(module, path, shape, batch_size)
            session = onnx_session(path, threads)
            feed = {INPUT_NAME: inputs.numpy()}
            calls[config, 'torch'] = partial(run_torch, module, inputs)
            calls[config, 'onnx'] = partial(session.run, None, feed)
        result = interleaved_rounds(calls, rounds, repeat)
    return dict(
        ms={key: result.seconds(key).median * 1e3 for key in calls},
        onnx_vs_torch={c: result.ratio((c, 'onnx'), (c, 'torch'))
                       for c in configs},
        vs_first={(c, rt): result.ratio((c, rt), (configs[0], rt))
                  for c in configs for rt in RUNTIMES})
