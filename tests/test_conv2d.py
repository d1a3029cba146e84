"""The convolution: forward against a direct loop and scipy.signal.correlate, backward against finite
differences (input, weights, bias) for every stride and padding, shapes and bad settings."""

import numpy as np
import pytest
from scipy.signal import correlate

from layer_checks import check_layer_gradients
from mnistlab.nn.conv2d import Conv2d

SETTINGS = [(3, 1, "valid"), (3, 1, "same"), (3, 2, "same"), (5, 2, "same"), (3, 2, "valid"),
            (4, 1, "valid"), (1, 1, "valid")]


def random_conv(in_shape, filters, kernel, stride, padding, rng):
    layer = Conv2d(in_shape, filters, kernel, stride, padding, dtype=np.float64)
    layer.initialize("he", rng)
    layer.params["bias"][...] = rng.standard_normal(filters)
    return layer


def loop_conv(x, weight, bias, stride, pad):
    """The textbook definition, one output number at a time."""
    n, h, w, c = x.shape
    k, _, _, f = weight.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out_h, out_w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    y = np.zeros((n, out_h, out_w, f))
    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                for o in range(f):
                    patch = xp[b, i * stride:i * stride + k, j * stride:j * stride + k, :]
                    y[b, i, j, o] = (patch * weight[..., o]).sum() + bias[o]
    return y


@pytest.mark.parametrize("kernel,stride,padding", SETTINGS)
def test_forward_equals_the_direct_loop(kernel, stride, padding):
    rng = np.random.default_rng(0)
    layer = random_conv((7, 6, 3), 4, kernel, stride, padding, rng)
    x = rng.standard_normal((2, 7, 6, 3))
    weight = layer.params["weight"].reshape(kernel, kernel, 3, 4)
    expected = loop_conv(x, weight, layer.params["bias"], stride, layer.pad)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel,stride,padding", SETTINGS)
def test_forward_equals_scipy_correlate(kernel, stride, padding):
    rng = np.random.default_rng(1)
    layer = random_conv((9, 8, 2), 3, kernel, stride, padding, rng)
    x = rng.standard_normal((3, 9, 8, 2))
    p = layer.pad
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    weight = layer.params["weight"].reshape(kernel, kernel, 2, 3)
    # Correlating (h, w, C) with a (k, k, C) filter in "valid" mode sums over the channels too.
    expected = np.stack([np.stack([correlate(xp[b], weight[..., o], mode="valid")[::stride, ::stride, 0]
                                   for o in range(3)], axis=-1) for b in range(3)]) + layer.params["bias"]
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel,stride,padding", SETTINGS)
def test_backward_matches_finite_differences_for_input_weights_and_bias(kernel, stride, padding):
    rng = np.random.default_rng(2)
    layer = random_conv((6, 5, 2), 3, kernel, stride, padding, rng)
    x = rng.standard_normal((2, 6, 5, 2))
    assert check_layer_gradients(layer, x, rng) == ["bias", "weight"]


def test_first_layer_backward_skips_the_input_gradient_but_fills_the_weight_gradient():
    rng = np.random.default_rng(3)
    layer = random_conv((5, 5, 1), 2, 3, 1, "valid", rng)
    x = rng.standard_normal((2, 5, 5, 1))
    y = layer.forward(x)
    assert layer.backward(np.ones_like(y), input_gradient=False) is None
    np.testing.assert_allclose(layer.grads["bias"], [2 * 9, 2 * 9])  # 2 images x 3x3 outputs


def test_output_shapes_follow_stride_and_padding():
    assert Conv2d((28, 28, 1), 32, 3).out_shape == (26, 26, 32)
    assert Conv2d((24, 24, 32), 32, 5, 2, "same").out_shape == (12, 12, 32)
    assert Conv2d((8, 8, 64), 64, 5, 2, "same").out_shape == (4, 4, 64)
    assert Conv2d((4, 4, 64), 128, 4).out_shape == (1, 1, 128)
    assert Conv2d((28, 28, 1), 8, 3, padding="same").out_shape == (28, 28, 8)


def test_weight_decay_applies_to_weights_only():
    layer = Conv2d((5, 5, 1), 2, 3)
    assert layer.decay == ("weight",) and set(layer.params) == {"weight", "bias"}


def test_a_batch_of_another_size_gets_its_own_buffers_and_the_same_answer():
    rng = np.random.default_rng(4)
    layer = random_conv((6, 6, 2), 3, 3, 1, "same", rng)
    x = rng.standard_normal((5, 6, 6, 2))
    whole = layer.forward(x).copy()
    np.testing.assert_allclose(layer.forward(x[:2]), whole[:2], rtol=1e-12)
    np.testing.assert_allclose(layer.forward(x), whole, rtol=0)


@pytest.mark.parametrize("args,message", [
    (((5, 5, 1), 2, 3, 3), "stride 3"),
    (((5, 5, 1), 2, 4, 1, "same"), "odd kernel"),
    (((5, 5, 1), 2, 3, 1, "full"), "padding 'full'"),
    (((2, 2, 1), 2, 3), "does not fit"),
])
def test_bad_settings_are_refused_with_what_is_wrong(args, message):
    with pytest.raises(ValueError, match=message):
        Conv2d(*args)
