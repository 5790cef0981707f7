"""Misconfiguration and bad input stop with an error that names the problem
(issue 13): the data root, the COCO evaluator's annotation file, the suite
file, data generation, visualisation, AMP on the CPU, mismatched checkpoints
and a failing checkpoint save. (The converter's cases are in
tests/test_converter.py.)"""
import errno
import json
import os
import os.path as osp
import shutil

import pytest
import torch
import torch.nn as nn

from mmdrconv import DRConv

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DET = osp.join(REPO, 'configs/synthetic/'
               'mask-rcnn_r50-w16-drconv-c3-c5_fpn_synthetic-coco.py')
SEG = osp.join(REPO, 'configs/synthetic/'
               'deeplabv3_r50-w16-d8-drconv-c3-c5_synthetic-cityscapes.py')


# ------------------------------------------------------------- data root
def _coco_cfg(cfg_options=None):
    from mmdrconv.apis import load_config
    return load_config(DET, cfg_options)


def test_data_root_moves_dataloaders_and_evaluators(synthetic_data):
    from mmdrconv.runner import prepare_test_cfg
    root = str(synthetic_data / 'coco')
    cfg = prepare_test_cfg(_coco_cfg(), DET, DET, work_dir='unused',
                           data_root=root)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.data_root == root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        assert cfg[evaluator].ann_file == osp.join(
            root, 'annotations/instances_val.json')


def test_data_root_option_on_both_tools():
    from mmdrconv.cli import test, train
    assert train.parse_args(['c.py', '--data-root', 'D']).data_root == 'D'
    assert test.parse_args(['c.py', 'k.pth', '--data-root', 'D']).data_root \
        == 'D'


def test_data_root_refuses_what_it_cannot_move(tmp_path):
    from mmdrconv.datasets.data_root import set_data_root
    with pytest.raises(FileNotFoundError,
                       match=f'--data-root {tmp_path}/nope: no such folder'):
        set_data_root(_coco_cfg(), str(tmp_path / 'nope'))
    cfg = _coco_cfg({'val_evaluator.ann_file': '/elsewhere/val.json'})
    with pytest.raises(ValueError, match=r"--data-root: val_evaluator\."
                       r"ann_file '/elsewhere/val.json' is neither "
                       r"val_dataloader's annotation file nor under the "
                       r"config's data root 'data/synthetic/coco/'"):
        set_data_root(cfg, str(tmp_path))


def test_evaluator_follows_a_dataloader_moved_by_cfg_options(
        synthetic_data):
    from mmdrconv.datasets.data_root import align_evaluator_ann_files
    root = f'{synthetic_data}/coco/'
    cfg = _coco_cfg({f'{s}_dataloader.dataset.data_root': root
                     for s in ('train', 'val', 'test')})
    assert cfg.val_evaluator.ann_file == \
        'data/synthetic/coco/annotations/instances_val.json'
    notes = align_evaluator_ann_files(cfg)
    expected = f'{root}annotations/instances_val.json'
    assert cfg.val_evaluator.ann_file == cfg.test_evaluator.ann_file == \
        expected
    assert notes == [
        f"{s}_evaluator.ann_file follows {s}_dataloader's data_root: "
        f'data/synthetic/coco/annotations/instances_val.json -> {expected}'
        for s in ('val', 'test')]
    assert align_evaluator_ann_files(cfg) == []  # now consistent


def test_missing_evaluator_annotation_file_is_named(synthetic_data):
    from mmdrconv.datasets import check_dataset
    root = f'{synthetic_data}/coco/'
    options = {f'{s}_dataloader.dataset.data_root': root
               for s in ('train', 'val', 'test')}
    options['val_evaluator.ann_file'] = '/missing/instances_val2017.json'
    with pytest.raises(FileNotFoundError) as error:
        check_dataset(_coco_cfg(options))
    assert str(error.value).startswith(
        'val_evaluator.ann_file not found: /missing/instances_val2017.json')
    assert '--data-root' in str(error.value)


