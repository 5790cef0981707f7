"""Analysis of configs' models (OpenMMLab side): ``profile`` (params,
multiply-adds, latency, memory of a config's model end to end), ``inputs``
(random batches a config's data preprocessor accepts), ``onnx_benchmark``
(ONNX Runtime vs PyTorch) and ``region_maps`` (region maps painted over an
image). Import from the modules. The torch-only measuring harness they use
is ``mmdrconv.core.timing`` / ``mmdrconv.core.complexity``.
"""
