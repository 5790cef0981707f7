import os

import pytest
import torch

# Two cores: keep intra-op threads predictable and the run short.
torch.set_num_threads(min(2, os.cpu_count() or 1))

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
