"""Flatten: NHWC maps to rows in (h, w, channel) order without a copy; backward restores the shape."""

import numpy as np

from layer_checks import check_layer_gradients
from mnistlab.nn.flatten import Flatten


def test_rows_are_pixels_in_order_with_each_pixels_channels_together():
    x = np.arange(2 * 2 * 3 * 4, dtype=np.float32).reshape(2, 2, 3, 4)
    layer = Flatten((2, 3, 4))
    y = layer.forward(x)
    assert layer.out_shape == (24,) and y.shape == (2, 24)
    np.testing.assert_array_equal(y[1, 4:8], x[1, 0, 1, :])
    assert np.shares_memory(x, y)


def test_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    check_layer_gradients(Flatten((2, 2, 3), dtype=np.float64), rng.standard_normal((2, 2, 2, 3)), rng)
