"""Dropout: the identity in inference; in training values are dropped at the rate and the kept ones
scaled by 1 / keep, the same ones for the same seed; backward passes the gradient through the mask."""

import numpy as np
import pytest

from layer_checks import check_layer_gradients, spec, training_step
from mnistlab.nn.dropout import Dropout


def dropout(shape, rate, dtype=np.float32):
    return Dropout(spec(shape, shape, rate=rate), dtype=dtype)


def test_inference_is_the_identity():
    x = np.random.default_rng(0).standard_normal((4, 3, 3, 2)).astype(np.float32)
    np.testing.assert_array_equal(dropout((2, 3, 3), 0.5).forward(x), x)


def test_training_drops_about_the_rate_and_scales_the_rest():
    run, _, _ = training_step(dropout((4, 50, 50), 0.25), 8, seed=1)
    y = run(np.ones((8, 50, 50, 4), np.float32))
    np.testing.assert_allclose(np.unique(y), [0, 1 / 0.75], rtol=1e-6)
    assert (y == 0).mean() == pytest.approx(0.25, abs=0.005)
    assert y.mean() == pytest.approx(1.0, abs=0.01)


def test_the_same_seed_drops_the_same_values():
    x = np.ones((6, 10), np.float32)
    a = training_step(dropout((10,), 0.5), 6, seed=7)[0](x).copy()
    b = training_step(dropout((10,), 0.5), 6, seed=7)[0](x).copy()
    c = training_step(dropout((10,), 0.5), 6, seed=8)[0](x).copy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_backward_matches_finite_differences_with_the_mask_fixed():
    rng = np.random.default_rng(2)
    check_layer_gradients(dropout((3, 4), 0.4, np.float64), rng.standard_normal((5, 3, 4)), rng)


def test_a_rate_of_one_is_refused():
    with pytest.raises(ValueError, match="rate 1"):
        dropout((4,), 1.0)
