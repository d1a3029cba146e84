"""Network.folded(): a copy for inference with each conv -> batch norm pair folded into one conv (what the
drawing server serves). It must predict what the network predicts, leave the network alone, and fold nothing
else."""

import numpy as np
import pytest

from mnistlab.arch import resolve
from mnistlab.nn.network import Network

ARCHS = ["conv4k3valid-bn-conv6k3s2same-bn-drop0.3-conv8k3valid-bn-pool2-fc12-bn",
         "conv4k3same-conv6k3valid-pool2-fc10", "fc16-bn-fc8"]


def trained_like(arch, seed=0):
    """A network of ``arch`` with random weights and batch norms far from the identity."""
    rng = np.random.default_rng(seed)
    net = Network.build(resolve(arch, 784, 10, "relu", 0.0), "he", rng)
    for layer in net.layers:
        if layer.kind == "bn":
            n = layer.params["gamma"].shape[0]
            layer.params["gamma"][...] = rng.uniform(0.5, 2.0, n)
            layer.params["beta"][...] = rng.normal(0, 0.5, n)
            layer.state["mean"][...] = rng.normal(0, 0.3, n)
            layer.state["var"][...] = rng.uniform(0.2, 3.0, n)
    return net


@pytest.mark.parametrize("arch", ARCHS)
def test_folded_predicts_what_the_network_predicts(arch):
    net = trained_like(arch)
    x = np.random.default_rng(1).random((64, 784), dtype=np.float32)
    before = {name: a.copy() for name, a in net.tensors().items()}
    folded = net.folded()
    plain, fused = net.logits(x), folded.logits(x)
    np.testing.assert_allclose(fused, plain, rtol=1e-4, atol=1e-4 * np.abs(plain).max())
    assert (fused.argmax(1) == plain.argmax(1)).mean() >= 0.98  # ties within rounding may flip
    for name, a in net.tensors().items():
        np.testing.assert_array_equal(a, before[name])  # the network itself is untouched


def test_each_conv_bn_pair_becomes_one_layer_and_nothing_else_changes():
    net = trained_like(ARCHS[0])
    kinds = [layer.kind for layer in net.folded().layers]
    assert kinds == ["conv", "conv", "dropout", "conv", "pool", "dense", "bn", "dense"], kinds
    assert [layer.kind for layer in net.layers].count("bn") == 4
    plain = trained_like(ARCHS[1])
    assert [layer.kind for layer in plain.folded().layers] == [layer.kind for layer in plain.layers]


def test_folded_conv_activation_comes_from_the_norm():
    net = trained_like(ARCHS[0])
    first = net.folded().layers[0]
    assert first.activation is net.layers[1].activation is not None
    assert net.layers[0].activation is None
