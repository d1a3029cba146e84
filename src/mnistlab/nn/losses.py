"""The output layer's loss: softmax fused with cross-entropy, computed through log-sum-exp.

Fusing the two is what keeps training finite: ``log(softmax(z))`` is computed as ``z - logsumexp(z)``
with the row maximum subtracted first, so no ``exp`` ever sees a positive argument, and the gradient is
the well-known ``softmax(z) - one_hot(y)``, never a ratio of tiny numbers.
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
        return self.value_and_grad(logits, labels)[0]

    def grad(self, logits, labels):
        return self.value_and_grad(logits, labels)[1]

    def value_and_grad(self, logits, labels):
        """Return (mean loss, dLoss/dlogits); one pass shared by both, as training needs both."""
        n = len(labels)
        rows = np.arange(n)
        log_p = log_softmax(logits)
        loss = -float(log_p[rows, labels].sum(dtype=np.float64)) / n
        grad = np.exp(log_p, out=log_p)
        grad[rows, labels] -= 1
        grad /= n
        return loss, grad


LOSSES = {"softmax_cross_entropy": SoftmaxCrossEntropy()}