def test_missing_data_message_recommends_data_root(tmp_path):
    from mmdrconv.datasets import check_dataset
    cfg = _coco_cfg({'train_dataloader.dataset.data_root': str(tmp_path)})
    with pytest.raises(FileNotFoundError) as error:
        check_dataset(cfg)
    assert 'tools/train.py and tools/test.py at your copy with --data-root ' \
           'PATH' in str(error.value)
    assert '--cfg-options train_dataloader' not in str(error.value)


def test_segmentation_config_on_coco_data_names_the_missing_folder(
        synthetic_data):
    from mmdrconv.apis import load_config
    from mmdrconv.datasets import check_dataset
    from mmdrconv.runner import prepare_train_cfg
    coco = str(synthetic_data / 'coco')
    cfg = prepare_train_cfg(load_config(SEG), SEG, 'unused', data_root=coco)
    with pytest.raises(FileNotFoundError,
                       match=f'image folder not found: {coco}/leftImg8bit'):
        check_dataset(cfg)


@pytest.fixture(scope='module')
def coco_val(synthetic_data):
    from mmdet.datasets import CocoDataset
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        return CocoDataset(
            data_root=str(synthetic_data / 'coco'),
            ann_file='annotations/instances_val.json',
            data_prefix=dict(img='val/'),
            metainfo=dict(classes=('disc', 'square', 'triangle', 'cross')),
            pipeline=[], test_mode=True)


def _coco_api(path):
    from mmdet.datasets.api_wrappers import COCO
    return COCO(str(path))


def test_annotation_check_passes_the_right_file(coco_val, synthetic_data):
    from mmdrconv.datasets.evaluation_check import annotation_mismatch
    ann = synthetic_data / 'coco/annotations/instances_val.json'
    assert annotation_mismatch(coco_val, _coco_api(ann), str(ann)) is None


def test_annotation_check_refuses_a_file_without_shared_images(
        coco_val, synthetic_data, tmp_path):
    from mmdrconv.datasets.evaluation_check import annotation_mismatch
    data = json.loads(
        (synthetic_data / 'coco/annotations/instances_val.json').read_text())
    for image in data['images']:
        image['id'] += 1000
    for ann in data['annotations']:
        ann['image_id'] += 1000
    other = tmp_path / 'shifted.json'
    other.write_text(json.dumps(data))
    problem = annotation_mismatch(coco_val, _coco_api(other), str(other))
    assert problem == (
        "the evaluator's annotation file shares no image with the 4 images "
        f'evaluated (the evaluator reads {other}, the dataset reads '
        f"{synthetic_data}/coco/annotations/instances_val.json)")


def test_annotation_check_refuses_another_copy_of_the_data(
        coco_val, tmp_path):
    """Same file names and image ids, other content (another seed): the
    case that scored 0.000 instead of 0.525."""
    from mmdrconv.datasets import generate
    from mmdrconv.datasets.evaluation_check import annotation_mismatch
    generate('coco', str(tmp_path / 'copy'), num_train=1, num_val=4, seed=7)
    other = tmp_path / 'copy/annotations/instances_val.json'
    problem = annotation_mismatch(coco_val, _coco_api(other), str(other))
    assert problem.startswith("the evaluator's annotation file does not "
                              'describe the evaluated images')
    assert 'image id 1 has' in problem and 'boxes that the annotation file ' \
        'does not' in problem


def test_runner_stops_before_evaluating_against_another_file(
        synthetic_data, tmp_path):
    from mmdrconv.datasets import generate
    from mmdrconv.runner import build_runner, prepare_test_cfg
    generate('coco', str(tmp_path / 'copy'), num_train=1, num_val=4, seed=7)
    other = str(tmp_path / 'other_val.json')
    shutil.copy(tmp_path / 'copy/annotations/instances_val.json', other)
    checkpoint = tmp_path / 'model.pth'
    torch.save(dict(state_dict={}), checkpoint)
    options = {f'{s}_dataloader.dataset.data_root': str(synthetic_data /
                                                        'coco')
               for s in ('train', 'val', 'test')}
    options['test_evaluator.ann_file'] = other
    cfg = prepare_test_cfg(_coco_cfg(options), DET, str(checkpoint),
                           work_dir=str(tmp_path / 'work'))
    runner = build_runner(cfg)
    runner.load_or_resume = lambda: None  # weights are beside the point
    with pytest.raises(ValueError) as error:
        runner.test()
    assert str(error.value).startswith(
        f'test_evaluator (CocoMetric): the evaluator\'s annotation file does '
        f'not describe the evaluated images (the evaluator reads {other}')


