"""Softmax cross-entropy: losses.SoftmaxCrossEntropy is the definition; the fused pieces the training
step uses (fused_gradient, epoch_totals) compute the same maths, and everything stays finite."""

import numpy as np
import pytest

from mnistlab.nn.losses import SoftmaxCrossEntropy, epoch_totals, fused_gradient, log_softmax, softmax


def batch(seed, n=16, classes=10, scale=3.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, classes)) * scale).astype(dtype), rng.integers(0, classes, n)


def fused(logits, labels):
    n, classes = logits.shape
    onehot = np.zeros_like(logits)
    onehot[np.arange(n), labels] = 1
    z, shifted, sums = logits.copy(), np.empty_like(logits), np.empty((n, 1), logits.dtype)
    fused_gradient(z, onehot, shifted, sums)
    return z, epoch_totals(shifted, sums, labels)


@pytest.mark.parametrize("seed", range(5))
def test_the_fused_gradient_is_the_losses_gradient_times_the_batch_size(seed):
    logits, labels = batch(seed)
    grad, _ = fused(logits, labels)
    np.testing.assert_allclose(grad, SoftmaxCrossEntropy().grad(logits, labels) * len(labels), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_the_epoch_totals_are_the_summed_loss_and_the_argmax_hits(seed):
    logits, labels = batch(seed)
    _, (loss_sum, correct) = fused(logits, labels)
    assert loss_sum == pytest.approx(SoftmaxCrossEntropy().value(logits, labels) * len(labels), rel=1e-12)
    assert correct == int((logits.argmax(axis=1) == labels).sum())


def test_the_loss_is_minus_the_log_softmax_of_the_true_class():
    logits, labels = batch(7)
    expected = -np.log(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))[np.arange(16), labels].mean()
    assert SoftmaxCrossEntropy().value(logits, labels) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(softmax(logits).sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_softmax(logits)), softmax(logits), rtol=1e-12)


def test_the_gradient_matches_finite_differences():
    logits, labels = batch(3, n=4, classes=5)
    loss = SoftmaxCrossEntropy()
    numeric, h = np.zeros_like(logits), 1e-6
    for index in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = (loss.value(up, labels) - loss.value(down, labels)) / (2 * h)
    np.testing.assert_allclose(loss.grad(logits, labels), numeric, rtol=1e-6, atol=1e-9)


def test_every_piece_stays_finite_for_huge_logits_in_float32():
    logits, labels = batch(1, scale=1e30, dtype=np.float32)
    grad, (loss_sum, _) = fused(logits, labels)
    assert np.isfinite(grad).all() and np.isfinite(loss_sum)
    assert np.isfinite(SoftmaxCrossEntropy().value(logits, labels))
    assert np.isfinite(softmax(logits)).all()
