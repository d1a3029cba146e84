"""Batch normalisation: training normalises with the batch's statistics and updates the running ones,
inference uses the running ones, the step's backward matches finite differences (input, gamma, beta)
on NHWC maps, on flat features, and with the activation that follows it."""

import numpy as np
import pytest

from layer_checks import check_layer_gradients, spec, training_step
from mnistlab.nn.batchnorm import EPS, BatchNorm


def random_norm(shape, rng, activation=None):
    """A BatchNorm for a logical shape (C, h, w) or (C,), with gamma and beta away from 1 and 0."""
    layer = BatchNorm(spec(shape, shape, activation=activation), dtype=np.float64)
    layer.params["gamma"][...] = rng.uniform(0.5, 2, shape[0])
    layer.params["beta"][...] = rng.standard_normal(shape[0])
    return layer


@pytest.mark.parametrize("shape,activation", [((5, 4, 3), None), ((6,), None), ((3, 2, 2), "relu")])
def test_backward_matches_finite_differences_for_input_gamma_and_beta(shape, activation):
    rng = np.random.default_rng(0)
    layer = random_norm(shape, rng, activation)
    nhwc = (*shape[1:], shape[0])
    x = rng.standard_normal((3, *nhwc)) * 2 + 1
    assert check_layer_gradients(layer, x, rng) == ["bn.gamma", "bn.beta"]


def test_training_output_has_each_channels_batch_mean_zero_and_variance_one_before_gamma_and_beta():
    rng = np.random.default_rng(1)
    layer = BatchNorm(spec((4, 5, 5), (4, 5, 5)), dtype=np.float64)
    x = rng.standard_normal((8, 5, 5, 4)) * [1, 2, 3, 4] + [0, 10, -5, 3]
    run, _, _ = training_step(layer, 8)
    y = run(x).reshape(-1, 4)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), 1, rtol=1e-4)  # eps = 1e-5 against variances >= 1


def test_running_statistics_move_toward_the_batch_statistics_as_pytorch_does():
    rng = np.random.default_rng(2)
    layer = BatchNorm(spec((3,), (3,)), dtype=np.float64)
    x = rng.standard_normal((10, 3)) * 3 + 2
    training_step(layer, 10)[0](x)
    np.testing.assert_allclose(layer.state["mean"], 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(layer.state["var"], 0.9 + 0.1 * x.var(axis=0, ddof=1))


def test_inference_uses_the_running_statistics_not_the_batch():
    rng = np.random.default_rng(3)
    layer = random_norm((3, 2, 2), rng)
    layer.state["mean"][...] = [1.0, -1.0, 0.5]
    layer.state["var"][...] = [4.0, 0.25, 1.0]
    x = rng.standard_normal((4, 2, 2, 3))
    expected = ((x - layer.state["mean"]) / np.sqrt(layer.state["var"] + EPS)
                * layer.params["gamma"] + layer.params["beta"])
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12)
    np.testing.assert_allclose(layer.forward(x[:1]), expected[:1], rtol=1e-12)
    assert layer.state["mean"].tolist() == [1.0, -1.0, 0.5]  # inference changes nothing


def test_gamma_and_beta_get_no_weight_decay_and_running_statistics_are_state():
    layer = BatchNorm(spec((8, 4, 4), (8, 4, 4)))
    step = layer.plan(2, True)
    step.bind(type("Above", (), {"x": np.zeros((2, 4, 4, 8), np.float32), "dx": np.zeros((2, 4, 4, 8), np.float32)})())
    assert [p.decay for p in step.parameters] == [None, None]
    assert set(layer.params) == {"gamma", "beta"} and set(layer.state) == {"mean", "var"}


@pytest.mark.parametrize("spec_text", ["conv3k3valid-bn-conv2k3same-bn-fc5", "conv3k3same-bn-conv2k3s2same-bn-fc5"])
def test_the_networks_gradients_through_batch_norm_writing_into_a_padded_conv_match_finite_differences(spec_text):
    """Batch norm reads and writes its maps wide (rows of width * channels); when a 'same' conv follows, its
    output and gradient are the inside of that conv's zero-bordered buffers, not contiguous arrays."""
    from mnistlab import arch
    from mnistlab.nn import Network
    from test_nn import numerical_grad

    rng = np.random.default_rng(7)
    network = Network.build(arch.resolve(spec_text, 36, 3), "he", rng, dtype=np.float64)
    for name, tensor in network.tensors().items():
        if name.endswith("gamma") or name.endswith("beta"):
            tensor[...] = rng.uniform(0.5, 1.5, tensor.shape) if name.endswith("gamma") else rng.standard_normal(tensor.shape)
    x, labels = rng.uniform(0, 1, (4, 36)), rng.integers(0, 3, 4)

    def loss():
        return network.gradients(x, labels, np.random.default_rng(1)).loss

    _, grads = network.gradients(x, labels, np.random.default_rng(1))
    tensors = network.tensors()
    # every trained tensor: each conv's and dense's weight and bias, each norm's gamma and beta (not its
    # running statistics, which are state)
    assert sorted(grads) == sorted(n for n in tensors if not n.endswith((".mean", ".var")))
    for name, gradient in grads.items():
        assert gradient.shape == tensors[name].shape, name  # a conv's weight too, not its packed rows
        np.testing.assert_allclose(gradient, numerical_grad(loss, tensors[name]), rtol=1e-5, atol=1e-8,
                                   err_msg=name)
