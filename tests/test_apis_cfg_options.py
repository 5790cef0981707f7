"""--cfg-options keys that name nothing in the config are an error naming the
key and the nearest existing one (mmdrconv.apis.load_config, used by every
tool that takes --cfg-options and by the suite's cells)."""
import copy
import os.path as osp

import pytest

from mmdrconv.apis import ConfigOptionError, load_config

from helpers import SEG


@pytest.fixture(scope='module')
def seg_cfg():
    return load_config(SEG)


@pytest.mark.parametrize('key, error', [
    ('optim_wraper.optimizer.lr',
     "'optim_wraper' is not in the config; did you mean 'optim_wrapper'?"),
    ('optim_wrapper.optimzer.lr',
     "'optim_wrapper.optimzer' is not in the config; did you mean "
     "'optim_wrapper.optimizer'?"),
    ('train_dataloader.dataset.pipeline.40.type',
     "'train_dataloader.dataset.pipeline.40': index 40 out of range (the "
     'list has '),
    ('train_dataloader.dataset.pipeline.type',
     "'train_dataloader.dataset.pipeline.type': "
     'train_dataloader.dataset.pipeline is a list; use an index, e.g. '
     'train_dataloader.dataset.pipeline.0'),
    ('max_iterz', "'max_iterz' is not in the config"),
    # a list the config lacks: mmengine would merge {'0': {...}}
    ('custom_hooks.0.type', "'custom_hooks' is not in the config, and a "
     'list cannot be made from dotted keys'),
])
def test_unknown_keys_are_named(seg_cfg, key, error):
    from mmdrconv.apis import check_cfg_options
    with pytest.raises(ConfigOptionError) as raised:
        check_cfg_options(seg_cfg, {key: 1})
    assert str(raised.value).startswith(f'--cfg-options {key}: {error}')


def test_existing_paths_and_new_options_still_merge():
    cfg = load_config(SEG, {
        'optim_wrapper.optimizer.lr': 0.5,  # an existing leaf
        'train_dataloader.dataset.pipeline.0.type': 'LoadImageFromFile',
        'model.backbone.with_cp': True,  # a new option ResNetV1c takes
        'randomness.seed': 7,  # a Runner argument the config lacks
    })
    assert cfg.optim_wrapper.optimizer.lr == 0.5
    assert cfg.model.backbone.with_cp is True
    assert cfg.randomness.seed == 7
    # A new nested dict is not made from dotted keys: a typo would be too.
    with pytest.raises(ConfigOptionError, match=r"'model.backbone.init_cfg' "
                       r'is not in the config; did you mean .*\(a new '
                       r'nested option goes in a config inheriting this one'):
        load_config(SEG, {'model.backbone.init_cfg.checkpoint': 'x.pth'})


def test_an_item_that_is_not_key_value_is_a_usage_error(capsys):
    from mmdrconv.cli.test import parse_args
    with pytest.raises(SystemExit) as exit_:
        parse_args([SEG, 'c.pth', '--cfg-options', 'a=1', 'lr'])
    assert exit_.value.code == 2
    assert "argument --cfg-options: 'lr' is not KEY=VALUE" in \
        capsys.readouterr().err


def test_train_tool_refuses_a_misspelled_key_before_training(tmp_path,
                                                              capsys):
    from mmdrconv.cli.train import main
    with pytest.raises(SystemExit) as exit_:
        main([SEG, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
              'optim_wraper.optimizer.lr=0.1'])
    assert "'optim_wraper' is not in the config; did you mean " \
        "'optim_wrapper'?" in str(exit_.value.code)
    assert not osp.exists(tmp_path / 'w')  # nothing written


