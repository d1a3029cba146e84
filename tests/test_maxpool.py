"""Max pooling: forward against a direct loop, backward against finite differences, ties send the
gradient to one input only, odd sizes drop the last row and column, overlapping windows are refused."""

import numpy as np
import pytest

from layer_checks import check_layer_gradients
from mnistlab.nn.maxpool import MaxPool2d


def loop_pool(x, k):
    n, h, w, c = x.shape
    y = np.zeros((n, h // k, w // k, c))
    for i in range(h // k):
        for j in range(w // k):
            y[:, i, j] = x[:, i * k:i * k + k, j * k:j * k + k].max(axis=(1, 2))
    return y


@pytest.mark.parametrize("kernel,shape", [(2, (6, 4, 3)), (3, (6, 9, 2)), (2, (5, 7, 2))])
@pytest.mark.parametrize("training", [True, False])
def test_forward_equals_the_direct_loop(kernel, shape, training):
    x = np.random.default_rng(0).standard_normal((2, *shape))
    layer = MaxPool2d(shape, kernel, dtype=np.float64)
    np.testing.assert_array_equal(layer.forward(x, training), loop_pool(x, kernel))


@pytest.mark.parametrize("kernel,shape", [(2, (4, 6, 3)), (3, (6, 3, 2)), (2, (5, 5, 1))])
def test_backward_matches_finite_differences(kernel, shape):
    rng = np.random.default_rng(1)
    layer = MaxPool2d(shape, kernel, dtype=np.float64)
    check_layer_gradients(layer, rng.standard_normal((2, *shape)), rng)


def test_a_tie_sends_the_gradient_to_the_first_maximum_only():
    layer = MaxPool2d((2, 2, 1), 2, dtype=np.float64)
    layer.forward(np.zeros((1, 2, 2, 1)))
    dx = layer.backward(np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 0], [0, 0]])


def test_rows_and_columns_past_the_last_window_get_no_gradient():
    layer = MaxPool2d((3, 3, 1), 2, dtype=np.float64)
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    assert layer.forward(x)[0, 0, 0, 0] == 4
    dx = layer.backward(np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 0, 0], [0, 1, 0], [0, 0, 0]])


def test_overlapping_windows_are_refused():
    with pytest.raises(ValueError, match="stride 1 != kernel 2"):
        MaxPool2d((4, 4, 1), 2, stride=1)
