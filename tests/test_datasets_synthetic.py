"""Generating the synthetic datasets (mmdrconv/datasets/synthetic): regenerating
replaces only what it wrote, an interruption keeps the old data, bad options
are named."""
import json
import os

import pytest


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
    (dict(appearance_cue=1.5), r'appearance_cue must be a probability in '
     r'\[0, 1\], got 1.5'),
    (dict(object_size=(0.6, 0.3)), r'object_size must be \(low, high\) '
     r'fractions .* got \(0.6, 0.3\)'),
    (dict(object_size=(0.0, 0.5)), 'object_size must be'),
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
    (['--appearance-cue', '2'], 'argument --appearance-cue: must be a '
     'probability in [0, 1], got 2'),
    (['--object-size', '0.5', '1.5'], 'object_size must be (low, high) '
     'fractions of the shorter image side'),
])
def test_generate_data_tool_refuses_bad_options(tmp_path, capsys, argv,
                                                error):
    from mmdrconv.cli.generate_data import main
    with pytest.raises(SystemExit) as exit_:
        main(['coco', str(tmp_path / 'x')] + argv)
    assert exit_.value.code == 2
    assert error in capsys.readouterr().err
    assert not (tmp_path / 'x').exists()


def test_style_of_ties_appearance_to_the_class_as_asked():
    import numpy as np

    from mmdrconv.datasets.synthetic.textures import style_of
    styles = dict(a=('smooth', 1), b=('dots', 2), c=('stripes', 3),
                  d=('checker', 4))
    rng = np.random.default_rng(0)
    assert {style_of(rng, 'b', styles, 1.0) for _ in range(50)} == {
        ('dots', 2)}
    draws = [style_of(rng, 'b', styles, 0.0) for _ in range(4000)]
    # cue 0: uniform over the 4 styles, the class's own at chance
    for style in styles.values():
        assert abs(draws.count(style) / 4000 - 0.25) < 0.03
    half = [style_of(rng, 'b', styles, 0.5) for _ in range(4000)]
    # cue 0.5: own style with probability 0.5 + 0.5 / 4
    assert abs(half.count(('dots', 2)) / 4000 - 0.625) < 0.03


def test_appearance_cue_of_one_is_the_default_data(tmp_path):
    """At 1 (the default) nothing is drawn for the styles, so the data are
    those of earlier versions, byte for byte; below 1 they differ."""
    import json

    import cv2
    from mmdrconv.datasets import generate
    for name, cue in (('default', None), ('one', 1.0), ('zero', 0.0)):
        options = {} if cue is None else dict(appearance_cue=cue)
        generate('coco', str(tmp_path / name), num_train=3, num_val=1,
                 seed=4, **options)
    ann = {name: json.loads((tmp_path / name / 'annotations' /
                             'instances_train.json').read_text())
           for name in ('default', 'one', 'zero')}
    assert ann['one'] == ann['default']
    image = {name: cv2.imread(str(tmp_path / name / 'train' /
                                  'train_000000.png'))
             for name in ('default', 'one', 'zero')}
    assert (image['one'] == image['default']).all()
    assert not (image['zero'] == image['default']).all()


def test_object_size_sets_the_objects_scale_and_keeps_default_data(
        tmp_path):
    """The default range gives the data of earlier versions, byte for byte;
    a larger range gives larger boxes."""
    import json

    import numpy as np
    from mmdrconv.datasets import generate
    runs = dict(default={}, explicit=dict(object_size=(0.15, 0.5)),
                large=dict(object_size=(0.5, 0.7)))
    for name, options in runs.items():
        generate('coco', str(tmp_path / name), num_train=6, num_val=1,
                 seed=4, **options)
    ann = {name: json.loads((tmp_path / name / 'annotations' /
                             'instances_train.json').read_text())
           for name in runs}
    assert ann['explicit'] == ann['default']
    assert (tmp_path / 'explicit' / 'train' / 'train_000000.png'
            ).read_bytes() == (tmp_path / 'default' / 'train' /
                               'train_000000.png').read_bytes()

    def sides(name):  # visible part's box, so occlusion can only shrink it
        return np.array([max(a['bbox'][2:]) for a in
                         ann[name]['annotations']])
    # an unoccluded object's longer box side is at most ~its drawn side
    assert sides('default').max() <= 0.5 * 128 * 1.15
    assert np.median(sides('large')) > 0.5 * 128 * 0.8
    assert np.median(sides('large')) > 1.5 * np.median(sides('default'))
