"""convert_to_drconv (mmdrconv/core/converter.py): what it selects, the errors
for patterns that are most likely mistakes, and that it changes the layer
and nothing else (shared modules, requires_grad, hooks, training mode,
device and dtype)."""
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdrconv import DRConv, convert_to_drconv
from mmdrconv.core.converter import (UntrainedParametersError,
                                     plan_conversion)
from mmdrconv.core.layers import GeneratedFilterDRConv, ModulatedDRConv


# ------------------------------------------------------- selection, errors
class PaddedConv(nn.Conv2d):
    """A Conv2d subclass that does more than a convolution."""

    def forward(self, x):
        return super().forward(x) + 1


def toy_model():
    model = nn.Sequential()
    model.add_module('stem', nn.Conv2d(3, 8, 3, padding=1))
    model.add_module('block', nn.Sequential(
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1)))
    model.add_module('up', nn.ConvTranspose2d(8, 8, 2, stride=2))
    model.add_module('reflect', nn.Conv2d(8, 8, 3, padding=1,
                                          padding_mode='reflect'))
    model.add_module('custom', PaddedConv(8, 8, 3, padding=1))
    model.add_module('same', nn.Conv2d(8, 8, 3, padding='same'))
    model.add_module('same_even', nn.Conv2d(8, 8, 2, padding='same'))
    model.add_module('conv1d', nn.Conv1d(8, 8, 3))
    model.add_module('fc', nn.Linear(8, 2))
    return model


@pytest.mark.parametrize('name, reason', [
    ('fc', 'fc: Linear: not a convolution'),
    ('up', 'up: ConvTranspose2d: a transposed convolution'),
    ('custom', 'custom: PaddedConv: a subclass of nn.Conv2d'),
    ('conv1d', 'conv1d: Conv1d: DRConv replaces 2-d convolutions only'),
])
def test_converter_refuses_a_named_module_it_cannot_convert(name, reason):
    model = toy_model()
    with pytest.raises(ValueError) as error:
        convert_to_drconv(model, include=[name], region_num=2)
    message = str(error.value)
    assert message.startswith(f'convert_to_drconv: include pattern {name!r} '
                              'names a module that cannot be converted:')
    assert reason in message
    assert not any(isinstance(m, DRConv) for m in model.modules())


def test_converter_names_patterns_that_match_nothing():
    with pytest.raises(ValueError, match=r"include pattern 'blok\.\*' "
                       r"matches no module name; did you mean 'block\.\d'"):
        convert_to_drconv(toy_model(), include=['blok.*'])
    with pytest.raises(ValueError, match=r"exclude pattern 'block\.9' "
                       'matches no module name'):
        convert_to_drconv(toy_model(), include=['block.*'],
                          exclude=['block.9'])
    with pytest.raises(ValueError, match='include is empty'):
        convert_to_drconv(toy_model(), include=[])


def test_converter_explains_a_pattern_that_converts_nothing():
    with pytest.raises(ValueError) as error:
        convert_to_drconv(toy_model(), include=['f*', 'stem'])
    assert str(error.value) == (
        "convert_to_drconv: include pattern 'f*' converts nothing; it "
        'matches 1 module(s), none convertible:\n  fc: Linear: not a '
        'convolution')
    # A container named without a wildcard: say how to reach its convs.
    with pytest.raises(ValueError, match=r"use 'block\.\*'"):
        convert_to_drconv(toy_model(), include=['block'])
    # The kernel_size filter applies to named convs too.
    with pytest.raises(ValueError, match=r'stem: kernel_size \(3, 3\) is not '
                       r'the requested kernel_size=\(1, 1\)'):
        convert_to_drconv(toy_model(), include=['stem'], kernel_size=1)
    with pytest.raises(ValueError, match=r"block\.0: excluded by 'block\.0'"):
        convert_to_drconv(toy_model(), include=['block.0'],
                          exclude=['block.0'])


