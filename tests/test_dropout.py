"""Dropout: the identity in inference; in training units are dropped at the rate and the kept ones
scaled by 1 / keep, the same units for the same seed; backward passes the gradient through the mask."""

import numpy as np
import pytest

from layer_checks import check_layer_gradients
from mnistlab.nn.dropout import Dropout


def test_inference_is_the_identity():
    x = np.random.default_rng(0).standard_normal((4, 3, 3, 2)).astype(np.float32)
    np.testing.assert_array_equal(Dropout((3, 3, 2), 0.5).forward(x, training=False), x)


def test_training_drops_about_the_rate_and_scales_the_rest():
    layer = Dropout((50, 50, 4), 0.25)
    x = np.ones((8, 50, 50, 4), np.float32)
    y = layer.forward(x, training=True, rng=np.random.default_rng(1))
    assert set(np.unique(y).tolist()) == {0.0, np.float32(1 / 0.75)}
    assert (y == 0).mean() == pytest.approx(0.25, abs=0.005)
    assert y.mean() == pytest.approx(1.0, abs=0.01)


def test_the_same_seed_drops_the_same_units():
    layer = Dropout((10,), 0.5)
    x = np.ones((6, 10), np.float32)
    a = layer.forward(x, True, np.random.default_rng(7)).copy()
    b = layer.forward(x, True, np.random.default_rng(7)).copy()
    c = layer.forward(x, True, np.random.default_rng(8)).copy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_backward_matches_finite_differences_with_the_mask_fixed():
    rng = np.random.default_rng(2)
    layer = Dropout((3, 4), 0.4, dtype=np.float64)
    check_layer_gradients(layer, rng.standard_normal((5, 3, 4)), rng,
                          forward=lambda a: layer.forward(a, True, np.random.default_rng(5)))


def test_a_rate_of_one_is_refused():
    with pytest.raises(ValueError, match="rate 1"):
        Dropout((4,), 1.0)
