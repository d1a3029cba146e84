"""Max pooling: forward against a direct loop, backward against finite differences, ties send the
gradient to one input only, odd sizes drop the last row and column, overlapping windows are refused."""

import numpy as np
import pytest

from layer_checks import check_layer_gradients, spec, training_step
from mnistlab.nn.maxpool import MaxPool2d


def pool(shape, size, stride=None):
    """A MaxPool2d on NHWC ``shape`` (h, w, C)."""
    h, w, c = shape
    options = dict(size=size) if stride is None else dict(size=size, stride=stride)
    return MaxPool2d(spec((c, h, w), (c, h // size, w // size), **options), dtype=np.float64)


def loop_pool(x, k):
    n, h, w, c = x.shape
    y = np.zeros((n, h // k, w // k, c))
    for i in range(h // k):
        for j in range(w // k):
            y[:, i, j] = x[:, i * k:i * k + k, j * k:j * k + k].max(axis=(1, 2))
    return y


@pytest.mark.parametrize("kernel,shape", [(2, (6, 4, 3)), (3, (6, 9, 2)), (2, (5, 7, 2))])
def test_forward_equals_the_direct_loop_in_inference_and_training(kernel, shape):
    x = np.random.default_rng(0).standard_normal((2, *shape))
    layer = pool(shape, kernel)
    np.testing.assert_array_equal(layer.forward(x), loop_pool(x, kernel))
    run, _, _ = training_step(layer, 2)
    np.testing.assert_array_equal(run(x), loop_pool(x, kernel))


@pytest.mark.parametrize("kernel,shape", [(2, (4, 6, 3)), (3, (6, 3, 2)), (2, (5, 5, 1))])
def test_backward_matches_finite_differences(kernel, shape):
    rng = np.random.default_rng(1)
    layer = pool(shape, kernel)
    check_layer_gradients(layer, rng.standard_normal((2, *shape)), rng)


def test_a_tie_sends_the_gradient_to_the_first_maximum_only():
    run, step, above = training_step(pool((2, 2, 1), 2), 1)
    run(np.zeros((1, 2, 2, 1)))
    above.dx[...] = 1
    step.backward()
    np.testing.assert_array_equal(step.dx[0, :, :, 0], [[1, 0], [0, 0]])


def test_rows_and_columns_past_the_last_window_get_no_gradient():
    run, step, above = training_step(pool((3, 3, 1), 2), 1)
    assert run(np.arange(9.0).reshape(1, 3, 3, 1))[0, 0, 0, 0] == 4
    above.dx[...] = 1
    step.backward()
    np.testing.assert_array_equal(step.dx[0, :, :, 0], [[0, 0, 0], [0, 1, 0], [0, 0, 0]])


def test_overlapping_windows_are_refused():
    with pytest.raises(ValueError, match="stride 1 != size 2"):
        pool((4, 4, 1), 2, stride=1)