def test_wildcard_converts_what_it_can_and_warns_about_convs_it_cannot():
    model = toy_model()
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        before = {name: getattr(model, name)(x) for name in
                  ('same', 'same_even', 'reflect')}
    with pytest.warns(UserWarning) as record:
        convert_to_drconv(model, region_num=2)
    messages = [str(r.message) for r in record
                if str(r.message).startswith('convert_to_drconv')]
    assert len(messages) == 1
    message = messages[0]
    assert message.startswith("convert_to_drconv: include pattern '*' leaves "
                              '3 convolution(s) unconverted:')
    for name in ('up', 'custom', 'conv1d'):
        assert f'\n  {name}: ' in message
    assert 'fc' not in message  # not a convolution: skipped silently
    converted = sorted(n for n, m in model.named_modules()
                       if isinstance(m, DRConv))
    assert converted == ['block.0', 'block.2', 'reflect', 'same',
                         'same_even', 'stem']
    assert model.reflect.padding_mode == 'reflect'
    # padding='same' (even kernels pad one side more) and padding_mode are
    # kept, and the modulated DRConv starts as the conv it replaced.
    with torch.no_grad():
        for name, expected in before.items():
            torch.testing.assert_close(getattr(model, name)(x), expected)
    # Converting again is harmless: it must not touch the DRConvs' own
    # guide convs, nor refuse patterns that match only converted layers.
    layers = dict(model.named_modules())
    convert_to_drconv(model, include=['stem*', 'block.*'])
    assert type(model.stem.guide) is nn.Conv2d
    assert dict(model.named_modules()) == layers


def test_converter_without_warning_when_everything_converts():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        convert_to_drconv(model, region_num=2)
    assert isinstance(model[0], DRConv)
    layer = convert_to_drconv(nn.Conv2d(3, 4, 1), region_num=2)
    assert isinstance(layer, DRConv) and layer.kernel_size == (1, 1)



def test_converter_keeps_keys_and_function():
    model = nn.Sequential()
    model.add_module('stem', nn.Conv2d(3, 8, 3, padding=1))
    model.add_module('block', nn.Sequential(nn.Conv2d(8, 8, 3, padding=1),
                                            nn.ReLU(), nn.Conv2d(8, 8, 1)))
    x = torch.randn(2, 3, 10, 10)
    expected = model(x)
    state = model.state_dict()
    convert_to_drconv(model, include=['block.*'], exclude=['block.2'],
                      region_num=4)
    assert type(model.stem) is nn.Conv2d
    assert isinstance(model.block[0], DRConv)
    assert type(model.block[2]) is nn.Conv2d
    # Modulated DRConv starts as the conv it replaced, under the same keys.
    torch.testing.assert_close(model(x), expected)
    assert set(state) <= set(model.state_dict())
    convert_to_drconv(model, kernel_size=1)  # pointwise only
    assert isinstance(model.block[2], DRConv) and type(model.stem) is nn.Conv2d


# ------------------------------------------------- everything but the layer
def shared_model(conv=None):
    """One conv registered as '0' and as '2.0' (a shared module)."""
    conv = conv or nn.Conv2d(4, 4, 3, padding=1)
    return nn.Sequential(conv, nn.ReLU(), nn.Sequential(conv))


@pytest.mark.parametrize('include', ['0', '2.0', '*', '2.*'])
def test_shared_conv_is_converted_once_under_every_name(include):
    model = shared_model()
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        expected = model(x)
    assert plan_conversion(model, include=[include]) == ['0', '2.0']
    convert_to_drconv(model, include=[include], region_num=2)
    assert isinstance(model[0], ModulatedDRConv)
    assert model[0] is model[2][0]
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected)
    # One layer, one set of parameters (state_dict lists both names).
    assert len(list(model.parameters())) == len(list(model[0].parameters()))
    assert {'0.weight', '2.0.weight', '0.guide.weight'} <= set(
        model.state_dict())


def test_shared_conv_excluded_under_any_name_stays():
    model = shared_model()
    with pytest.raises(ValueError) as error:
        convert_to_drconv(model, include=['2.0'], exclude=['0'])
    assert str(error.value) == (
        "convert_to_drconv: include pattern '2.0' names a module that cannot "
        "be converted:\n  2.0: excluded by '0' (as '0', the same module)")
    assert type(model[0]) is nn.Conv2d and model[0] is model[2][0]
    with pytest.raises(ValueError, match="converts nothing"):
        convert_to_drconv(model, include=['*'], exclude=['2.0'])


def test_tied_weights_stay_tied():
    first, second = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3,
                                                             padding=1)
    second.weight = first.weight
    model = nn.Sequential(first, second)
    convert_to_drconv(model, region_num=2)
    assert model[0].weight is model[1].weight is first.weight
    assert model[0].bias is not model[1].bias


@pytest.mark.parametrize('weight_grad, bias_grad', [(True, True),
                                                    (False, False),
                                                    (False, True)])
