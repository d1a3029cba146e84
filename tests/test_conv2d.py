"""The convolution: forward against a direct loop and scipy.signal.correlate, the training step's
backward against finite differences (input, weights, bias) for every stride and padding, shapes,
activation, and bad settings."""

import numpy as np
import pytest
from scipy.signal import correlate

from layer_checks import check_layer_gradients, spec, training_step
from mnistlab.nn.conv2d import Conv2d, ConvStep, same_padding

SETTINGS = [(3, 1, "valid"), (3, 1, "same"), (3, 2, "same"), (5, 2, "same"), (3, 2, "valid"),
            (4, 1, "valid"), (4, 1, "same"), (1, 1, "valid"), (1, 2, "valid")]


def out_size(size, kernel, stride, padding):
    return -(-size // stride) if padding == "same" else (size - kernel) // stride + 1


def random_conv(in_shape, filters, kernel, stride, padding, rng, activation=None):
    c, h, w = in_shape
    out = (filters, out_size(h, kernel, stride, padding), out_size(w, kernel, stride, padding))
    layer = Conv2d(spec(in_shape, out, filters=filters, kernel=kernel, stride=stride, padding=padding,
                        activation=activation), dtype=np.float64)
    layer.initialize("he", rng)
    layer.params["bias"][...] = rng.standard_normal(filters)
    return layer


def padded(x, layer):
    top, bottom, left, right = layer.pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))


def loop_conv(xp, weight, bias, stride, out_hw):
    """The textbook definition, one output number at a time: xp (n, h, w, C) already padded,
    weight (F, C, K, K) as PyTorch orders it."""
    n, f, k = len(xp), len(weight), weight.shape[-1]
    y = np.zeros((n, *out_hw, f))
    for b in range(n):
        for i in range(out_hw[0]):
            for j in range(out_hw[1]):
                patch = xp[b, i * stride:i * stride + k, j * stride:j * stride + k, :]  # (K, K, C)
                for o in range(f):
                    y[b, i, j, o] = (patch * weight[o].transpose(1, 2, 0)).sum() + bias[o]
    return y


