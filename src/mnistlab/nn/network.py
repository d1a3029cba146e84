"""The network: a sequence of layers (see layer.py) built from an architecture spec, softmax cross-entropy on top.

``Network.build(arch, init, rng)`` makes one from an ``arch.Arch`` (``arch.resolve("fc800-fc800")``);
``Network.initialized(sizes, init, rng)`` is the same for a list of dense sizes like [784, 800, 800, 10].
``train_epoch`` runs mini-batch training over a set (``train_step`` over one batch): each layer's
forward, the fused loss, each layer's backward and the optimizer's update of its parameters, top
down. ``logits``/``predict``/``evaluate`` run inference through each layer's ``forward``, in chunks.
The network knows no layer's insides: parameters are reached by name (``tensors()``).
"""

import inspect
from typing import NamedTuple

import numpy as np

from ..arch import hidden_arch, resolve
from .blas import blas_threads, can_set_threads, one_thread
from .layer import LossHead, build_layer
from .losses import SoftmaxCrossEntropy, epoch_totals, fused_gradient
from .streams import SERIAL, Streams

CHUNK = 10_000  # rows evaluated at once: bounds inference memory for any layer type


class EpochResult(NamedTuple):
    """What ``train_epoch``/``train_step`` report: the mean loss and the number correct, each batch
    counted before its update."""

    loss: float
    correct: int


class Score(NamedTuple):
    """What ``evaluate`` reports: the mean loss and the accuracy over a set."""

    loss: float
    accuracy: float


class Gradients(NamedTuple):
    """A batch's loss and the gradient of every parameter tensor, by tensor name."""

    loss: float
    tensors: dict  # "dense.0.weight" -> array shaped like the parameter


