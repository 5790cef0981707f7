from setuptools import find_packages, setup

setup(
    name='mmdrconv',
    version='0.1.0',
    description='Dynamic Region-Aware Convolution (DRConv) for OpenMMLab',
    packages=find_packages(include=['mmdrconv', 'mmdrconv.*']),
    python_requires='>=3.8',
    install_requires=['torch', 'mmengine', 'mmcv>=2.0.0,<2.2.0'],
)
