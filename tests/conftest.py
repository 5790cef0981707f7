import os

import pytest
import torch

# Intra-op threads: the cores shared among pytest-xdist's workers (make
# test runs one per core), also for the tools and cells the tests start, so
# that workers do not oversubscribe the cores.
_WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
THREADS = max(1, min(2, os.cpu_count() or 1) // _WORKERS)
torch.set_num_threads(THREADS)
if _WORKERS > 1:
    for _name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ.setdefault(_name, str(THREADS))

if not torch.cuda.is_available():
    # The Triton kernels run on CPU tensors in Triton's interpreter. Set for
    # the whole session, before anything imports triton: torch.compile (the
    # deploy tests) imports it too, and triton reads the mode once.
    os.environ.setdefault('TRITON_INTERPRET', '1')


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope='session')
def synthetic_data(tmp_path_factory):
    """Small generated COCO- and Cityscapes-format datasets, shared."""
    from mmdrconv.datasets import generate
    root = tmp_path_factory.mktemp('data')
    generate('coco', str(root / 'coco'), num_train=8, num_val=4, seed=2)
    generate('cityscapes', str(root / 'cityscapes'), num_train=4, num_val=2,
             seed=2)
    return root