@pytest.mark.parametrize("kernel,stride,padding", SETTINGS)
def test_forward_equals_the_direct_loop_in_inference_and_training(kernel, stride, padding):
    rng = np.random.default_rng(0)
    layer = random_conv((3, 7, 6), 4, kernel, stride, padding, rng)
    x = rng.standard_normal((2, 7, 6, 3))
    expected = loop_conv(padded(x, layer), layer.params["weight"], layer.params["bias"], stride,
                         layer.out_hwc[:2])
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)
    run, _, _ = training_step(layer, 2)
    np.testing.assert_allclose(run(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel,stride,padding", SETTINGS)
def test_forward_equals_scipy_correlate(kernel, stride, padding):
    rng = np.random.default_rng(1)
    layer = random_conv((2, 9, 8), 3, kernel, stride, padding, rng)
    x = rng.standard_normal((3, 9, 8, 2))
    xp = padded(x, layer)
    weight = layer.params["weight"].transpose(2, 3, 1, 0)  # (K, K, C, F)
    out_h, out_w, _ = layer.out_hwc
    # Correlating (h, w, C) with a (K, K, C) filter in "valid" mode sums over the channels too.
    expected = np.stack([np.stack([correlate(xp[b], weight[..., o], mode="valid")[::stride, ::stride, 0]
                                   for o in range(3)], axis=-1) for b in range(3)]) + layer.params["bias"]
    np.testing.assert_allclose(layer.forward(x), expected[:, :out_h, :out_w], rtol=1e-12, atol=1e-12)


def test_same_padding_keeps_the_size_at_stride_one_and_halves_it_rounding_up_at_stride_two():
    assert same_padding(28, 3, 1) == (1, 1)
    assert same_padding(28, 4, 1) == (1, 2)
    assert same_padding(24, 5, 2) == (2, 1)  # PyTorch's padding=2: its last padded row is never read
    assert same_padding(7, 3, 2) == (1, 1)


@pytest.mark.parametrize("col2im", [False, True])
@pytest.mark.parametrize("kernel,stride,padding", SETTINGS)
def test_backward_matches_finite_differences_for_input_weights_and_bias(kernel, stride, padding, col2im,
                                                                         monkeypatch):
    """Both ways of the input gradient: shifted products on the grid of window corners, and col2im
    (which the step takes where that grid would be mostly padding)."""
    if col2im:
        monkeypatch.setattr(ConvStep, "MAX_CORNERS_PER_OUTPUT", 0.0)
    else:
        monkeypatch.setattr(ConvStep, "MAX_CORNERS_PER_OUTPUT", 1e9)
    rng = np.random.default_rng(2)
    layer = random_conv((2, 6, 5), 3, kernel, stride, padding, rng)
    x = rng.standard_normal((2, 6, 5, 2))
    assert layer.plan(2, True).shifted != col2im
    assert check_layer_gradients(layer, x, rng) == ["conv"]


def test_backward_through_the_relu_matches_finite_differences():
    rng = np.random.default_rng(3)
    layer = random_conv((2, 5, 5), 3, 3, 1, "same", rng, activation="relu")
    check_layer_gradients(layer, rng.standard_normal((3, 5, 5, 2)), rng)


def test_col2im_in_blocks_of_images_gives_the_right_gradient(monkeypatch):
    monkeypatch.setattr(ConvStep, "MAX_CORNERS_PER_OUTPUT", 0.0)
    monkeypatch.setattr(ConvStep, "BLOCK_ROWS", 2 * 9)  # 5 images of 3x3 outputs: blocks of 2, 2 and 1
    rng = np.random.default_rng(4)
    layer = random_conv((2, 5, 5), 3, 3, 2, "same", rng)
    assert layer.plan(5, True).block == 2
    check_layer_gradients(layer, rng.standard_normal((5, 5, 5, 2)), rng)


def test_small_outputs_take_col2im_and_large_ones_the_shifted_products():
    rng = np.random.default_rng(7)
    assert random_conv((32, 26, 26), 4, 3, 1, "valid", rng).plan(2, True).shifted
    assert random_conv((32, 24, 24), 4, 5, 2, "same", rng).plan(2, True).shifted
    assert not random_conv((64, 4, 4), 4, 4, 1, "valid", rng).plan(2, True).shifted


def test_first_layer_step_has_no_input_gradient_but_fills_the_weight_gradient():
    rng = np.random.default_rng(5)
    layer = random_conv((1, 5, 5), 2, 3, 1, "valid", rng)
    step = layer.plan(2, False)
    assert step.dx is None
    above = type("Above", (), {"x": np.zeros((2, 3, 3, 2)), "dx": np.ones((2, 3, 3, 2))})()
    step.bind(above)
    step.x[...] = rng.standard_normal((2, 5, 5, 1))
    step.forward(None)
    step.backward()
    np.testing.assert_allclose(step.parameters[0].gradient.value()[-1], [9, 9])  # bias: 2x9 ones / 2


def test_weight_is_a_view_in_pytorch_order_and_only_it_decays():
    rng = np.random.default_rng(6)
    layer = random_conv((3, 5, 5), 4, 3, 1, "valid", rng)
    assert layer.params["weight"].shape == (4, 3, 3, 3) and np.shares_memory(layer.params["weight"], layer.packed)
    layer.params["weight"][1, 2, 0, 1] = 7.0
    assert layer.packed[(0 * 3 + 1) * 3 + 2, 1] == 7.0  # row (ky, kx, channel), column filter
    step = layer.plan(1, True)
    step.bind(type("Above", (), {"x": np.zeros((1, 3, 3, 4)), "dx": np.zeros((1, 3, 3, 4))})())
    (param,) = step.parameters
    assert param.decay == slice(0, -1) and param.parts == {"conv.weight": slice(0, -1), "conv.bias": -1}


@pytest.mark.parametrize("options,message", [
    (dict(filters=2, kernel=3, stride=3, padding="same"), "stride 3"),
])
def test_bad_settings_are_refused_with_what_is_wrong(options, message):
    with pytest.raises(ValueError, match=message):
        Conv2d(spec((1, 6, 6), (2, 2, 2), **options))