class Network:
    def __init__(self, arch, dtype=np.float32):
        """An untrained network (parameters zero) for an ``arch.Arch``."""
        self.arch = arch
        self.layers = [build_layer(spec, dtype) for spec in arch.layers]
        for i, layer in enumerate(self.layers):
            layer.name = f"{layer.kind}.{i}"
        self.activation_name = arch.activation
        self.loss = SoftmaxCrossEntropy()
        self._dtype = np.dtype(dtype)
        self._plans = {}
        self._streams = None

    @classmethod
    def build(cls, arch, init, rng, dtype=np.float32):
        """A new network for ``arch``, weights drawn by ``init`` from ``rng``, layer by layer."""
        network = cls(arch, dtype)
        for layer in network.layers:
            layer.initialize(init, rng)
        return network

    @classmethod
    def initialized(cls, sizes, init, rng, activation="relu", dropout=0.0, dtype=np.float32):
        """A new all-dense network with layer sizes like [784, 800, 800, 10]."""
        arch = resolve(hidden_arch(sizes[1:-1]), sizes[0], sizes[-1], activation, dropout)
        return cls.build(arch, init, rng, dtype)

    @property
    def input_shape(self):
        return self.arch.input_shape

    @property
    def classes(self):
        return self.arch.classes

    @property
    def dtype(self):
        return self._dtype

    @property
    def sizes(self):
        """[784, 800, 800, 10] for an all-dense network; None for any other."""
        return self.arch.dense_sizes

    @property
    def dropout(self):
        return max((getattr(layer, "dropout", 0.0) for layer in self.layers[:-1]), default=0.0)

    @dropout.setter
    def dropout(self, rate):
        """Set the run's dropout on every hidden dense layer (fine-tuning a saved network)."""
        for layer in self.layers[:-1]:
            if layer.kind == "dense":
                layer.dropout = float(rate)
        self._plans.clear()

    def largest_product(self, batch_size):
        """Multiply-adds in the largest single product of a training step (see blas.threads_for)."""
        return self.arch.largest_product(batch_size)

    def tensors(self):
        """{name: array} of every parameter and saved state: ``dense.0.weight``, ``bn.2.mean``, ...
        The arrays are the network's own: write into them to set them."""
        return {f"{layer.name}.{name}": array for layer in self.layers
                for group in (layer.params, layer.state) for name, array in group.items()}

    def copy_parameters(self):
        return {name: array.copy() for name, array in self.tensors().items()}

    def set_parameters(self, tensors):
        for name, array in self.tensors().items():
            array[...] = tensors[name]

    # Inference -------------------------------------------------------------------------------

    def folded(self):
        """A copy for inference only, each convolution followed by batch norm folded into one layer
        (Conv2d.folded): the same predictions up to float rounding, 10-15% less time for the batch-norm
        CNN (its norms were three passes over every feature map). The layers' arrays are new, so later
        training of this network does not reach the copy; the copy must not be trained."""
        layers, i = [], 0
        while i < len(self.layers):
            layer = self.layers[i]
            after = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if layer.kind == "conv" and layer.activation is None and after is not None and after.kind == "bn":
                layers.append(layer.folded(after))
                i += 2
            else:
                layers.append(layer)
                i += 1
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__, layers=layers, _plans=None, _streams=None)  # no training plans
        return copy

    def logits(self, x):
        """Logits (n, classes) for inputs x (n, *input_shape), or (n, features) flattened; no dropout.
        Evaluated ``arch.inference_rows`` images at a time, so memory stays bounded for any n (a
        CNN's feature maps are tens of thousands of values an image)."""
        x = np.ascontiguousarray(x, dtype=self.dtype).reshape(len(x), *self.input_shape)
        rows = self.arch.inference_rows
        if len(x) <= rows:
            return self._logits(x)
        out = np.empty((len(x), self.classes), self.dtype)
        for i in range(0, len(x), rows):
            out[i:i + rows] = self._logits(x[i:i + rows])
        return out

    def _logits(self, a):
        for layer in self.layers:
            a = layer.forward(a)
        return a

    def predict(self, x, chunk=CHUNK):
        return np.concatenate([self.logits(x[i:i + chunk]).argmax(axis=1)
                               for i in range(0, len(x), chunk)]) if len(x) else np.zeros(0, int)

    def evaluate(self, x, labels, chunk=CHUNK):
        """The Score (mean loss, accuracy) over a whole set, computed in chunks to bound memory."""
        total_loss, correct = 0.0, 0
        for i in range(0, len(x), chunk):
            z = self.logits(x[i:i + chunk])
            y = labels[i:i + chunk]
            total_loss += self.loss.value(z, y) * len(y)
            correct += int((z.argmax(axis=1) == y).sum())
        n = max(len(x), 1)
        return Score(total_loss / n, correct / n)

    # Training --------------------------------------------------------------------------------

    def train_epoch(self, x, labels, batch_size, optimizer, learning_rate, rng=None, progress=None, streams=None):
        """Train on x (n, features) in mini-batches of ``batch_size``, in the order given.

        labels: (n,) integers. ``rng`` draws the dropout masks. ``progress(seen, loss_sum, correct)``
        is called now and then with running totals. Returns an EpochResult, each batch counted before
        its update. Run inside ``blas.thread_limits()``, as the Trainer does. ``streams``: run each
        step as two streams (streams.py; BLAS on one thread meanwhile), bit for bit the same result;
        by default a network with conv layers does when BLAS has two threads or more, an MLP never.
        """
        if streams is None:  # a layer whose plan takes no streams (an older protocol) runs the network on one
            streams = (any(layer.kind == "conv" for layer in self.layers)
                       and all("streams" in inspect.signature(layer.plan).parameters for layer in self.layers))
        threads = blas_threads() if streams and can_set_threads() else 1
        if threads > 1:
            with one_thread():
                return self._train_epoch(x, labels, batch_size, optimizer, learning_rate, rng, progress, threads)
        return self._train_epoch(x, labels, batch_size, optimizer, learning_rate, rng, progress, None)

    def _train_epoch(self, x, labels, batch_size, optimizer, learning_rate, rng, progress, threads):
        n, classes = len(x), self.classes
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
        full = self._plan(batch_size, threads) if n >= batch_size else None
        for k, start in enumerate(range(0, n, batch_size)):
            end = start + batch_size
            plan = full if end <= n else self._plan(n - start, threads)
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
        return EpochResult(loss_sum / max(n, 1), correct)

    def train_step(self, x, labels, optimizer, learning_rate, rng=None, streams=None):
        """One forward/backward pass on a batch and the optimizer's update of every layer; an
        EpochResult of the batch before the update."""
        return self.train_epoch(x, labels, max(len(x), 1), optimizer, learning_rate, rng, streams=streams)

    def gradients(self, x, labels, rng=None):
        """Gradients (loss, {tensor name: gradient}) for a batch, leaving the weights untouched."""
        grabber = _GradientGrabber()
        loss, _ = self.train_step(x, labels, grabber, 0.0, rng)
        return Gradients(loss, grabber.tensors)

    def _plan(self, batch, threads=None):
        # Buffers and bound products for one batch size, reused by every step of that size:
        # allocating or binding per step costs more than the arithmetic for small batches.
        # ``threads``: run as two streams, whose products give the bits of BLAS on that many threads.
        key = (batch, self.dtype, threads)
        if key not in self._plans:
            streams = SERIAL
            if threads:
                if self._streams is None or self._streams.threads != threads:
                    self._streams = Streams(threads)  # one helper thread, kept while the threads are
                streams = self._streams
            self._plans[key] = _StepPlan(self, batch, streams)
        return self._plans[key]


class _StepPlan:
    """One training step at a fixed batch size: each layer's step, bound to the one above."""

    def __init__(self, net, batch, streams=SERIAL):
        self.steps = [layer.plan(batch, i > 0, streams) if streams is not SERIAL else layer.plan(batch, i > 0)
                      for i, layer in enumerate(net.layers)]
        self.head = LossHead(batch, net.classes, net.dtype)
        for step, above in zip(self.steps, self.steps[1:] + [self.head]):
            step.bind(above)
        self.input = self.steps[0].x  # the images are copied into it (a conv's: inside its padding)
        self.forward = [step.forward for step in self.steps]  # bound once: a step is dozens of calls
        self.backward = [(step.backward, step.parameters) for step in reversed(self.steps)]

    def step(self, x, onehot, shifted, sums, optimizer, learning_rate, rng):
        np.copyto(self.input, x.reshape(self.input.shape))
        for forward in self.forward:
            forward(rng)
        # Softmax cross-entropy (losses.py): the gradient softmax - onehot overwrites the logits,
        # the rest is recorded for the epoch's totals.
        fused_gradient(self.head.x, onehot, shifted, sums)
        update = optimizer.update
        for backward, parameters in self.backward:
            backward()  # before this layer's update changes its weights
            for parameter in parameters:
                update(parameter, learning_rate)


class _GradientGrabber:
    """An 'optimizer' that records each parameter's gradient, by tensor name, instead of applying it."""

    def __init__(self):
        self.tensors = {}

    def update(self, parameter, learning_rate):
        self.tensors.update(parameter.tensors(parameter.gradient.value()))