def test_requires_grad_is_kept(weight_grad, bias_grad):
    conv = nn.Conv2d(4, 6, 3, padding=1)
    conv.weight.requires_grad_(weight_grad)
    conv.bias.requires_grad_(bias_grad)
    weight, bias = conv.weight, conv.bias
    model = nn.Sequential(conv)
    convert_to_drconv(model, region_num=2)
    layer = model[0]
    # The conv's own Parameters (flags, values, optimizer references).
    assert layer.weight is weight and layer.bias is bias
    assert layer.weight.requires_grad == weight_grad
    assert layer.bias.requires_grad == bias_grad
    # New parameters: frozen exactly when the whole conv was.
    new = [p for n, p in layer.named_parameters()
           if n not in ('weight', 'bias')]
    assert new and all(p.requires_grad == (weight_grad or bias_grad)
                       for p in new)
    x = torch.randn(1, 4, 5, 5, requires_grad=True)
    layer(x).sum().backward()
    assert (layer.weight.grad is not None) == weight_grad
    assert (layer.guide.weight.grad is not None) == (weight_grad or
                                                     bias_grad)


def test_frozen_conv_with_generated_filters_warns_and_stays_frozen():
    conv = nn.Conv2d(4, 6, 3, padding=1).requires_grad_(False)
    with pytest.warns(UserWarning, match=r"'0' was frozen; its DRConv "
                      r"\(generator='mixture'\) has newly initialised"):
        convert_to_drconv(nn.Sequential(conv), region_num=2,
                          generator='mixture')
    layer = convert_to_drconv(nn.Conv2d(4, 6, 3), region_num=2,
                              generator='paper')
    assert isinstance(layer, GeneratedFilterDRConv)
    assert all(p.requires_grad for p in layer.parameters())


def test_bias_kept_for_generated_filters():
    conv = nn.Conv2d(4, 6, 3, padding=1)
    bias = conv.bias.detach().clone()
    layer = convert_to_drconv(conv, region_num=2, generator='mixture')
    assert layer.bias is conv.bias
    torch.testing.assert_close(layer.bias.detach(), bias, rtol=0, atol=0)


def test_hooks_carry_over_and_their_handles_still_remove_them():
    conv = nn.Conv2d(4, 6, 3, padding=1)
    calls = []
    conv.register_forward_pre_hook(lambda m, args: (args[0] * 2, ))
    conv.register_forward_hook(
        lambda m, args, out: calls.append(('forward', m, out)))
    kw_handle = conv.register_forward_hook(
        lambda m, args, kwargs, out: calls.append(('kwargs', m, out)),
        with_kwargs=True)
    conv.register_full_backward_hook(
        lambda m, grad_in, grad_out: calls.append(('backward', m,
                                                   grad_out[0])))
    conv.register_state_dict_post_hook(
        lambda m, state, prefix, meta: state.__setitem__(prefix + 'tag',
                                                         torch.ones(1)))
    conv.register_load_state_dict_pre_hook(
        lambda m, state, prefix, *args: calls.append(('load', m)))
    model = nn.Sequential(conv)
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    with torch.no_grad():
        expected = F.conv2d(x * 2, conv.weight, conv.bias, padding=1)
    convert_to_drconv(model, region_num=2)
    layer = model[0]
    calls.clear()
    y = layer(x)
    # The pre-hook doubled the input; the DRConv starts as the conv.
    torch.testing.assert_close(y, expected)
    assert [c[0] for c in calls] == ['forward', 'kwargs']
    assert all(c[1] is layer for c in calls)
    torch.testing.assert_close(calls[0][2], y)
    grad = torch.randn_like(y)
    y.backward(grad)
    assert calls[-1][0] == 'backward' and calls[-1][1] is layer
    torch.testing.assert_close(calls[-1][2], grad)
    state = model.state_dict()
    assert torch.equal(state['0.tag'], torch.ones(1))
    calls.clear()
    state.pop('0.tag')
    model.load_state_dict(state)
    assert calls == [('load', layer)]
    # A handle taken on the conv removes the hook from the DRConv.
    kw_handle.remove()
    calls.clear()
    layer(x)
    assert [c[0] for c in calls] == ['forward']


@pytest.mark.parametrize('mode', ['eval', 'train', 'mixed'])
def test_training_mode_is_kept(mode):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 1))
    model.train(mode == 'train')
    if mode == 'mixed':
        model[1].train()
    convert_to_drconv(model, region_num=2)
    for index in (0, 1):
        wanted = mode == 'train' or (mode == 'mixed' and index == 1)
        assert all(m.training == wanted for m in model[index].modules())


