from setuptools import find_packages, setup

# What each part of mmdrconv imports, as pip extras. Lower bounds are the
# versions of the tested install (requirements/constraints.txt, which pins
# all of them); upper bounds where a newer release is known not to fit.
# `make install` installs the pins themselves and this package --no-deps.
OPENMMLAB = [
    # mmdrconv.openmmlab, apis, runner, cli, configs: the OpenMMLab stack.
    'mmengine>=0.10.7,<1',
    # mmdet 3.3 / mmseg 1.2 require mmcv < 2.2; mmdet.models and
    # mmseg.models import its compiled ops (mmcv-lite is not enough).
    'mmcv>=2.1.0,<2.2.0',
    'mmdet>=3.3.0,<4',
    'mmsegmentation>=1.2.2,<2',
    # mmseg imports these without declaring them.
    'ftfy>=6.3.1',
    'regex>=2024.11.6',
    # mmengine's `mmdet::` / `mmseg::` config inheritance imports
    # pkg_resources, which setuptools 81 removed.
    'setuptools<81',
]
SUITE = [
    'scipy>=1.14.1',  # mmdrconv.suite.stats: t intervals, paired tests
    'matplotlib>=3.9.4',  # mmdrconv.suite.plots
    'pycocotools>=2.0.8',  # generated COCO masks (RLE); COCO metrics
    # generated Cityscapes label maps (json2labelImg, label ids)
    'cityscapesscripts>=2.2.4',
]
DEPLOY = [
    # mmdrconv.deploy exports with torch.onnx.export(dynamo=True), which
    # needs onnx and onnxscript; ONNX Runtime runs --verify and the
    # runtime benchmark (mmdrconv.analysis.onnx_benchmark).
    'onnx>=1.23.2',
    'onnxscript>=0.7.2',
    'onnxruntime>=1.31.1',
]
TRITON = [
    # the CUDA kernels of region_conv / region_scale (optional: without
    # triton the ops take their PyTorch path).
    'triton>=3.9.0',
]
TESTS = ['pytest>=8.3.4']

setup(
    name='mmdrconv',
    version='0.1.0',
    description='Dynamic Region-Aware Convolution (DRConv) for OpenMMLab',
    packages=find_packages(include=['mmdrconv', 'mmdrconv.*']),
    # The version every test runs on (Makefile: PYTHON_BOOTSTRAP); older
    # ones are not tested (nor supported by torch 2.13).
    python_requires='>=3.11',
    # The core (ops, layers, converter, analysis.timing / complexity) needs
    # torch alone; the extras add what the other parts import.
    install_requires=['torch'],
    extras_require=dict(
        openmmlab=OPENMMLAB,
        # the benchmark suite and the generated datasets (tools/suite.py,
        # tools/generate_data.py) run on the OpenMMLab stack
        suite=OPENMMLAB + SUITE,
        deploy=OPENMMLAB + DEPLOY,  # tools/deployment
        triton=TRITON,
        # the test suite exercises every part (Triton in its interpreter)
        tests=OPENMMLAB + SUITE + DEPLOY + TRITON + TESTS,
        all=OPENMMLAB + SUITE + DEPLOY + TRITON + TESTS,
    ),
)
