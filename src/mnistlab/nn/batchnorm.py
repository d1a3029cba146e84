"""Batch normalisation (token ``bn``; Ioffe & Szegedy, 2015), per channel after a conv, per unit after
an fc: training normalises by the batch's mean and variance (over the batch and every pixel),
inference by running averages of them; then ``gamma`` scales and ``beta`` shifts, and the hidden
activation follows when the layer below left it to us (``conv-bn``: conv, normalise, activate).

The channel is the last axis (NHWC, see conv2d.py). Every per-channel pass reads the maps as
(images, rows, width * channels), each image row's pixels side by side (``wide``), against vectors
tiled ``width`` times: NumPy's inner loop then runs over hundreds of numbers instead of the C = 32
or 64 of one pixel (64x26x26x32 float32 in cache, one core: a broadcast multiply 0.31 ms against
0.54, a per-channel sum 0.10 against 0.28, a sum of products 0.19 against 0.35; in a training step,
where the maps stream from memory, far less: ``benchmarks/ab_steps.py``, README). A per-channel sum
is one ``einsum`` over the wide maps, then a sum of its ``width`` partial sums. The running ``mean``
and ``var`` are ``state``: not trained, saved with the model and in checkpoints.
The momentum and the unbiased running variance follow PyTorch: running = (1 - m) * running + m * batch.
No weight decay on gamma or beta.
"""

import math

import numpy as np

from .activations import ACTIVATIONS
from .conv2d import activation_backward, nhwc
from .layer import simple_parameters
from .streams import SERIAL

MOMENTUM, EPS = 0.1, 1e-5


def wide(a):
    """NHWC maps (n, h, w, C) as (n, h, w * C), a view (any strides between rows: the inside of a
    padded buffer too); flat features (n, C) as they are."""
    if a.ndim == 2:
        return a
    n, h, w, c = a.shape
    view = a.reshape(n, h, w * c)
    assert not a.size or np.shares_memory(view, a)  # a reshape that copied would lose the writes
    return view


def channel_sum(a, channels):
    """Per-channel sums of wide maps (..., width * channels), any strides: one read (einsum's loop
    is faster than a gemm with a row of ones), then the ``width`` partial sums added."""
    axes = "abcdefgh"[:a.ndim]
    return np.einsum(f"{axes}->{axes[-1]}", a).reshape(-1, channels).sum(axis=0)


def channel_dot(a, b, channels):
    """Per-channel sums of a * b for wide maps: one read of each and no product array."""
    axes = "abcdefgh"[:a.ndim]
    return np.einsum(f"{axes},{axes}->{axes[-1]}", a, b).reshape(-1, channels).sum(axis=0)


class BatchNorm:
    kind = "bn"
    eps = EPS

    def __init__(self, spec, dtype=np.float32):
        self.spec, self.name = spec, self.kind
        channels = spec.in_shape[0]
        self.dtype = np.dtype(dtype)
        self.rows_per_image = math.prod(spec.in_shape) // channels
        self.width = spec.in_shape[2] if len(spec.in_shape) == 3 else 1  # pixels per wide row
        self.params = {"gamma": np.ones(channels, dtype), "beta": np.zeros(channels, dtype)}
        self.state = {"mean": np.zeros(channels, dtype), "var": np.ones(channels, dtype)}
        name = spec.options.get("activation")
        self.activation = ACTIVATIONS[name] if name else None

    def initialize(self, init, rng):
        self.params["gamma"][...] = 1
        self.params["beta"][...] = 0

    def forward(self, x):
        """Inference: normalise by the running statistics; x (n, *in_shape) -> a new array, NHWC."""
        x = nhwc(np.asarray(x, self.dtype), len(x), self.spec.in_shape)
        a = self.params["gamma"] / np.sqrt(self.state["var"] + EPS)
        y = np.empty(x.shape, self.dtype)
        rows = wide(y)
        np.multiply(wide(x), np.tile(a, self.width), out=rows)
        rows += np.tile(self.params["beta"] - self.state["mean"] * a, self.width)
        return self.activation.forward(y) if self.activation else y

    def plan(self, batch, input_grad, streams=SERIAL):
        return NormStep(self, batch, input_grad, streams)