def test_float64_model_is_converted_exactly():
    model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1),
                          nn.Conv2d(5, 4, 1, bias=False)).double()
    for conv in model:  # values a float32 cannot hold
        nn.init.normal_(conv.weight, std=0.3)
    weights = [m.weight.detach().clone() for m in model]
    assert not torch.equal(weights[0], weights[0].float().double())
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    with torch.no_grad():
        expected = model(x)
    convert_to_drconv(model, region_num=3)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    for layer, weight in zip(model, weights):
        assert torch.equal(layer.weight, weight)  # never rounded to fp32
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize('generator', ['modulated', 'mixture'])
def test_meta_device_model_stays_on_meta(generator):
    with torch.device('meta'):
        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8),
                              nn.Conv2d(8, 8, 1)).to(torch.bfloat16)
    convert_to_drconv(model, region_num=2, generator=generator)
    assert isinstance(model[0], DRConv) and isinstance(model[2], DRConv)
    for name, tensor in model.state_dict().items():
        assert tensor.device.type == 'meta', name
        if tensor.is_floating_point():
            assert tensor.dtype == torch.bfloat16, name


def test_a_failing_build_changes_nothing():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
    with pytest.raises(ValueError, match='region_num must be a positive'):
        convert_to_drconv(model, region_num=0)
    assert all(type(m) is nn.Conv2d for m in model)


def test_options_taken_from_the_conv_are_refused():
    with pytest.raises(TypeError, match=r'stride, bias come\(s\) from each '
                       'converted conv'):
        convert_to_drconv(nn.Conv2d(3, 4, 3), stride=2, bias=False)


def test_reparametrised_conv_is_refused():
    conv = nn.utils.spectral_norm(nn.Conv2d(3, 4, 3))
    model = nn.Sequential(conv, nn.Conv2d(4, 4, 1))
    with pytest.raises(ValueError, match=r'0: holds weight_orig, weight_u, '
                       r'weight_v besides its weight and bias'):
        convert_to_drconv(model, include=['0'])
    parametrized = nn.utils.parametrizations.weight_norm(nn.Conv2d(4, 4, 1))
    with pytest.raises(ValueError, match=r'0: parametrized \(weight, '
                       r'torch\.nn\.utils\.parametrize\); DRConv would '
                       'drop the parametrization'):
        convert_to_drconv(nn.Sequential(parametrized), include=['0'])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        convert_to_drconv(model, region_num=2)
    assert any('leaves 1 convolution(s) unconverted' in str(r.message)
               for r in record)
    assert model[0] is conv and isinstance(model[1], DRConv)


# ------------------------------------------------- converting twice, weights
@pytest.mark.parametrize('generator', ['modulated', 'mixture'])
def test_converting_twice_with_the_defaults_is_harmless(generator):
    # The case: a second convert_to_drconv(model) with include='*'
    # raised "converts nothing" although converting twice is documented as
    # harmless.
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        convert_to_drconv(model, region_num=2, generator=generator)
    layers = dict(model.named_modules())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # and silently
        assert convert_to_drconv(model) is model
    assert dict(model.named_modules()) == layers
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    # A pattern matching no conv at all is still a mistake.
    with pytest.raises(ValueError, match="'1' names a module that cannot"):
        convert_to_drconv(model, include=['1'])


@pytest.mark.parametrize('generator', ['mixture', 'paper'])
def test_generated_filters_warn_that_the_weights_are_dropped(generator):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 1))
    with pytest.warns(UserWarning) as record:
        convert_to_drconv(model, region_num=2, generator=generator)
    messages = [str(r.message) for r in record]
    assert messages == [
        f"convert_to_drconv: generator='{generator}' makes new filters, so "
        "the weights of 2 converted conv(s) are not used and their values "
        "(pretrained or trained) are dropped: '0', '1'. "
        "generator='modulated' (the default) keeps them."]
    assert record[0].filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # the default keeps the weights
        convert_to_drconv(nn.Conv2d(3, 4, 3), region_num=2)


def test_config_level_conversion_of_a_new_model_does_not_warn():
    pytest.importorskip('mmcv')
    import mmcv.cnn  # noqa: F401 (registers Conv2d)
    from mmdrconv.openmmlab.registry import build_converted
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        model = build_converted(
            dict(type='Conv2d', in_channels=3, out_channels=4,
                 kernel_size=3), drconv=dict(region_num=2,
                                             generator='mixture'))
    assert isinstance(model, GeneratedFilterDRConv)


# ------------------------------------------- converting after the optimizer
def trainable_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 2, 1))


def train(model, optimizer, steps=5):
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(4, 3, 8, 8, generator=generator)
        target = torch.randn(4, 2, 8, 8, generator=generator)
        optimizer.zero_grad()
        F.mse_loss(model(x), target).backward()
        optimizer.step()


def new_parameters(layer):
    return {n: p for n, p in layer.named_parameters()
            if n not in ('weight', 'bias')}


