"""DRConv as a new user calls it: inputs and uses beyond the basic forward.

Each case checks values against the layer's plain forward (or a clear
error): dtypes, memory layouts, the meta device, copies, tracing and
inference mode, for every generator.
"""
import copy
import io
import pickle

import pytest
import torch

from mmdrconv import DRConv
from mmdrconv.core.ops import region_conv

from helpers import randomize


GENERATORS = ['modulated', 'mixture', 'paper']


def layer_of(generator, **kwargs):
    return randomize(DRConv(4, 6, 3, padding=1, region_num=3,
                            generator=generator, **kwargs))


@pytest.mark.parametrize('generator', GENERATORS)
def test_wrong_dtypes_are_named(generator):
    layer = layer_of(generator)
    with pytest.raises(TypeError, match='expects a floating-point input, '
                       'got torch.int64'):
        layer(torch.randint(0, 3, (2, 4, 8, 8)))
    # Was "mat1 and mat2 must have the same dtype" from inside a generator.
    with pytest.raises(TypeError, match=r'input dtype torch.float64 differs '
                       r"from the parameters' torch.float32"):
        layer(torch.randn(2, 4, 8, 8, dtype=torch.float64))
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(layer.double()(x).float(),
                               layer.float()(x.float()), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize('generator', GENERATORS)
def test_layouts_give_the_same_values(generator):
    layer = layer_of(generator)
    wide = torch.randn(2, 4, 8, 16)
    x = wide[..., ::2]  # non-contiguous
    expected = layer(x.contiguous())
    torch.testing.assert_close(layer(x), expected)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(layer(channels_last), expected, rtol=1e-5,
                               atol=1e-5)
    torch.testing.assert_close(layer.region_map(channels_last),
                               layer.region_map(x.contiguous()))


@pytest.mark.parametrize('generator', GENERATORS)
def test_meta_forward_gives_the_shape(generator):
    # Shape inference on the meta device (model summaries, FLOP counters);
    # 'mixture' and 'paper' used to fail with "unknown device type for
    # autocast".
    layer = DRConv(4, 6, 3, stride=2, padding=1, region_num=3,
                   generator=generator, device='meta')
    y = layer(torch.randn(2, 4, 9, 8, device='meta'))
    assert y.is_meta and tuple(y.shape) == (2, 6, 5, 4)
    out = region_conv(torch.randn(1, 4, 6, 6, device='meta'),
                      torch.randn(1, 2, 5, 4, 3, 3, device='meta'),
                      torch.randn(1, 2, 6, 6, device='meta'), padding=1)
    assert out.is_meta and tuple(out.shape) == (1, 5, 6, 6)


@pytest.mark.parametrize('generator', GENERATORS)
def test_copies_state_dicts_tracing_and_modes(generator):
    layer = layer_of(generator)
    x = torch.randn(2, 4, 8, 8)
    expected = layer(x)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    fresh = DRConv(4, 6, 3, padding=1, region_num=3, generator=generator)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    for other in (fresh, copy.deepcopy(layer),
                  pickle.loads(pickle.dumps(layer))):
        torch.testing.assert_close(other(x), expected)
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer.eval()(x), expected)  # no mode state
    # torch.jit.trace records the export form: it must follow the size.
    traced = torch.jit.trace(layer, (x, ), check_trace=False)
    other_size = torch.randn(3, 4, 11, 6)
    torch.testing.assert_close(traced(other_size), layer(other_size),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('kwargs, message', [
    (dict(hidden_ratio=-1), 'hidden_ratio must be a number > 0'),
    (dict(hidden_ratio=0), 'hidden_ratio must be a number > 0'),
    (dict(region_num=True), 'region_num must be a positive int'),
    (dict(generator='mixture', num_bases=2.5), 'num_bases must be an int'),
    (dict(generator='mixture', num_bases=0), 'num_bases must be an int'),
])
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DRConv(4, 6, 3, **kwargs)