# ------------------------------------------------------------- suite
def _suite_file(tmp_path, text):
    path = tmp_path / 'suite.py'
    path.write_text(text)
    return str(path)


SUITE = """suite = dict(
    name='t', seeds=[0, 1],
    datasets=dict(coco=dict(kind='coco', root='{root}')),
    tasks=[dict(name='det', dataset='{dataset}', metrics={metrics},
                max_iters=2, variants=dict(a='{det}', b='{det}'))])
"""


def _suite(tmp_path, root='data/coco', dataset='coco',
           metrics="['coco/bbox_mAP']"):
    return _suite_file(tmp_path, SUITE.format(
        root=root, dataset=dataset, metrics=metrics, det=DET))


@pytest.mark.parametrize('kwargs, error', [
    (dict(dataset='cocoo'), "task 'det': dataset 'cocoo' is not one of the "
     "suite's datasets ['coco']"),
    (dict(metrics="'coco/bbox_mAP'"), "task 'det': metrics must be a "
     'non-empty list of evaluator keys'),
    (dict(metrics='[]'), "task 'det': metrics must be a non-empty list"),
])
def test_suite_file_mistakes_are_named(tmp_path, kwargs, error):
    from mmdrconv.suite import load_suite
    with pytest.raises(ValueError) as raised:
        load_suite(_suite(tmp_path, **kwargs))
    assert error in str(raised.value)


def test_suite_unknown_keys_and_variants_are_named(tmp_path):
    from mmdrconv.suite import load_suite
    with pytest.raises(ValueError, match=r"task 'det': unknown key\(s\) "
                       r"\['variant'\]; allowed: \["):
        load_suite(_suite_file(tmp_path, SUITE.replace(
            'variants=', 'variant=').format(
                root='r', dataset='coco', metrics="['m']", det=DET)))
    with pytest.raises(FileNotFoundError, match='config of det/b not found: '
                       'configs/nope.py'):
        load_suite(_suite_file(tmp_path, SUITE.replace(
            "b='{det}'", "b='configs/nope.py'").format(
                root='r', dataset='coco', metrics="['m']", det=DET)))


def test_suite_passes_its_data_root_to_every_cell(tmp_path):
    from mmdrconv.suite import load_suite
    from mmdrconv.suite.run import _cell_command
    suite = load_suite(_suite(tmp_path, root='/data/my-coco'))
    for cell in suite.cells():
        command = _cell_command(suite, cell, resume=False)
        assert command[command.index('--data-root') + 1] == '/data/my-coco'


def test_suite_names_a_missing_dataset_root(tmp_path):
    from mmdrconv.suite import load_suite
    from mmdrconv.suite.run import prepare_data
    suite = load_suite(_suite(tmp_path, root=str(tmp_path / 'no-coco')))
    with pytest.raises(FileNotFoundError) as error:
        prepare_data(suite)
    assert f"dataset 'coco' (tasks det): root '{tmp_path}/no-coco' not " \
           'found' in str(error.value)


