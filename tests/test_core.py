"""The core (mmdrconv.core.ops, mmdrconv.core.layers, convert_to_drconv) needs torch
alone: checked in fresh interpreters, one of them with OpenMMLab hidden as
if it were not installed."""
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
OPENMMLAB = ('mmengine', 'mmcv', 'mmdet', 'mmseg')


def run_python(code):
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_core_imports_without_openmmlab_loaded():
    out = run_python(
        'import sys, mmdrconv.core.ops, mmdrconv.core.layers, mmdrconv\n'
        'from mmdrconv import DRConv, convert_to_drconv, region_conv\n'
        'from mmdrconv.core.complexity import count_complexity\n'
        f'print(sorted({{m.split(".")[0] for m in sys.modules}} & '
        f'set({OPENMMLAB!r})))')
    assert out.strip() == '[]'


def test_core_install_trains_drconv_in_a_plain_module():
    # OpenMMLab made unimportable, as in `pip install torch mmdrconv`.
    out = run_python(f'''
import sys
class NoOpenMMLab:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {OPENMMLAB!r}:
            raise ImportError('not installed: ' + name)
sys.meta_path.insert(0, NoOpenMMLab())
import torch
from mmdrconv import DRConv
torch.manual_seed(0)
class Net(torch.nn.Module):
    def __init__(self, generator):
        super().__init__()
        self.conv = DRConv(3, 8, 3, padding=1, region_num=4,
                           generator=generator)
        self.head = torch.nn.Conv2d(8, 1, 1)
    def forward(self, x):
        return self.head(torch.relu(self.conv(x)))
x = torch.randn(4, 3, 12, 12)
target = x[:, :1].roll(1, dims=2) * 2
for generator in ('modulated', 'mixture', 'paper'):
    net = Net(generator)
    optim = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.mse_loss(net(x), target)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    print(generator, losses[0], losses[-1])
    assert losses[-1] < 0.6 * losses[0], (generator, losses)
''')
    assert len(out.strip().splitlines()) == 3
