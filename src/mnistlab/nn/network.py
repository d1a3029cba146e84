"""The fully connected network: dense layers with a hidden activation, softmax cross-entropy on top.

``Network.initialized(sizes, init, rng)`` builds one; ``train_step`` runs forward, backward and the
optimizer's update on one mini-batch; ``predict``/``evaluate`` run inference in chunks. Weights are
stored as (fan_in, fan_out) matrices so a batch flows as ``x @ W + b`` with x of shape (batch, fan_in).
"""

import numpy as np

from .activations import ACTIVATIONS
from .blas import affine, backprop
from .initializers import INITIALIZERS
from .losses import SoftmaxCrossEntropy


class Network:
    def __init__(self, weights, biases, activation="relu", dropout=0.0):
        if len(weights) != len(biases) or not weights:
            raise ValueError("need one bias vector per weight matrix, and at least one layer")
        self.weights = list(weights)  # [(fan_in, fan_out)]
        self.biases = list(biases)  # [(fan_out,)]
        self.activation_name = activation
        self.activation = ACTIVATIONS[activation]
        self.dropout = float(dropout)
        self.loss = SoftmaxCrossEntropy()
        self._buffers = {}

    @classmethod
    def initialized(cls, sizes, init, rng, activation="relu", dropout=0.0, dtype=np.float32):
        """A new network with layer sizes like [784, 800, 800, 10], weights drawn by ``init``."""
        make = INITIALIZERS[init]
        shapes = list(zip(sizes[:-1], sizes[1:]))
        weights = [np.ascontiguousarray(make(shape, rng), dtype=dtype) for shape in shapes]
        biases = [np.zeros(shape[1], dtype=dtype) for shape in shapes]
        return cls(weights, biases, activation, dropout)

    @property
    def sizes(self):
        return [self.weights[0].shape[0]] + [w.shape[1] for w in self.weights]

    @property
    def dtype(self):
        return self.weights[0].dtype

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
            a = affine(np.empty((len(a), W.shape[1]), self.dtype), a, W, b)
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

    def _step_buffers(self, batch):
        # Reused across steps of the same batch size: allocating per step costs more than the
        # arithmetic for small batches. acts[i] is layer i's output, back[i] dLoss/d(that output).
        key = (batch, self.dtype)
        if key not in self._buffers:
            widths = [w.shape[1] for w in self.weights]
            self._buffers[key] = {
                "acts": [np.empty((batch, n), self.dtype) for n in widths],
                "dropped": [np.empty((batch, n), self.dtype) for n in widths[:-1]],
                "back": [np.empty((batch, n), self.dtype) for n in widths[:-1]],
                # Wide layers: BLAS writes delta @ W.T faster in column-major order (see blas.py).
                "scratch": [np.empty((batch, n), self.dtype, order="F") if n >= 256 else None
                            for n in widths[:-1]],
            }
        return self._buffers[key]

    def train_step(self, x, labels, optimizer, learning_rate, rng=None):
        """One forward/backward pass on a batch and the optimizer's update of every layer.

        x: (batch, fan_in) in the network's dtype; labels: (batch,) integers. ``rng`` draws the
        dropout masks. Returns (mean loss, number of correct predictions) before the update.
        Run training loops inside ``blas.thread_limits(batch)``, as the Trainer does: small batches
        need a single BLAS thread to be fast (see blas.py).
        """
        buf = self._step_buffers(len(x))
        acts, back = buf["acts"], buf["back"]
        last = len(self.weights) - 1
        inputs = [x] + [None] * last  # the input of layer i: layer i-1's output, after dropout
        masks = [None] * last
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = affine(acts[i], inputs[i], W, b)
            if i < last:
                a = self.activation.forward(z)
                if self.dropout > 0:  # inverted dropout: scale the kept units by 1 / keep
                    keep = 1.0 - self.dropout
                    masks[i] = (rng.random(a.shape, dtype=np.float32) < keep) / np.float32(keep)
                    a = np.multiply(a, masks[i], out=buf["dropped"][i])
                inputs[i + 1] = a
        logits = acts[-1]
        correct = int((logits.argmax(axis=1) == labels).sum())
        loss, delta = self.loss.value_and_grad(logits, labels)  # dLoss/dlogits, (batch, classes)
        for i in range(last, -1, -1):
            below = None
            if i > 0:
                # Needs W before this layer's update changes it.
                below = backprop(back[i - 1], delta, self.weights[i], buf["scratch"][i - 1])
                if masks[i - 1] is not None:
                    below *= masks[i - 1]
                self.activation.backward(acts[i - 1], below)
            optimizer.update(i, self.weights[i], self.biases[i], inputs[i], delta, learning_rate)
            delta = below
        return loss, correct

    def gradients(self, x, labels, rng=None):
        """(loss, [dW], [db]) for a batch, leaving the weights untouched. For checks and tools."""
        grabber = _GradientGrabber(len(self.weights))
        loss, _ = self.train_step(x, labels, grabber, 0.0, rng)
        return loss, grabber.dW, grabber.db


class _GradientGrabber:
    """An 'optimizer' that records each layer's gradient instead of applying it."""

    def __init__(self, layers):
        self.dW = [None] * layers
        self.db = [None] * layers

    def update(self, i, W, b, inputs, delta, learning_rate):
        self.dW[i] = inputs.T @ delta
        self.db[i] = delta.sum(axis=0)