def test_suite_metric_the_evaluator_does_not_produce_fails_the_task(
        tmp_path, synthetic_data, monkeypatch):
    """A typo in a metric name: the task fails naming the keys the evaluator
    produced, and its remaining cells do not train."""
    from mmdrconv.suite import run as suite_run
    launched = []

    def fake_cell_process(command, log_file, prefix, threads=None):
        launched.append(command)
        result_file = command[command.index('mmdrconv.cli.suite_cell') + 3]
        with open(result_file, 'w') as f:
            json.dump(dict(status='ok', metrics={'coco/bbox_mAP': 0.5,
                                                 'coco/segm_mAP': 0.4},
                           iters=2, train_time_per_iter=0.1), f)
        return 0, ''

    monkeypatch.setattr(suite_run, '_stream', fake_cell_process)
    path = _suite(tmp_path, root=str(synthetic_data / 'coco'),
                  metrics="['coco/bbox_map']")
    report = suite_run.run_suite(path, str(tmp_path / 'out'),
                                 skip_profile=True)
    assert len(launched) == 1 and report['failed'] == 4
    cells = json.loads((tmp_path / 'out/results.json').read_text())['cells']
    error = ("metric(s) ['coco/bbox_map'] of task 'det' not produced by the "
             f'evaluator of {DET}; it produces: [\'coco/bbox_mAP\', '
             "'coco/segm_mAP']")
    assert [c['error'] for c in cells] == [error] * 4
    # The trained cell's own result stays 'ok' for a corrected suite file.
    first = tmp_path / 'out/det/a/seed0/cell_result.json'
    assert json.loads(first.read_text())['status'] == 'ok'


# ------------------------------------------------------------- generation
def _files(folder):
    return sorted(os.listdir(folder))


def test_regenerating_replaces_the_old_data(tmp_path):
    from mmdrconv.datasets import generate
    root = str(tmp_path / 'coco')
    generate('coco', root, num_train=3, num_val=2, image_size=(32, 48))
    generate('coco', root, num_train=2, num_val=1, image_size=(32, 48))
    assert _files(f'{root}/train') == ['train_000000.png', 'train_000001.png']
    assert _files(f'{root}/val') == ['val_000000.png']
    with open(f'{root}/annotations/instances_train.json') as f:
        assert [i['file_name'] for i in json.load(f)['images']] == \
            _files(f'{root}/train')
    assert not [n for n in os.listdir(root) if n.startswith('.staging')]


def test_interrupted_regeneration_keeps_the_old_data(tmp_path, monkeypatch):
    from mmdrconv.datasets import generate
    from mmdrconv.datasets.synthetic import coco
    root = str(tmp_path / 'coco')
    generate('coco', root, num_train=2, num_val=1, image_size=(32, 48))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(coco, '_coco_scene', interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate('coco', root, num_train=5, num_val=1, image_size=(32, 48))
    assert _files(f'{root}/train') == ['train_000000.png', 'train_000001.png']
    assert sorted(os.listdir(root)) == ['.generated-coco.json',
                                        '.mmdrconv.lock',  # runlock's
                                        'annotations', 'train', 'val']


def test_generation_never_deletes_data_it_did_not_write(tmp_path):
    from mmdrconv.datasets import generate
    (tmp_path / 'leftImg8bit').mkdir()
    (tmp_path / 'leftImg8bit' / 'mine.png').write_bytes(b'x')
    with pytest.raises(FileExistsError, match='leftImg8bit already exist and '
                       'were not written by the cityscapes generator'):
        generate('cityscapes', str(tmp_path), num_train=1, num_val=1)
    assert (tmp_path / 'leftImg8bit' / 'mine.png').read_bytes() == b'x'


@pytest.mark.parametrize('options, error', [
    (dict(num_train=-3), 'num_train must be a positive number of images, '
     'got -3'),
    (dict(num_val=0), 'num_val must be a positive number of images, got 0'),
    (dict(image_size=(0, 64)), r'image_size \(0, 64\): height and width '
     'must be at least 32 pixels'),
    (dict(seed=-1), 'seed must be an int >= 0, got -1'),
])
def test_generate_refuses_bad_options(tmp_path, options, error):
    from mmdrconv.datasets import generate
    with pytest.raises(ValueError, match=error):
        generate('coco', str(tmp_path / 'x'), **options)
    assert not (tmp_path / 'x').exists()


@pytest.mark.parametrize('argv, error', [
    (['--train', '-3'], 'argument --train: must be at least 1, got -3'),
    (['--val', '0'], 'argument --val: must be at least 1, got 0'),
    (['--height', '0', '--width', '64'],
     'argument --height: must be at least 32, got 0'),
    (['--width', '-5', '--height', '64'],
     'argument --width: must be at least 32, got -5'),
    (['--height', '64'], '--height and --width go together'),
])
def test_generate_data_tool_refuses_bad_options(tmp_path, capsys, argv,
                                                error):
    from mmdrconv.cli.generate_data import main
    with pytest.raises(SystemExit) as exit_:
        main(['coco', str(tmp_path / 'x')] + argv)
    assert exit_.value.code == 2
    assert error in capsys.readouterr().err
    assert not (tmp_path / 'x').exists()


# ------------------------------------------------------------- tools
def test_overlay_alpha_outside_0_1_is_refused():
    import numpy as np
    from mmdrconv.analysis.region_maps import PALETTE, overlay
    image = np.full((2, 2, 3), 200, np.uint8)
    region = np.zeros((2, 2), np.int64)
    for alpha in (5, -0.1, float('nan')):
        with pytest.raises(ValueError, match='alpha must be in \\[0, 1\\]'):
            overlay(image, region, alpha)
    np.testing.assert_array_equal(overlay(image, region, 1.0)[0, 0],
                                  PALETTE[0])


def test_visualize_regions_tool_refuses_alpha(capsys):
    with pytest.raises(SystemExit) as exit_:
        _tool('visualize_regions').main(
            ['c.py', 'k.pth', 'i.png', 'out', '--alpha', '5'])
    assert exit_.value.code == 2
    assert '--alpha must be in [0, 1], got 5.0' in capsys.readouterr().err


def test_amp_on_the_cpu_is_bfloat16_autocast():
    from mmdrconv.openmmlab.amp import amp_optim_wrapper
    wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1),
                   clip_grad=dict(max_norm=10))
    assert amp_optim_wrapper(wrapper, cuda=False) == dict(
        type='CPUBFloat16OptimWrapper', optimizer=dict(type='SGD', lr=0.1),
        clip_grad=dict(max_norm=10))
    assert amp_optim_wrapper(wrapper, cuda=True)['type'] == 'AmpOptimWrapper'
    with pytest.raises(ValueError, match='autocast supports bfloat16 only, '
                       "but the config asks for dtype='float16'"):
        amp_optim_wrapper(dict(wrapper, type='AmpOptimWrapper',
                               dtype='float16'), cuda=False)


