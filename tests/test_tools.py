"""tools/ end to end on small generated data: train, interrupt and resume,
test with the real metrics, 2-process DDP, analysis tools."""
import json
import os
import os.path as osp
import pickle
import socket
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DET = 'configs/synthetic/mask-rcnn_r50-w16-drconv-c3-c5_fpn_synthetic-coco.py'
SEG = ('configs/synthetic/'
       'deeplabv3_r50-w16-d8-drconv-c3-c5_synthetic-cityscapes.py')


@pytest.fixture
def data(synthetic_data):
    return synthetic_data


def data_options(root, max_iters, coco=False, val_interval=None):
    options = [f'train_cfg.max_iters={max_iters}',
               f'train_cfg.val_interval={val_interval or max_iters}',
               'default_hooks.checkpoint.interval=2',
               'train_dataloader.batch_size=2', 'randomness.seed=0']
    options += [f'{loader}.dataset.data_root={root}'
                for loader in ('train_dataloader', 'val_dataloader',
                               'test_dataloader')]
    if coco:
        options += [f'{evaluator}.ann_file={root}annotations/'
                    'instances_val.json'
                    for evaluator in ('val_evaluator', 'test_evaluator')]
    return options


def det_options(data, max_iters, val_interval=None):
    return data_options(f'{data}/coco/', max_iters, coco=True,
                        val_interval=val_interval)


def seg_options(data, max_iters, val_interval=None):
    return data_options(f'{data}/cityscapes/', max_iters,
                        val_interval=val_interval)


