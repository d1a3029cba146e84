"""The fully connected network: dense layers with a hidden activation, softmax cross-entropy on top.

``Network.initialized(sizes, init, rng)`` builds one; ``train_epoch`` runs mini-batch training over a
set (``train_step`` over one batch): forward, backward and the optimizer's update of every layer;
``predict``/``evaluate`` run inference in chunks. Weights are (fan_in, fan_out) matrices, so a
batch flows as ``x @ W + b`` with x of shape (batch, fan_in).

Each layer's parameters live in one array ``P = [W; b]`` of shape (fan_in + 1, fan_out):
``weights[i]`` and ``biases[i]`` are views of it. With a column of ones after its input, a layer is
one product ``[x, 1] @ P = x @ W + b``, and its gradient one product ``[x, 1].T @ delta``: no bias
additions or sums, which at batch 8 cost as much as the products (see blas.py).
"""

import numpy as np

from .activations import ACTIVATIONS
from .blas import Gemm, gemm
from .initializers import INITIALIZERS
from .losses import SoftmaxCrossEntropy, epoch_totals, fused_gradient
from .optimizers import LayerGradient


class Network:
    def __init__(self, weights, biases, activation="relu", dropout=0.0):
        if len(weights) != len(biases) or not weights:
            raise ValueError("need one bias vector per weight matrix, and at least one layer")
        dtype = np.asarray(weights[0]).dtype
        dtype = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)
        self.params = [np.vstack([np.asarray(W, dtype), np.asarray(b, dtype)[None]])
                       for W, b in zip(weights, biases)]  # [(fan_in + 1, fan_out)]
        self.weights = [P[:-1] for P in self.params]  # views: [(fan_in, fan_out)]
        self.biases = [P[-1] for P in self.params]  # views: [(fan_out,)]
        self.activation_name = activation
        self.activation = ACTIVATIONS[activation]
        self.dropout = float(dropout)
        self.loss = SoftmaxCrossEntropy()
        self._plans = {}

    @classmethod
    def initialized(cls, sizes, init, rng, activation="relu", dropout=0.0, dtype=np.float32):
        """A new network with layer sizes like [784, 800, 800, 10], weights drawn by ``init``."""
        make = INITIALIZERS[init]
        shapes = list(zip(sizes[:-1], sizes[1:]))
        weights = [np.asarray(make(shape, rng), dtype=dtype) for shape in shapes]
        biases = [np.zeros(shape[1], dtype=dtype) for shape in shapes]
        return cls(weights, biases, activation, dropout)

    @property
    def sizes(self):
        return [self.weights[0].shape[0]] + [w.shape[1] for w in self.weights]

    @property
    def dtype(self):
        return self.params[0].dtype

    def largest_product(self, batch_size):
        """Multiply-adds in the largest matrix product of a training step (see blas.threads_for)."""
        return batch_size * max(P.shape[0] * P.shape[1] for P in self.params)

    def copy_parameters(self):
        return [w.copy() for w in self.weights], [b.copy() for b in self.biases]

    def set_parameters(self, weights, biases):
        for dst, src in zip(self.weights + self.biases, list(weights) + list(biases)):
            dst[...] = src

    # Inference -------------------------------------------------------------------------------

    def logits(self, x):
        """Logits (n, classes) for inputs x (n, fan_in); no dropout."""
        a = np.ascontiguousarray(x, dtype=self.dtype)
        last = len(self.weights) - 1
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            if len(a) == 1:  # one image (the drawing page): BLAS's matrix-vector product, through
                a = (a[0] @ W + b)[None]  # NumPy, is 3.5x faster than gemm with one row (0.15 ms
            else:  # against 0.53 ms for 784-1200-1200-10)
                out = np.empty((len(a), W.shape[1]), self.dtype)
                out[...] = b  # then gemm adds a @ W on top (beta=1): the bias costs no extra pass
                a = gemm(out, a, W, beta=1.0)
            if i < last:
                a = self.activation.forward(a)
        return a

    def predict(self, x, chunk=10_000):
        return np.concatenate([self.logits(x[i:i + chunk]).argmax(axis=1)
                               for i in range(0, len(x), chunk)]) if len(x) else np.zeros(0, int)

    def evaluate(self, x, labels, chunk=10_000):
        """(mean loss, accuracy) over a whole set, computed in chunks to bound memory."""
        total_loss, correct = 0.0, 0
        for i in range(0, len(x), chunk):
            z = self.logits(x[i:i + chunk])
            y = labels[i:i + chunk]
            total_loss += self.loss.value(z, y) * len(y)
            correct += int((z.argmax(axis=1) == y).sum())
        n = max(len(x), 1)
        return total_loss / n, correct / n

    # Training --------------------------------------------------------------------------------

    def train_epoch(self, x, labels, batch_size, optimizer, learning_rate, rng=None, progress=None):
        """Train on x (n, fan_in) in mini-batches of ``batch_size``, in the order given.

        labels: (n,) integers. ``rng`` draws the dropout masks. ``progress(seen, loss_sum, correct)``
        is called now and then with running totals. Returns (mean loss, number correct), each batch
        counted before its update. Run inside ``blas.thread_limits()``, as the Trainer does.
        """
        n, classes = len(x), self.sizes[-1]
        labels = np.asarray(labels, dtype=np.intp)
        x = np.asarray(x, dtype=self.dtype)
        # Per-sample results land in arrays for the whole epoch; loss and accuracy are computed from
        # them at the end (and for ``progress``), not with a dozen small NumPy calls per batch.
        onehot = np.zeros((n, classes), self.dtype)
        onehot[np.arange(n), labels] = 1
        shifted = np.empty((n, classes), self.dtype)  # logits minus the row maximum
        sums = np.empty((n, 1), self.dtype)  # sum of exp(shifted) over the row
        loss_sum, correct, counted = 0.0, 0, 0
        batches = -(-n // batch_size)
        every = max(1, batches // 50)
        full = self._plan(batch_size) if n >= batch_size else None
        for k, start in enumerate(range(0, n, batch_size)):
            end = start + batch_size
            plan = full if end <= n else self._plan(n - start)
            plan.step(x[start:end], onehot[start:end], shifted[start:end], sums[start:end], optimizer,
                      learning_rate, rng)
            if progress and (k % every == every - 1 or k == batches - 1):
                seen = min(start + batch_size, n)
                loss, right = epoch_totals(shifted[counted:seen], sums[counted:seen], labels[counted:seen])
                loss_sum, correct, counted = loss_sum + loss, correct + right, seen
                progress(seen, loss_sum, correct)
        if counted < n:
            loss, right = epoch_totals(shifted[counted:], sums[counted:], labels[counted:])
            loss_sum, correct = loss_sum + loss, correct + right
        return loss_sum / max(n, 1), correct

    def train_step(self, x, labels, optimizer, learning_rate, rng=None):
        """One forward/backward pass on a batch and the optimizer's update of every layer.

        Returns (mean loss, number of correct predictions) before the update.
        """
        return self.train_epoch(x, labels, max(len(x), 1), optimizer, learning_rate, rng)

    def gradients(self, x, labels, rng=None):
        """(loss, [dW], [db]) for a batch, leaving the weights untouched. For checks and tools."""
        grabber = _GradientGrabber(len(self.weights))
        loss, _ = self.train_step(x, labels, grabber, 0.0, rng)
        return loss, grabber.dW, grabber.db

    def _plan(self, batch):
        # Buffers and bound products for one batch size, reused by every step of that size:
        # allocating or binding per step costs more than the arithmetic for small batches.
        key = (batch, self.dtype)
        if key not in self._plans:
            self._plans[key] = _StepPlan(self, batch)
        return self._plans[key]


class _StepPlan:
    """One training step at a fixed batch size: buffers, and the products bound to them."""

    def __init__(self, net, batch):
        dt, L = net.dtype, len(net.params)
        widths = [P.shape[1] for P in net.params]
        self.net, self.last = net, L - 1
        # Each layer's input ends in a column of ones (the bias); acts[i] is hidden layer i's output.
        self.x = np.ones((batch, net.sizes[0] + 1), dt)
        self.acts = [np.ones((batch, w + 1), dt) for w in widths[:-1]]
        self.logits = np.empty((batch, widths[-1]), dt)
        # back[i] = dLoss/d(acts[i]); its last column is never written by BLAS and stays 0.
        self.back = [np.zeros((batch, w + 1), dt) for w in widths[:-1]]
        self.masks = self.dropped = None
        if net.dropout > 0:
            self.masks = [np.ones((batch, w + 1), dt) for w in widths[:-1]]
            self.dropped = [np.ones((batch, w + 1), dt) for w in widths[:-1]]
        inputs = [self.x] + (self.dropped or self.acts)
        outputs = [a[:, :-1] for a in self.acts] + [self.logits]
        deltas = [b[:, :-1] for b in self.back] + [self.logits]
        self.forward = [Gemm(outputs[i], inputs[i], net.params[i]) for i in range(L)]
        # Wide layers: BLAS writes delta @ W.T twice as fast in column-major order (8x800 @ 800x800:
        # 116 us against 227 on two threads), so it goes to scratch and is copied back (4 us).
        self.scratch = [None] + [np.empty((batch, net.sizes[i]), dt, order="F")
                                 if min(net.weights[i].shape) >= 256 else None for i in range(1, L)]
        self.backward = [None] + [Gemm(self.back[i - 1][:, :-1] if self.scratch[i] is None
                                       else self.scratch[i], deltas[i], net.weights[i].T)
                                  for i in range(1, L)]
        # deltas are dLoss/dz times the batch size (the mean's 1/batch is applied in the update).
        self.grads = [LayerGradient(inputs[i], deltas[i], 1.0 / batch) for i in range(L)]

    def step(self, x, onehot, shifted, sums, optimizer, learning_rate, rng):
        net, act, last, acts = self.net, self.net.activation, self.last, self.acts
        np.copyto(self.x[:, :-1], x)
        for i, forward in enumerate(self.forward):
            forward.product()
            if i < last:
                a = acts[i]
                act.forward(a)  # one contiguous pass, the ones column included
                if not act.keeps_one:
                    a[:, -1] = 1
                if self.masks:  # inverted dropout: scale the kept units by 1 / keep
                    keep = 1.0 - net.dropout
                    drawn = rng.random((len(a), a.shape[1] - 1), dtype=np.float32) < keep
                    np.divide(drawn, np.float32(keep), out=self.masks[i][:, :-1])
                    np.multiply(a, self.masks[i], out=self.dropped[i])
        # Softmax cross-entropy (losses.py): the gradient softmax - onehot overwrites the logits,
        # the rest is recorded for the epoch's totals.
        fused_gradient(self.logits, onehot, shifted, sums)
        params, grads, backward, back, scratch = net.params, self.grads, self.backward, self.back, self.scratch
        for i in range(last, -1, -1):
            if i > 0:  # before this layer's update changes its weights
                backward[i].product()
                below = back[i - 1]
                if scratch[i] is not None:
                    below[:, :-1] = scratch[i]
                if self.masks:
                    below *= self.masks[i - 1]
                act.backward(acts[i - 1], below)
            optimizer.update(i, params[i], grads[i], learning_rate)


class _GradientGrabber:
    """An 'optimizer' that records each layer's gradient instead of applying it."""

    def __init__(self, layers):
        self.dW = [None] * layers
        self.db = [None] * layers

    def update(self, i, P, grad, learning_rate):
        dP = grad.value()
        self.dW[i], self.db[i] = dP[:-1], dP[-1]