def test_amp_for_a_detector_on_the_cpu_is_refused_up_front():
    """mmcv's CPU nms has no bfloat16 kernel: without this check the first
    iteration dies with 'expected scalar type Float but found BFloat16'."""
    from mmdrconv.runner import prepare_train_cfg
    with pytest.raises(ValueError, match="cannot train detectors: mmcv's CPU "
                       r'ops \(nms'):
        prepare_train_cfg(_coco_cfg(), DET, 'unused', amp=True)


def test_amp_training_iteration_on_the_cpu(monkeypatch):
    """One training iteration of a DRConv model with --amp on the CPU: the
    forward runs in bfloat16, the float32 weights are updated."""
    from mmengine.model import BaseModel
    from mmengine.optim import build_optim_wrapper

    from mmdrconv import runner as runner_module
    from mmdrconv.runner import prepare_train_cfg
    logged = []
    monkeypatch.setattr(runner_module, 'print_log',
                        lambda message, **kwargs: logged.append(message))
    monkeypatch.setattr(runner_module, 'cpu_has_native_bfloat16',
                        lambda: False)

    class Net(BaseModel):
        def __init__(self):
            super().__init__()
            self.drconv = DRConv(3, 8, 3, padding=1, region_num=4)
            self.head = nn.Conv2d(8, 1, 1)

        def forward(self, inputs, data_samples=None, mode='loss'):
            return dict(loss=self.head(self.drconv(inputs)).float().pow(
                2).mean())

    from mmdrconv.apis import load_config
    cfg = prepare_train_cfg(load_config(SEG), SEG, 'unused', amp=True)
    assert cfg.optim_wrapper.type == 'CPUBFloat16OptimWrapper'
    assert 'loss_scale' not in cfg.optim_wrapper
    assert logged == [runner_module.SLOW_BFLOAT16]
    assert 'no native bfloat16 instructions' in logged[0]
    model = Net()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    dtypes = []
    model.drconv.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    before = model.drconv.weight.detach().clone()
    losses = model.train_step(dict(inputs=torch.randn(2, 3, 16, 16)),
                              optim_wrapper)
    assert dtypes == [torch.bfloat16]
    assert torch.isfinite(losses['loss'])
    assert model.drconv.weight.dtype == torch.float32
    assert not torch.equal(model.drconv.weight, before)