@pytest.mark.parametrize('generator', ['modulated', 'mixture'])
def test_optimizer_argument_trains_the_new_parameters(generator):
    # The case: SGD built first, then convert_to_drconv(include='2'):
    # the guide and generator got gradients but never changed.
    model = trainable_model()
    optimizer = torch.optim.SGD(
        [dict(params=list(model[0].parameters()), lr=0.0),
         dict(params=list(model[2].parameters()) +
              list(model[4].parameters()), lr=0.05, momentum=0.9,
              weight_decay=1e-4)])
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        convert_to_drconv(model, include='2', region_num=4,
                          generator=generator, optimizer=optimizer)
    layer = model[2]
    new = new_parameters(layer)
    assert new
    # They joined the converted conv's group: its lr, momentum and decay,
    # and the scheduler built before steps them too.
    group = optimizer.param_groups[1]
    assert all(any(p is q for q in group['params']) for p in new.values())
    assert len(optimizer.param_groups) == 2
    before = {n: p.detach().clone() for n, p in new.items()}
    train(model, optimizer, steps=1)
    scheduler.step()
    assert group['lr'] == 0.025
    train(model, optimizer, steps=4)
    for name, param in new.items():
        assert not torch.equal(param, before[name]), name


def test_optimizer_built_first_without_the_argument_is_an_error():
    model = trainable_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    convert_to_drconv(model, include='2', region_num=4)
    guide = model[2].guide.weight.detach().clone()
    with pytest.raises(UntrainedParametersError) as error:
        train(model, optimizer, steps=5)
    message = str(error.value)
    assert message.startswith("SGD trains the parameters of the convs "
                              "converted to DRConv ('2'), but no optimizer "
                              "holds the DRConv layers' new parameters")
    assert 'convert_to_drconv(..., optimizer=optimizer)' in message
    assert torch.equal(model[2].guide.weight, guide)  # indeed untrained


def test_optimizer_built_after_converting_is_not_an_error():
    model = trainable_model()
    convert_to_drconv(model, include='2', region_num=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    guide = model[2].guide.weight.detach().clone()
    train(model, optimizer, steps=3)
    assert not torch.equal(model[2].guide.weight, guide)


def test_a_second_optimizer_for_the_new_parameters_is_not_an_error():
    model = trainable_model()
    main = torch.optim.SGD(model.parameters(), lr=0.05)
    convert_to_drconv(model, include='2', region_num=4)
    extra = torch.optim.Adam(new_parameters(model[2]).values(), lr=1e-3)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = torch.randn(2, 3, 8, 8, generator=generator)
        for optimizer in (main, extra):
            optimizer.zero_grad()
        model(x).square().mean().backward()
        main.step()
        extra.step()


def test_two_converted_models_train_side_by_side():
    # Each conversion adds a global optimizer hook; the first model's,
    # satisfied at its optimizer's first step, used to remove itself while
    # torch iterated over the hooks, and the step failed with "OrderedDict
    # mutated during iteration" when the second model's came next. The
    # second model's check still works after the first is satisfied.
    first = convert_to_drconv(trainable_model(), include='2', region_num=4)
    second = trainable_model()
    stale = torch.optim.SGD(second.parameters(), lr=0.05)
    convert_to_drconv(second, include='2', region_num=4)
    optimizer = torch.optim.SGD(first.parameters(), lr=0.05)
    guide = first[2].guide.weight.detach().clone()
    train(first, optimizer, steps=3)
    assert not torch.equal(first[2].guide.weight, guide)
    with pytest.raises(UntrainedParametersError, match="'2'"):
        train(second, stale, steps=3)


def test_optimizer_of_only_other_layers_is_not_an_error():
    # Layers left out of the optimizer on purpose (conv and DRConv alike).
    model = trainable_model()
    optimizer = torch.optim.SGD(model[4].parameters(), lr=0.05)
    convert_to_drconv(model, include='2', region_num=4)
    train(model, optimizer, steps=3)


def test_optimizer_without_the_conv_is_refused_before_converting():
    model = trainable_model()
    optimizer = torch.optim.SGD(model[4].parameters(), lr=0.05)
    with pytest.raises(ValueError, match=r"optimizer= holds no parameter of "
                       r"'2', so there is no param group"):
        convert_to_drconv(model, include='2', region_num=4,
                          optimizer=optimizer)
    assert type(model[2]) is nn.Conv2d  # nothing changed
    frozen = trainable_model()
    frozen[2].requires_grad_(False)
    convert_to_drconv(frozen, include='2', region_num=4,
                      optimizer=optimizer)  # a frozen conv needs none
    assert not any(p.requires_grad for p in frozen[2].parameters())
