"""The analysis tools (mmdrconv/cli/{get_flops,benchmark,visualize_regions}.py
and mmdrconv/analysis/region_maps.py) refuse bad sizes and opacities."""
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _tool(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, f'tools/analysis/{name}.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


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


@pytest.mark.parametrize('module', ['benchmark', 'get_flops', 'suite_timing',
                                    'generate_data', 'visualize_regions',
                                    'benchmark_onnx'])
def test_help_describes_the_tool_in_whole_sentences(module, capsys):
    # The first docstring line alone cut the description mid-sentence
    # ("... training-step time and peak").
    import importlib
    cli = importlib.import_module(f'mmdrconv.cli.{module}')
    with pytest.raises(SystemExit) as exit_:
        cli.main(['--help'])
    assert exit_.value.code == 0
    text = ' '.join(capsys.readouterr().out.split())
    first_paragraph = ' '.join(cli.__doc__.strip().split('\n\n')[0].split())
    assert first_paragraph.endswith('.')
    assert first_paragraph in text