class NormStep:
    """Each of ``streams`` (streams.py) normalises its own images; the batch's statistics stay one
    ``einsum`` each, over every image (their order of summation is the result's)."""

    def __init__(self, layer, batch, input_grad, streams=SERIAL):
        dt, channels = layer.dtype, layer.spec.in_shape[0]
        self.layer, self.batch, self.channels = layer, batch, channels
        self.streams, self.images = streams, streams.parts(batch)
        rows = batch * layer.rows_per_image
        self.x = nhwc(np.empty((rows, channels), dt), batch, layer.spec.in_shape)
        self.xc = np.empty(self.x.shape, dt)  # x minus the batch mean, kept for backward
        self.tmp = np.empty(self.x.shape, dt)
        self.dx = np.empty_like(self.x) if input_grad else None
        self.grads = {name: np.zeros_like(p) for name, p in layer.params.items()}

    def bind(self, above):
        layer, batch = self.layer, self.batch
        self.out = nhwc(above.x, batch, layer.spec.out_shape)
        self.dy = nhwc(above.dx, batch, layer.spec.out_shape)
        self.parameters = simple_parameters(layer, layer.name, self.grads)
        self.mask = np.empty(self.out.shape, bool) if layer.activation else None
        # the wide views every per-channel pass reads (module docstring)
        self.w = {name: wide(getattr(self, name)) for name in ("x", "xc", "tmp", "dx", "out", "dy")
                  if getattr(self, name) is not None}

    def tiled(self, v):
        return np.tile(v, self.layer.width)

    def forward(self, rng):
        layer, w, rows, c = self.layer, self.w, self.xc.size // self.channels, self.channels
        mean = channel_sum(w["x"], c) / rows
        mean_tiled = self.tiled(mean)

        def centre(part):
            first, end = self.images[part]
            np.subtract(w["x"][first:end], mean_tiled, out=w["xc"][first:end])

        self.streams.run(centre)
        var = channel_dot(w["xc"], w["xc"], c) / rows
        self.inv_std = 1 / np.sqrt(var + EPS)
        self.a = layer.params["gamma"] * self.inv_std
        self.a_tiled, self.beta_tiled = self.tiled(self.a), self.tiled(layer.params["beta"])
        self.streams.run(self._normalise)
        for name, batch_value in (("mean", mean), ("var", var * (rows / max(rows - 1, 1)))):
            running = layer.state[name]
            running *= 1 - MOMENTUM
            running += MOMENTUM * batch_value

    def _normalise(self, part):
        first, end = self.images[part]
        out = self.w["out"][first:end]
        np.multiply(self.w["xc"][first:end], self.a_tiled, out=out)
        out += self.beta_tiled
        if self.layer.activation:
            self.layer.activation.forward(out)

    def _activation_backward(self, part):
        first, end = self.images[part]
        activation_backward(self.layer.activation, self.out[first:end], self.dy[first:end], self.mask[first:end])

    def backward(self):
        layer, w, rows, c = self.layer, self.w, self.xc.size // self.channels, self.channels
        if layer.activation:
            self.streams.run(self._activation_backward)
        sums = {}
        self.streams.both(lambda: sums.update(dbeta=channel_sum(w["dy"], c)),
                          lambda: sums.update(dy_xc=channel_dot(w["dy"], w["xc"], c)))  # sum of dy * (x - mean)
        dbeta, dy_xc = sums["dbeta"], sums["dy_xc"]
        # dy is dLoss/dy times the batch size: the parameters' gradients are divided by it here.
        self.grads["beta"][...] = dbeta / self.batch
        self.grads["gamma"][...] = dy_xc * self.inv_std / self.batch
        if self.dx is None:
            return
        # dx = a * (dy - mean(dy) - xhat * mean(dy * xhat)), xhat = (x - mean) * inv_std
        scale = self.tiled(self.a * self.inv_std ** 2 * dy_xc / rows)
        shift = self.tiled(self.a * dbeta / rows)

        def input_gradient(part):
            first, end = self.images[part]
            dx, tmp = w["dx"][first:end], w["tmp"][first:end]
            np.multiply(w["dy"][first:end], self.a_tiled, out=dx)
            np.multiply(w["xc"][first:end], scale, out=tmp)
            dx -= tmp
            dx -= shift

        self.streams.run(input_gradient)