def test_checkpoint_of_another_task_or_width_is_refused(tmp_path):
    from mmdrconv.apis import build_model, load_config
    from mmdrconv.openmmlab import CheckpointError, verify_checkpoint
    det = build_model(load_config(DET))
    seg_file = tmp_path / 'seg.pth'
    torch.save(dict(state_dict=build_model(load_config(SEG)).state_dict()),
               seg_file)
    with pytest.raises(CheckpointError) as error:
        verify_checkpoint(det, str(seg_file))
    assert 'does not match the model of this config' in str(error.value)
    assert 'keys not in the model: backbone.stem.0.weight' in \
        str(error.value)  # mmseg's ResNetV1c stem, not mmdet's ResNet
    wide = build_model(load_config(
        DET, {'model.backbone.base_channels': 32}))
    wide_file = tmp_path / 'wide.pth'
    torch.save(dict(state_dict=wide.state_dict()), wide_file)
    with pytest.raises(CheckpointError, match=r'keys with other shapes: '
                       r'backbone\.conv1\.weight \(32, 3, 7, 7\) vs model '
                       r'\(16, 3, 7, 7\)'):
        verify_checkpoint(det, str(wide_file))


# ------------------------------------------------------------- checkpoints
def _toy_runner(work_dir, max_iters):
    from mmengine.runner import Runner
    from torch.utils.data import Dataset

    class Toy(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return dict(inputs=torch.full((2, ), float(index)))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 1)

        def train_step(self, data, optim_wrapper):
            loss = self.linear(data['inputs']).pow(2).mean()
            optim_wrapper.update_params(loss)
            return dict(loss=loss)

    return Runner(
        model=Model(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=Toy(), batch_size=2,
                              sampler=dict(type='DefaultSampler'),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=1,
                                           max_keep_ckpts=1)))


def test_full_disk_during_a_checkpoint_save_keeps_the_previous_one(
        tmp_path, monkeypatch):
    from mmdrconv.openmmlab import atomic_save
    from mmdrconv.openmmlab.checkpoint import load_checkpoint_file
    runner = _toy_runner(tmp_path, max_iters=3)
    real_save = torch.save

    def save_until_iter_3(obj, file, *args, **kwargs):
        if isinstance(obj, dict) and obj.get('meta', {}).get('iter') == 3:
            file.write(b'half a checkpoint')
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(atomic_save.torch, 'save', save_until_iter_3)
    with pytest.raises(OSError, match='No space left on device'):
        runner.train()
    # iter_3.pth never appears, iter_2.pth was not deleted before the save,
    # last_checkpoint names it, and no partial file is left behind.
    assert sorted(n for n in os.listdir(tmp_path)
                  if not n.startswith(runner.timestamp)) == [
                      'iter_2.pth', 'last_checkpoint']
    last = (tmp_path / 'last_checkpoint').read_text()
    assert last == str(tmp_path / 'iter_2.pth')
    assert load_checkpoint_file(last)['meta']['iter'] == 2


def test_checkpoints_rotate_as_before(tmp_path):
    _toy_runner(tmp_path, max_iters=3).train()
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth')) == \
        ['iter_3.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == \
        str(tmp_path / 'iter_3.pth')
    assert oct(os.stat(tmp_path / 'iter_3.pth').st_mode & 0o777) == \
        oct(0o666 & ~_umask())


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_suite_reruns_a_cell_whose_result_file_was_cut_short(
        tmp_path, synthetic_data, monkeypatch):
    """Killed while writing cell_result.json: the next run redoes the cell
    (it resumes from its checkpoint) instead of failing on the JSON."""
    from mmdrconv.suite import run as suite_run
    launched = []

    def fake_cell_process(command, log_file, prefix, threads=None):
        launched.append(command)
        result_file = command[command.index('mmdrconv.cli.suite_cell') + 3]
        with open(result_file, 'w') as f:
            json.dump(dict(status='ok', metrics={'coco/bbox_mAP': 0.5},
                           iters=2, train_time_per_iter=0.1), f)
        return 0, ''

    monkeypatch.setattr(suite_run, '_stream', fake_cell_process)
    path = _suite(tmp_path, root=str(synthetic_data / 'coco'))
    out = tmp_path / 'out'
    suite_run.run_suite(path, str(out), skip_profile=True)
    assert len(launched) == 4
    (out / 'det/b/seed1/cell_result.json').write_text('{"status": "o')
    report = suite_run.run_suite(path, str(out), skip_profile=True)
    assert len(launched) == 5 and report['failed'] == 0
    assert launched[-1][launched[-1].index('mmdrconv.cli.suite_cell') + 2] == \
        str(out / 'det/b/seed1')


