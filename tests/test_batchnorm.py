"""Batch normalisation: training normalises with the batch's statistics and updates the running ones,
inference uses the running ones, backward matches finite differences (input, scale, shift) on NHWC
maps and on flat features."""

import numpy as np
import pytest

from layer_checks import check_layer_gradients
from mnistlab.nn.batchnorm import BatchNorm


def random_norm(shape, rng):
    layer = BatchNorm(shape, dtype=np.float64)
    layer.params["scale"][...] = rng.uniform(0.5, 2, shape[-1])
    layer.params["shift"][...] = rng.standard_normal(shape[-1])
    return layer


@pytest.mark.parametrize("shape", [(4, 3, 5), (6,)])
def test_backward_matches_finite_differences_for_input_scale_and_shift(shape):
    rng = np.random.default_rng(0)
    layer = random_norm(shape, rng)
    x = rng.standard_normal((3, *shape)) * 2 + 1
    assert check_layer_gradients(layer, x, rng) == ["scale", "shift"]


def test_training_output_has_each_channels_batch_mean_zero_and_variance_one_before_scale_and_shift():
    rng = np.random.default_rng(1)
    layer = BatchNorm((5, 5, 4), dtype=np.float64)
    x = rng.standard_normal((8, 5, 5, 4)) * [1, 2, 3, 4] + [0, 10, -5, 3]
    y = layer.forward(x, training=True).reshape(-1, 4)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), 1, rtol=1e-4)  # eps = 1e-5 against variances >= 1


def test_running_statistics_move_toward_the_batch_statistics_as_pytorch_does():
    rng = np.random.default_rng(2)
    layer = BatchNorm((3,), momentum=0.1, dtype=np.float64)
    x = rng.standard_normal((10, 3)) * 3 + 2
    layer.forward(x, training=True)
    np.testing.assert_allclose(layer.state["running_mean"], 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(layer.state["running_var"], 0.9 + 0.1 * x.var(axis=0, ddof=1))


def test_inference_uses_the_running_statistics_not_the_batch():
    rng = np.random.default_rng(3)
    layer = random_norm((2, 2, 3), rng)
    layer.state["running_mean"][...] = [1.0, -1.0, 0.5]
    layer.state["running_var"][...] = [4.0, 0.25, 1.0]
    x = rng.standard_normal((4, 2, 2, 3))
    expected = ((x - layer.state["running_mean"]) / np.sqrt(layer.state["running_var"] + layer.eps)
                * layer.params["scale"] + layer.params["shift"])
    np.testing.assert_allclose(layer.forward(x, training=False), expected, rtol=1e-12)
    np.testing.assert_allclose(layer.forward(x[:1], training=False), expected[:1], rtol=1e-12)
    assert layer.state["running_mean"].tolist() == [1.0, -1.0, 0.5]  # inference changes nothing


def test_scale_and_shift_get_no_weight_decay_and_running_statistics_are_state():
    layer = BatchNorm((4, 4, 8))
    assert layer.decay == () and set(layer.params) == {"scale", "shift"}
    assert set(layer.state) == {"running_mean", "running_var"}
