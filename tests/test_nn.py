"""The network's maths: every activation, the loss, and backprop through every layer against finite
differences in float64; extreme logits; optimizers against their textbook update; seeded reruns."""

from types import SimpleNamespace

import numpy as np
import pytest
from layer_checks import numerical_grad

from mnistlab.nn import (ACTIVATIONS, INITIALIZERS, Adam, LayerGradient, Network, Parameter, Sgd,
                         SoftmaxCrossEntropy, log_softmax, make_schedule)
from mnistlab.nn.layer import simple_parameters


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_backward_matches_finite_differences(name):
    act = ACTIVATIONS[name]
    rng = np.random.default_rng(1)
    z = rng.standard_normal((4, 7))
    z[np.abs(z) < 1e-3] = 0.5  # keep clear of the kink of relu / leaky relu
    upstream = rng.standard_normal(z.shape)

    def f():
        return float((act.forward(z.copy()) * upstream).sum())

    expected = numerical_grad(f, z)
    got = act.backward(act.forward(z.copy()), upstream.copy())
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


def test_activations_are_what_their_names_say():
    z = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_allclose(ACTIVATIONS["relu"].forward(z.copy()), [[0, 0, 3]])
    np.testing.assert_allclose(ACTIVATIONS["leaky_relu"].forward(z.copy()), [[-0.02, 0, 3]])
    np.testing.assert_allclose(ACTIVATIONS["sigmoid"].forward(z.copy()), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(ACTIVATIONS["tanh"].forward(z.copy()), np.tanh(z))


def test_softmax_cross_entropy_grad_matches_finite_differences():
    loss = SoftmaxCrossEntropy()
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((5, 10)) * 3
    labels = rng.integers(0, 10, 5)
    expected = numerical_grad(lambda: loss.value(logits, labels), logits)
    np.testing.assert_allclose(loss.grad(logits.copy(), labels), expected, rtol=1e-6, atol=1e-9)


def test_softmax_cross_entropy_value_is_minus_log_probability_of_the_label():
    logits = np.array([[1.0, 2.0, 3.0]])
    p = np.exp(logits) / np.exp(logits).sum()
    assert SoftmaxCrossEntropy().value(logits, np.array([0])) == pytest.approx(-np.log(p[0, 0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_is_finite_for_huge_logits(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], dtype=dtype)
    labels = np.array([0, 0])
    value, grad = SoftmaxCrossEntropy().value_and_grad(logits.copy(), labels)
    assert np.isfinite(value) and np.isfinite(grad).all()
    # Row 0 is right with certainty (loss 0); row 1 puts all mass on class 1 (loss 2e4).
    assert value == pytest.approx((0 + 2e4) / 2, rel=1e-6)
    np.testing.assert_allclose(grad, [[0, 0, 0], [-0.5, 0.5, 0]], atol=1e-7)
    np.testing.assert_allclose(np.exp(log_softmax(logits)).sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("init", ["he", "xavier"])
@pytest.mark.parametrize("sizes", [[6, 5, 4], [6, 8, 5, 7, 3]])
def test_backprop_matches_finite_differences_for_every_layer(activation, init, sizes):
    rng = np.random.default_rng(3)
    net = Network.initialized(sizes, init, rng, activation, dtype=np.float64)
    for name, b in net.tensors().items():
        if name.endswith(".bias"):
            b[...] = rng.standard_normal(b.shape) * 0.1
    x = rng.standard_normal((4, sizes[0]))
    labels = rng.integers(0, sizes[-1], 4)
    loss, grads = net.gradients(x, labels)
    assert loss == pytest.approx(net.evaluate(x, labels).loss)

    def f():
        return net.evaluate(x, labels).loss

    assert sorted(grads) == sorted(net.tensors()) and len(grads) == 2 * (len(sizes) - 1)
    for name, tensor in net.tensors().items():
        np.testing.assert_allclose(grads[name], numerical_grad(f, tensor), rtol=1e-5, atol=1e-8)


def test_backprop_with_dropout_matches_finite_differences_for_the_same_mask():
    sizes = [6, 9, 9, 4]
    net = Network.initialized(sizes, "he", np.random.default_rng(4), "sigmoid", dropout=0.5,
                              dtype=np.float64)
    x = np.random.default_rng(5).standard_normal((3, 6))
    labels = np.array([0, 3, 1])

    def f():  # the same generator state draws the same masks every time
        return net.gradients(x, labels, np.random.default_rng(6)).loss

    _, grads = net.gradients(x, labels, np.random.default_rng(6))
    for name, tensor in net.tensors().items():
        np.testing.assert_allclose(grads[name], numerical_grad(f, tensor), rtol=1e-5, atol=1e-8)
    assert any(np.all(grads[f"dense.{i}.weight"] == 0, axis=1).any() for i in (1, 2))  # units really were dropped


def test_gradients_leave_the_weights_untouched():
    net = Network.initialized([5, 4, 3], "he", np.random.default_rng(0))
    before = net.copy_parameters()
    net.gradients(np.ones((2, 5), np.float32), np.array([0, 1]))
    assert all(np.array_equal(before[name], t) for name, t in net.tensors().items())


def test_float32_training_step_agrees_with_float64():
    rng = np.random.default_rng(7)
    net64 = Network.initialized([20, 16, 10], "he", rng, dtype=np.float64)
    net32 = Network(net64.arch)
    net32.set_parameters(net64.tensors())
    x = rng.random((8, 20))
    y = rng.integers(0, 10, 8)
    l64, _ = net64.train_step(x, y, Sgd(momentum=0.9), 0.1)
    l32, _ = net32.train_step(x.astype(np.float32), y, Sgd(momentum=0.9), 0.1)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for name, a in net32.tensors().items():
        np.testing.assert_allclose(a, net64.tensors()[name], rtol=1e-4, atol=1e-6)
    assert net32.tensors()["dense.0.weight"].dtype == np.float32


def _update(optimizer, W, b, x, delta, lr):
    """Apply optimizer to the layer (W, b), in place, for inputs x and dLoss/dz delta."""
    P = np.vstack([W, b[None]])  # the layer's parameter array, as the network keeps it
    inputs = np.hstack([x, np.ones((len(x), 1))])
    parts = {"dense.0.weight": slice(0, -1), "dense.0.bias": -1}
    optimizer.update(Parameter("dense.0", P, LayerGradient(inputs, delta), parts, decay=slice(0, -1)), lr)
    W[...], b[...] = P[:-1], P[-1]


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("momentum,weight_decay", [(0.0, 0.0), (0.0, 0.01), (0.9, 0.0), (0.9, 0.01)])
def test_sgd_updates_follow_the_textbook_formulas(momentum, weight_decay, nesterov):
    rng = np.random.default_rng(8)
    W = rng.standard_normal((6, 4))
    b = rng.standard_normal(4)
    opt = Sgd(momentum, nesterov, weight_decay)
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    for step in range(3):
        x, delta = rng.standard_normal((5, 6)), rng.standard_normal((5, 4))
        gW, gb = x.T @ delta + weight_decay * W, delta.sum(0)
        vW, vb = momentum * vW - 0.1 * gW, momentum * vb - 0.1 * gb
        if momentum == 0:
            expected = (W - 0.1 * gW, b - 0.1 * gb)
        elif nesterov:
            expected = (W + momentum * vW - 0.1 * gW, b + momentum * vb - 0.1 * gb)
        else:
            expected = (W + vW, b + vb)
        _update(opt, W, b, x, delta, 0.1)
        np.testing.assert_allclose(W, expected[0], rtol=1e-12)
        np.testing.assert_allclose(b, expected[1], rtol=1e-12)


@pytest.mark.parametrize("optimizer", [lambda: Sgd(0.9, True, 0.01), lambda: Sgd(0.9, False, 0.01),
                                       lambda: Sgd(0.0, True, 0.01), lambda: Adam(weight_decay=0.01)])
def test_separate_weight_and_bias_arrays_update_as_the_packed_dense_array_does(optimizer):
    """Weight decay by name: a layer with plain "weight" and "bias" arrays (simple_parameters) gets the
    packed [W; b] update of Dense, the bias undecayed in both."""
    rng = np.random.default_rng(12)
    W, b = rng.standard_normal((6, 4)), rng.standard_normal(4)
    packed_W, packed_b = W.copy(), b.copy()
    layer = SimpleNamespace(params={"weight": W, "bias": b})
    dW, db = np.zeros_like(W), np.zeros_like(b)
    simple, packed = optimizer(), optimizer()
    params = simple_parameters(layer, "toy.0", {"weight": dW, "bias": db})
    assert [p.decay for p in params] == [slice(None), None]
    for step in range(3):
        x, delta = rng.standard_normal((5, 6)), rng.standard_normal((5, 4))
        dW[...], db[...] = x.T @ delta, delta.sum(0)
        for p in params:
            simple.update(p, 0.1)
        _update(packed, packed_W, packed_b, x, delta, 0.1)
        np.testing.assert_allclose(W, packed_W, rtol=1e-12)
        np.testing.assert_allclose(b, packed_b, rtol=1e-12)


def test_adam_update_follows_the_paper():
    rng = np.random.default_rng(9)
    W, b = rng.standard_normal((3, 2)), rng.standard_normal(2)
    opt = Adam()
    m = v = 0
    for t in range(1, 4):
        x, delta = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
        g = x.T @ delta
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        expected = W - 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        _update(opt, W, b, x, delta, 0.01)
        np.testing.assert_allclose(W, expected, rtol=1e-10)


def test_initializers_have_the_documented_scale():
    rng = np.random.default_rng(10)
    shape = (784, 400)
    assert INITIALIZERS["he"](shape, rng).std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)
    assert INITIALIZERS["xavier"](shape, rng).std() == pytest.approx(np.sqrt(2 / 1184), rel=0.02)
    # the study's own formulas: the factor 2 outside the square root
    assert INITIALIZERS["he_report"](shape, rng).std() == pytest.approx(2 / np.sqrt(784), rel=0.02)
    assert INITIALIZERS["xavier_report"](shape, rng).std() == pytest.approx(2 / np.sqrt(1184), rel=0.02)
    r = INITIALIZERS["random"](shape, rng)
    assert r.min() >= 0 and r.max() < 1 and r.mean() == pytest.approx(0.5, abs=0.01)
    assert not INITIALIZERS["zero"](shape, rng).any()
    assert all(f(shape, rng).dtype == np.float32 for f in INITIALIZERS.values())


def test_same_seed_gives_bit_identical_training():
    def run(seed):
        rng = np.random.default_rng(seed)
        net = Network.initialized([30, 20, 10], "he", rng, dropout=0.2)
        data = np.random.default_rng(99)
        x = data.random((64, 30), dtype=np.float32)
        y = data.integers(0, 10, 64)
        opt = Sgd(0.9, True)
        losses = [net.train_step(x[i:i + 16], y[i:i + 16], opt, 0.1, rng)[0] for i in range(0, 64, 16)]
        return losses, net.tensors()

    (l1, w1), (l2, w2), (l3, _) = run(1), run(1), run(2)
    assert l1 == l2 and all(np.array_equal(a, w2[name]) for name, a in w1.items())
    assert l1 != l3


def test_training_reduces_the_loss_on_a_learnable_problem():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((200, 10)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.intp)
    net = Network.initialized([10, 16, 2], "he", rng)
    before = net.evaluate(x, y)[0]
    opt = Sgd(momentum=0.9)
    for _ in range(30):
        for i in range(0, 200, 20):
            net.train_step(x[i:i + 20], y[i:i + 20], opt, 0.05, rng)
    loss, accuracy = net.evaluate(x, y)
    assert loss < before / 5 and accuracy > 0.97


def test_schedules_give_the_documented_rates():
    assert make_schedule("constant", 0.1, 10)(7) == 0.1
    step = make_schedule("step", 0.1, 30, step_size=10, gamma=0.5)
    assert [step(e) for e in (0, 9, 10, 25)] == pytest.approx([0.1, 0.1, 0.05, 0.025])
    cosine = make_schedule("cosine", 0.1, 10)
    assert [cosine(0), cosine(5), cosine(10)] == pytest.approx([0.1, 0.05, 0.0])


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_one_image_gets_the_logits_it_gets_in_a_batch(activation):
    net = Network.initialized([784, 64, 32, 10], "he", np.random.default_rng(5), activation)
    x = np.random.default_rng(6).random((5, 784), dtype=np.float32)
    batched = net.logits(x)
    for row in range(len(x)):  # a single row takes the matrix-vector path
        np.testing.assert_allclose(net.logits(x[row:row + 1]), batched[row:row + 1], rtol=1e-5, atol=1e-5)
