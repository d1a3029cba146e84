"""Batch normalisation (token ``bn``; Ioffe & Szegedy, 2015), per channel after a conv, per unit after
an fc: training normalises by the batch's mean and variance (over the batch and every pixel),
inference by running averages of them; then ``gamma`` scales and ``beta`` shifts, and the hidden
activation follows when the layer below left it to us (``conv-bn``: conv, normalise, activate).

The data is always a (rows, channels) matrix with the channel last (NHWC, see conv2d.py), so every
per-channel sum is one gemm with a row of ones (BLAS, both cores) instead of a NumPy reduction. The
running ``mean`` and ``var`` are ``state``: not trained, saved with the model and in checkpoints.
The momentum and the unbiased running variance follow PyTorch: running = (1 - m) * running + m * batch.
No weight decay on gamma or beta.
"""

import math

import numpy as np

from .activations import ACTIVATIONS
from .blas import Gemm
from .conv2d import activation_backward, nhwc
from .layer import simple_parameters

MOMENTUM, EPS = 0.1, 1e-5


def rows_view(a, shape):
    """``a`` as a 2-D (rows, channels) view, or None where that needs a copy."""
    view = a.view()
    try:
        view.shape = shape
    except AttributeError:
        return None
    return view


class BatchNorm:
    kind = "bn"

    def __init__(self, spec, dtype=np.float32):
        self.spec, self.name = spec, self.kind
        channels = spec.in_shape[0]
        self.dtype = np.dtype(dtype)
        self.rows_per_image = math.prod(spec.in_shape) // channels
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
        y = x * a
        y += self.params["beta"] - self.state["mean"] * a
        return self.activation.forward(y) if self.activation else y

    def plan(self, batch, input_grad):
        return NormStep(self, batch, input_grad)


class NormStep:
    def __init__(self, layer, batch, input_grad):
        dt, channels = layer.dtype, layer.spec.in_shape[0]
        self.layer, self.batch = layer, batch
        rows = batch * layer.rows_per_image
        self.x = nhwc(np.empty((rows, channels), dt), batch, layer.spec.in_shape)
        self.x2 = self.x.reshape(rows, channels)
        self.xc = np.empty((rows, channels), dt)  # x minus the batch mean, kept for backward
        self.tmp = np.empty((rows, channels), dt)
        self.dx = np.empty_like(self.x) if input_grad else None
        self.ones = np.ones((1, rows), dt)
        self.sums = np.empty((1, channels), dt)
        self.grads = {name: np.zeros_like(p) for name, p in layer.params.items()}
        # Per-channel sums; the Gemm objects are kept, their ``product`` points into them.
        self.sum_x = Gemm(self.sums, self.ones, self.x2)
        self.sum_tmp = Gemm(self.sums, self.ones, self.tmp)

    def bind(self, above):
        layer, batch = self.layer, self.batch
        self.out = nhwc(above.x, batch, layer.spec.out_shape)
        self.dy = nhwc(above.dx, batch, layer.spec.out_shape)
        self.dy2 = rows_view(self.dy, self.xc.shape)
        self.dy_copy = None
        if self.dy2 is None:  # (an fc above flattening our images: its rows have a ones column)
            self.dy_copy = np.empty_like(self.xc)
            self.dy2 = self.dy_copy
        self.sum_dy = Gemm(self.sums, self.ones, self.dy2)
        self.parameters = simple_parameters(layer, layer.name, self.grads)
        self.mask = np.empty(self.out.shape, bool) if layer.activation else None

    def forward(self, rng):
        layer, xc, rows = self.layer, self.xc, len(self.xc)
        self.sum_x.product()
        mean = self.sums[0] / rows
        np.subtract(self.x2, mean, out=xc)
        np.multiply(xc, xc, out=self.tmp)
        self.sum_tmp.product()
        var = self.sums[0] / rows
        self.inv_std = 1 / np.sqrt(var + EPS)
        self.a = layer.params["gamma"] * self.inv_std
        out = self.out
        np.multiply(xc.reshape(out.shape), self.a, out=out)
        out += layer.params["beta"]
        if layer.activation:
            layer.activation.forward(out)
        for name, batch_value in (("mean", mean), ("var", var * (rows / max(rows - 1, 1)))):
            running = layer.state[name]
            running *= 1 - MOMENTUM
            running += MOMENTUM * batch_value

    def backward(self):
        layer, xc, tmp, rows = self.layer, self.xc, self.tmp, len(self.xc)
        dy = self.dy
        if layer.activation:
            activation_backward(layer.activation, self.out, dy, self.mask)
        dy2 = self.dy2
        if self.dy_copy is not None:
            np.copyto(self.dy_copy.reshape(dy.shape), dy)
        self.sum_dy.product()
        dbeta = self.sums[0].copy()
        np.multiply(dy2, xc, out=tmp)
        self.sum_tmp.product()
        dy_xc = self.sums[0].copy()  # per channel: sum of dy * (x - mean)
        # dy is dLoss/dy times the batch size: the parameters' gradients are divided by it here.
        self.grads["beta"][...] = dbeta / self.batch
        self.grads["gamma"][...] = dy_xc * self.inv_std / self.batch
        if self.dx is None:
            return
        # dx = a * (dy - mean(dy) - xhat * mean(dy * xhat)), xhat = (x - mean) * inv_std
        dx2 = self.dx.reshape(rows, -1)
        np.multiply(dy2, self.a, out=dx2)
        np.multiply(xc, self.a * self.inv_std ** 2 * dy_xc / rows, out=tmp)
        dx2 -= tmp
        dx2 -= self.a * dbeta / rows
