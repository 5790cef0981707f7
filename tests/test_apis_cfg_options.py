"""--cfg-options keys that name nothing in the config are an error naming the
key and the nearest existing one (mmdrconv.apis.load_config, used by every
tool that takes --cfg-options and by the suite's cells)."""
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
        'model.backbone.new_option': 3,  # a new option of an existing dict
        'randomness.seed': 7,  # a Runner argument the config lacks
    })
    assert cfg.optim_wrapper.optimizer.lr == 0.5
    assert cfg.model.backbone.new_option == 3
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
