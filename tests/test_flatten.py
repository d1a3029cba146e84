"""Flatten: NHWC maps to rows in (h, w, channel) order; backward restores the shape."""

import numpy as np

from layer_checks import check_layer_gradients, spec, training_step
from mnistlab.nn.flatten import Flatten


def test_rows_are_pixels_in_order_with_each_pixels_channels_together():
    x = np.arange(2 * 2 * 3 * 4, dtype=np.float32).reshape(2, 2, 3, 4)  # NHWC
    layer = Flatten(spec((4, 2, 3), (24,)))
    y = layer.forward(x)
    assert y.shape == (2, 24) and np.shares_memory(x, y)
    np.testing.assert_array_equal(y[1, 4:8], x[1, 0, 1, :])
    np.testing.assert_array_equal(training_step(layer, 2)[0](x), y)


def test_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    layer = Flatten(spec((3, 2, 2), (12,)), dtype=np.float64)
    check_layer_gradients(layer, rng.standard_normal((2, 2, 2, 3)), rng)
