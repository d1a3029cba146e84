"""The output layer's loss: softmax fused with cross-entropy, computed through log-sum-exp.

Fusing the two is what keeps training finite: ``log(softmax(z))`` is computed as ``z - logsumexp(z)``
with the row maximum subtracted first, so no ``exp`` ever sees a positive argument, and the gradient is
the well-known ``softmax(z) - one_hot(y)``, never a ratio of tiny numbers.

``SoftmaxCrossEntropy`` is the definition (value and gradient of a batch). Training uses two faster
pieces of the same maths, tested against it: ``fused_gradient`` turns a batch's logits into the
gradient in place and records each row's shifted logits and exp-sums, and ``epoch_totals`` turns
those records into the summed loss and the number correct once per epoch.
"""

import numpy as np


def log_softmax(logits):
    """Row-wise log of softmax, stable for logits of any size. (batch, classes) -> same shape."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits):
    return np.exp(log_softmax(logits))


class SoftmaxCrossEntropy:
    """Mean cross-entropy of integer ``labels`` (batch,) under softmax of ``logits`` (batch, classes)."""

    name = "softmax_cross_entropy"

    def value(self, logits, labels):
        return self.value_and_grad(logits.copy(), labels)[0]

    def grad(self, logits, labels):
        return self.value_and_grad(logits.copy(), labels)[1]

    def value_and_grad(self, logits, labels):
        """(mean loss, dLoss/dlogits), computed in place: ``logits`` is overwritten by the gradient.

        One pass shared by both, as training needs both; written with as few NumPy calls as
        possible, since at batch 8 each call costs more than its arithmetic.
        """
        n = len(labels)
        rows = np.arange(n)
        logits -= logits.max(axis=1, keepdims=True)  # now every logit <= 0: exp cannot overflow
        picked = logits[rows, labels]
        np.exp(logits, out=logits)
        sums = logits.sum(axis=1, keepdims=True)  # >= 1, as the largest term is exp(0)
        loss = float(np.log(sums).sum(dtype=np.float64) - picked.sum(dtype=np.float64)) / n
        logits /= sums * n  # softmax / n
        logits[rows, labels] -= 1.0 / n  # (softmax - one_hot) / n
        return loss, logits


def fused_gradient(logits, onehot, shifted, sums):
    """logits (batch, classes) -> softmax(logits) - onehot, in place (the mean's 1/batch is left to
    the caller); ``shifted`` receives logits minus the row maximum and ``sums`` (batch, 1) the sum of
    exp(shifted), from which ``epoch_totals`` computes the loss later.

    Five ufunc calls and no temporaries: at batch 8 each NumPy call costs more than its arithmetic.
    (ufunc.reduce, not np.max/np.sum: their Python wrappers double the cost of a small row.)
    """
    np.subtract(logits, np.maximum.reduce(logits, axis=1, keepdims=True), out=shifted)
    np.exp(shifted, out=logits)
    np.add.reduce(logits, axis=1, keepdims=True, out=sums)
    np.divide(logits, sums, out=logits)
    np.subtract(logits, onehot, out=logits)


def epoch_totals(shifted, sums, labels):
    """(summed cross-entropy, number correct) of rows recorded by ``fused_gradient``."""
    rows = np.arange(len(labels))
    loss = float(np.log(sums[:, 0], dtype=np.float64).sum() - shifted[rows, labels].sum(dtype=np.float64))
    # The row maximum became exactly 0, anything smaller stays below 0: the first 0 is argmax.
    correct = int(np.count_nonzero((shifted == 0).argmax(axis=1) == labels))
    return loss, correct