def test_resume_from_a_missing_checkpoint_is_named(tmp_path):
    from mmdrconv.runner import prepare_train_cfg
    with pytest.raises(FileNotFoundError, match=f'--resume {tmp_path}/x.pth: '
                       'no such checkpoint file'):
        prepare_train_cfg(_coco_cfg(), DET, str(tmp_path),
                          resume=str(tmp_path / 'x.pth'))


def test_segmentation_out_must_be_a_folder():
    from types import SimpleNamespace

    from mmdrconv.apis import load_config
    from mmdrconv.runner import add_prediction_dump
    cfg = load_config(SEG)
    metric = SimpleNamespace(output_dir=None, keep_results=False)
    runner = SimpleNamespace(test_evaluator=SimpleNamespace(metrics=[metric]))
    with pytest.raises(ValueError, match="--out must be a folder for "
                       "segmentation .* got 'preds.pkl'"):
        add_prediction_dump(runner, cfg, 'preds.pkl')
    add_prediction_dump(runner, cfg, 'maps')
    assert (metric.output_dir, metric.keep_results) == ('maps', True)
    runner.test_evaluator.metrics = [SimpleNamespace()]
    with pytest.raises(ValueError, match='no test metric of this config can '
                       'save label maps'):
        add_prediction_dump(runner, cfg, 'maps')


@pytest.mark.parametrize('seeds', ['[]', '0', '[0, 0]', "['a']"])
def test_suite_seeds_must_be_distinct_ints(tmp_path, seeds):
    from mmdrconv.suite import load_suite
    text = SUITE.replace('seeds=[0, 1]', f'seeds={seeds}').format(
        root='r', dataset='coco', metrics="['m']", det=DET)
    with pytest.raises(ValueError, match='seeds must be a non-empty list of '
                       'distinct ints'):
        load_suite(_suite_file(tmp_path, text))


@pytest.mark.parametrize('tool, argv, error', [
    ('get_flops', ['c.py', '--shape', '0', '128'],
     'argument --shape: must be at least 1, got 0'),
    ('benchmark', ['c.py', '--batch-size', '1'],
     'argument --batch-size: must be at least 2, got 1'),
    ('benchmark', ['c.py', '--repeat', '0'],
     'argument --repeat: must be at least 1, got 0'),
])
def test_analysis_tools_refuse_bad_sizes(capsys, tool, argv, error):
    with pytest.raises(SystemExit) as exit_:
        _tool(tool).main(argv)
    assert exit_.value.code == 2
    assert error in capsys.readouterr().err


def _tool(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, f'tools/analysis/{name}.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_ctrl_c_while_saving_leaves_the_previous_file(tmp_path, monkeypatch):
    from mmdrconv.openmmlab import atomic_save
    from mmengine.runner import save_checkpoint  # the patched one
    path = tmp_path / 'iter_1.pth'
    save_checkpoint(dict(meta=dict(iter=1)), str(path))
    real_save = torch.save

    def interrupted(obj, file, *args, **kwargs):
        file.write(b'partial')
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic_save.torch, 'save', interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(dict(meta=dict(iter=2)), str(path))
    monkeypatch.setattr(atomic_save.torch, 'save', real_save)
    assert os.listdir(tmp_path) == ['iter_1.pth']
    assert torch.load(path, weights_only=True)['meta']['iter'] == 1
