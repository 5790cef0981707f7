from setuptools import find_packages, setup

setup(
    name='mmdrconv',
    version='0.1.0',
    description='Dynamic Region-Aware Convolution (DRConv) for OpenMMLab',
    packages=find_packages(include=['mmdrconv', 'mmdrconv.*']),
    python_requires='>=3.8',
    # The core (ops, layers, converter) needs torch alone; the OpenMMLab
    # adapter, tools and configs need the extra.
    install_requires=['torch'],
    extras_require=dict(openmmlab=[
        'mmengine', 'mmcv>=2.0.0,<2.2.0', 'mmdet>=3.0.0', 'mmsegmentation>=1.0.0'
    ]),
)