# A typo in the last part of a key merged as a new option and failed late:
# at the first checkpoint (no checkpoint written), or never read.
@pytest.mark.parametrize('key, error', [
    ('default_hooks.checkpoint.intervl',
     "'default_hooks.checkpoint' builds CheckpointHook, which takes no "
     "option 'intervl'; did you mean 'default_hooks.checkpoint.interval'?"),
    ('model.backbone.dcn.regoin_num',
     "'model.backbone.dcn' builds ModulatedDRConv, which takes no option "
     "'regoin_num'; did you mean 'model.backbone.dcn.region_num'?"),
    ('train_cfg.max_iter',
     "'train_cfg' builds IterBasedTrainLoop, which takes no option "
     "'max_iter'; did you mean 'train_cfg.max_iters'?"),
    ('model.backbone.new_option',
     "'model.backbone' builds ResNetV1c, which takes no option 'new_option';"
     ' it takes: avg_down, base_channels,'),
    ('optim_wrapper.optimizer.beta',
     "'optim_wrapper.optimizer' builds AdamW, which takes no option 'beta'; "
     "did you mean 'optim_wrapper.optimizer.betas'?"),
    ('param_scheduler.0.ends', "'param_scheduler.0' builds LinearLR, which "
     "takes no option 'ends'"),
    ('train_dataloader.num_worker', "'train_dataloader' builds DataLoader, "
     "which takes no option 'num_worker'"),
    ('randomness.sed', "'randomness' builds Runner.set_randomness, which "
     "takes no option 'sed'"),
    ('model.backbone.dcn.num_bases',  # a mixture option; this is modulated
     "'model.backbone.dcn' builds ModulatedDRConv, which takes no option "
     "'num_bases'"),
    # a dict read by name: a key close to an existing one is a typo
    ('model.test_cfg.mod', "'model.test_cfg' has no 'mod'; did you mean "
     "'model.test_cfg.mode'? (a new key there would not be read)"),
])
def test_new_options_the_component_does_not_take_are_named(seg_cfg, key,
                                                           error):
    from mmdrconv.apis import check_new_options
    merged = copy.deepcopy(seg_cfg)  # as load_config(SEG, {key: 1}) does
    merged.merge_from_dict({key: 1})
    with pytest.raises(ConfigOptionError) as raised:
        check_new_options(seg_cfg, merged, {key: 1})
    assert str(raised.value).startswith(f'--cfg-options {key}: {error}')


def test_new_options_the_component_takes_merge():
    cfg = load_config(SEG, {
        'default_hooks.checkpoint.save_begin': 2,
        'train_dataloader.pin_memory': True,
        'model.decode_head.norm_cfg.requires_grad': False,  # build_norm_layer
        # the options of the generator chosen in the same call
        'model.backbone.dcn.generator': 'mixture',
        'model.backbone.dcn.num_bases': 2,
        'model.test_cfg.new_setting': 1,  # read by name: not a typo
    })
    assert cfg.model.backbone.dcn == dict(type='DRConv', region_num=8,
                                          generator='mixture', num_bases=2)
    assert cfg.default_hooks.checkpoint.save_begin == 2


def test_train_tool_refuses_a_misspelled_option_before_training(tmp_path):
    from mmdrconv.cli.train import main
    with pytest.raises(SystemExit) as exit_:
        main([SEG, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
              'default_hooks.checkpoint.intervl=1'])
    assert "did you mean 'default_hooks.checkpoint.interval'?" in \
        str(exit_.value.code)
    assert not osp.exists(tmp_path / 'w')  # nothing written


def test_checkpoint_hook_options_of_the_config_file_are_checked_at_start(
        tmp_path, synthetic_data):
    # Not from --cfg-options: a config file with the typo. The Runner
    # builds the hook; CheckpointHook keeps unknown options for the save.
    from mmdrconv.runner import build_runner, prepare_train_cfg
    cfg = load_config(SEG)
    cfg.default_hooks.checkpoint.intervl = 1
    cfg = prepare_train_cfg(cfg, SEG, str(tmp_path / 'w'),
                            data_root=str(synthetic_data / 'cityscapes'))
    with pytest.raises(ConfigOptionError, match=r"^default_hooks.checkpoint"
                       r": CheckpointHook takes no option 'intervl'; did "
                       r"you mean 'interval'\?"):
        build_runner(cfg)