def free_port():
    """A port nobody listens on now, so a busy fixed port cannot fail a
    distributed test."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run(*args, check=True):
    result = subprocess.run([sys.executable, *args], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise AssertionError(f'{args} failed:\n{output[-4000:]}')
    return output


def test_detection_train_interrupt_resume_test(data, tmp_path):
    work_dir = str(tmp_path / 'det')
    run('tools/train.py', DET, '--work-dir', work_dir, '--cfg-options',
        *det_options(data, 2))
    # "Interrupted" after iteration 2: resume and go on to 4.
    log = run('tools/train.py', DET, '--work-dir', work_dir, '--resume',
              '--cfg-options', *det_options(data, 4))
    assert 'resumed epoch: 0, iter: 2' in log
    assert_resumed_everything(osp.join(work_dir, 'iter_4.pth'), 4)
    # The same run without the interruption, validating at iteration 2
    # after its checkpoint (the resumed run does not): bit for bit the same
    # (RPN / RoI sampling, augmentation; validation draws no numbers).
    run('tools/train.py', DET, '--work-dir', str(tmp_path / 'whole'),
        '--cfg-options', *det_options(data, 4, val_interval=2))
    assert_same_run(osp.join(work_dir, 'iter_4.pth'),
                    str(tmp_path / 'whole' / 'iter_4.pth'))
    out = str(tmp_path / 'predictions.pkl')
    # The data root given once moves the dataloaders and the evaluator's
    # annotation file (the config's own root does not exist here).
    log = run('tools/test.py', DET, osp.join(work_dir, 'iter_4.pth'),
              '--work-dir', work_dir, '--out', out, '--data-root',
              f'{data}/coco')
    assert 'coco/bbox_mAP:' in log and 'coco/segm_mAP:' in log
    assert osp.getsize(out) > 0


def assert_resumed_everything(checkpoint_file, iters):
    """The checkpoint of a run resumed halfway: model, optimizer, schedulers,
    message hub and iteration all carried on (loaded weights-only)."""
    from mmdrconv.openmmlab.checkpoint import load_from_local
    checkpoint = load_from_local(checkpoint_file)
    assert checkpoint['meta']['iter'] == iters
    # AdamW has taken every step, not only those after the resume.
    steps = {int(s['step']) for s in checkpoint['optimizer']['state'].values()}
    assert steps == {iters}
    # Every scheduler counted every step (a finished warm-up keeps its own
    # last_step, so the global step is what is compared).
    assert [s['_global_step'] for s in checkpoint['param_schedulers']] == \
        [iters] * len(checkpoint['param_schedulers'])
    # The loss history of the first half survived the resume.
    history = checkpoint['message_hub']['log_scalars']['train/loss']
    assert len(history.data[0]) == iters


def assert_same_run(resumed_file, whole_file):
    """Two final checkpoints of one run, resumed and not: the same weights,
    optimizer state and loss history, bit for bit (loaded weights-only:
    the random states need no allowlist entry)."""
    from mmdrconv.openmmlab.checkpoint import load_from_local
    resumed, whole = load_from_local(resumed_file), load_from_local(whole_file)
    differ = [k for k, v in whole['state_dict'].items()
              if not torch.equal(v, resumed['state_dict'][k])]
    assert not differ, f'{len(differ)} tensors differ, e.g. {differ[:3]}'
    for key, state in whole['optimizer']['state'].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(
                resumed['optimizer']['state'][key][name])), (key, name)
    losses = [c['message_hub']['log_scalars']['train/loss'].data[0]
              for c in (resumed, whole)]
    assert losses[0].tolist() == losses[1].tolist()


def test_segmentation_train_test_resume(data, tmp_path):
    work_dir = str(tmp_path / 'seg')
    command = ['tools/train.py', SEG, '--work-dir', work_dir,
               '--cfg-options', *seg_options(data, 3)]
    # Killed (SIGKILL) right after its checkpoint of iteration 2.
    log = run('tests/interrupt.py', '2', *command, check=False)
    assert 'Saving checkpoint at 2 iterations' in log
    assert not osp.exists(osp.join(work_dir, 'iter_3.pth'))
    checkpoint = osp.join(work_dir, 'iter_2.pth')
    saved = osp.getmtime(checkpoint), osp.getsize(checkpoint)
    # The same command again, without --resume: refused, nothing touched.
    log = run(*command, check=False)
    assert f'{work_dir} holds the checkpoints of an earlier run ' \
        '(iter_2.pth, last_checkpoint)' in log
    for option in ('--resume', '--auto-resume', '--start-over'):
        assert option in log
    assert (osp.getmtime(checkpoint), osp.getsize(checkpoint)) == saved
    log = run(*command, '--resume')
    assert 'resumed epoch: 0, iter: 2' in log
    assert_resumed_everything(osp.join(work_dir, 'iter_3.pth'), 3)
    # The run uninterrupted: the resumed one is the same run (dropout,
    # random resize, crop and flip), bit for bit.
    run('tools/train.py', SEG, '--work-dir', str(tmp_path / 'whole'),
        '--cfg-options', *seg_options(data, 3))
    assert_same_run(osp.join(work_dir, 'iter_3.pth'),
                    str(tmp_path / 'whole' / 'iter_3.pth'))
    show_dir = str(tmp_path / 'painted')
    maps = tmp_path / 'not yet' / 'maps'  # made before the evaluation
    log = run('tools/test.py', SEG, osp.join(work_dir, 'iter_3.pth'),
              '--work-dir', work_dir, '--show-dir', show_dir, '--out',
              str(maps), '--cfg-options', *seg_options(data, 3))
    assert 'mIoU:' in log
    assert len(list(maps.glob('*.png'))) == 2
    painted = [f for _, _, files in os.walk(show_dir) for f in files
               if f.endswith('.png')]
    assert len(painted) == 2  # one per val image


def test_missing_data_and_corrupt_checkpoint_errors(data, tmp_path):
    log = run('tools/train.py', DET, '--work-dir', str(tmp_path / 'train'),
              '--cfg-options',
              'train_dataloader.dataset.data_root=/nonexistent/', check=False)
    assert 'COCO dataset files not found' in log
    assert 'expected COCO layout' in log
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a checkpoint')
    log = run('tools/test.py', DET, str(bad), '--work-dir',
              str(tmp_path / 'test'), '--cfg-options', *det_options(data, 2),
              check=False)
    assert 'cannot read checkpoint' in log and 'corrupt' in log
    # The standard-conv twin's weights: the DRConv parts would stay random.
    from mmdrconv.apis import build_model, load_config
    twin = build_model(
        load_config(osp.join(REPO, DET.replace('-drconv-c3-c5', ''))))
    twin_file = tmp_path / 'twin.pth'
    torch.save(dict(state_dict=twin.state_dict()), twin_file)
    log = run('tools/test.py', DET, str(twin_file), '--work-dir',
              str(tmp_path / 'test'), '--cfg-options', *det_options(data, 2),
              check=False)
    assert 'does not match the model' in log
    assert 'missing from the checkpoint: backbone.layer2.0.conv2.guide' in log


def test_checkpoint_mismatch_names_every_kind_of_difference():
    from mmdrconv import DRConv
    from mmdrconv.openmmlab.checkpoint import checkpoint_mismatch
    model = torch.nn.Sequential(DRConv(4, 8, 3, padding=1, region_num=2))
    state = {f'module.{k}': v for k, v in model.state_dict().items()}
    assert checkpoint_mismatch(model, state) is None  # DDP prefix is fine
    state = dict(model.state_dict())
    del state['0.guide.weight']
    state['0.weight'] = torch.zeros(8, 4, 1, 1)
    state['0.extra'] = torch.zeros(1)
    problem = checkpoint_mismatch(model, state)
    assert problem == ('1 keys missing from the checkpoint: 0.guide.weight; '
                       '1 keys not in the model: 0.extra; '
                       '1 keys with other shapes: 0.weight (8, 4, 1, 1) vs '
                       'model (8, 4, 3, 3)')


def test_two_process_gloo_training_keeps_ranks_identical(data, tmp_path):
    work_dir = str(tmp_path / 'ddp')
    options = [o for o in det_options(data, 3)
               if not o.startswith('default_hooks')]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         f'--master_port={free_port()}', 'tests/dist_check.py', DET, work_dir,
         *options], cwd=REPO, capture_output=True, text=True, timeout=600,
        env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    ranks = [torch.load(osp.join(work_dir, f'rank{r}.pth')) for r in (0, 1)]
    assert ranks[0]['iter'] == ranks[1]['iter'] == 3
    for name, param in ranks[0]['params'].items():
        torch.testing.assert_close(param, ranks[1]['params'][name],
                                   rtol=0, atol=0, msg=name)


def test_dist_train_and_test_sh_run_two_processes(data, tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               OMP_NUM_THREADS='1')
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', DET, '2', '--work-dir',
         str(tmp_path / 'dist'), '--cfg-options', *det_options(data, 2)],
        cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert 'Distributed training: True' in output
    checkpoint = tmp_path / 'dist' / 'iter_2.pth'
    assert osp.isfile(checkpoint)
    # Distributed evaluation: each rank predicts half the val images; the
    # metric and the dump must see every image exactly once.
    preds = tmp_path / 'preds.pkl'
    result = subprocess.run(
        ['bash', 'tools/dist_test.sh', DET, str(checkpoint), '2',
         '--work-dir', str(tmp_path / 'dist_test'), '--out', str(preds),
         '--cfg-options', *det_options(data, 2)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(env, PORT=str(free_port())))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert 'coco/bbox_mAP:' in output and 'coco/segm_mAP:' in output
    with open(preds, 'rb') as f:
        ids = sorted(p['img_id'] for p in pickle.load(f))
    with open(f'{data}/coco/annotations/instances_val.json') as f:
        assert ids == sorted(i['id'] for i in json.load(f)['images'])


def test_visualize_regions_writes_an_overlay_per_drconv(data, tmp_path):
    from mmdrconv.apis import build_model, load_config
    from mmdrconv.analysis.region_maps import PALETTE, render_region_maps
    config = osp.join(REPO, DET)
    model = build_model(load_config(config))
    with torch.no_grad():  # a guide that splits the image into regions
        for module in model.modules():
            if hasattr(module, 'guide'):
                module.guide.weight.normal_(std=0.5)
    checkpoint = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    image = str(data / 'coco' / 'val' / 'val_000000.png')
    written = render_region_maps(config, checkpoint, image,
                                 str(tmp_path / 'regions'), alpha=1.0)
    assert len(written) == 4 + 6 + 3
    import mmcv
    picture = mmcv.imread(written['backbone.layer2.0.conv2'],
                          channel_order='rgb')
    assert picture.shape == (128, 128, 3)
    colours = {tuple(c) for c in picture.reshape(-1, 3)}
    assert 1 < len(colours) <= len(PALETTE)  # alpha 1: pure region colours
    assert colours <= {tuple(c) for c in PALETTE}


def test_get_flops_and_benchmark_tools():
    log = run('tools/analysis/get_flops.py', DET, '--shape', '128', '128')
    assert 'DRConv layers: 13' in log and 'multiply-adds:' in log
    log = run('tools/analysis/benchmark.py', SEG, '--size', '64', '128',
              '--repeat', '2')
    assert '"latency_ms"' in log and '"train_peak_mib"' in log
