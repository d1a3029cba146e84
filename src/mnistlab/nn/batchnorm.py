"""Batch normalisation per channel (Ioffe & Szegedy, 2015): in training each channel is normalised
by the mean and variance of the batch (over the batch and every pixel), in inference by running
averages of them, then scaled and shifted by trained ``scale`` and ``shift``.

Inputs are NHWC (batch, h, w, C) or (batch, C): either way the data is a (rows, C) matrix with the
channel last, so every per-channel sum is one gemm with a row of ones (BLAS, both cores) instead of
a NumPy reduction over the rows. The running mean and variance are ``state``: not trained, but
saved with the model and in checkpoints. ``momentum`` and the unbiased running variance follow
PyTorch (running = (1 - momentum) * running + momentum * batch). No weight decay on scale or shift.
"""

import numpy as np

from .conv2d import BoundProducts


class BatchNorm:
    kind = "bn"

    def __init__(self, in_shape, momentum=0.1, eps=1e-5, dtype=np.float32):
        self.in_shape = self.out_shape = tuple(int(v) for v in in_shape)
        channels = self.in_shape[-1]
        self.dtype, self.momentum, self.eps = np.dtype(dtype), float(momentum), float(eps)
        self.params = {"scale": np.ones(channels, dtype), "shift": np.zeros(channels, dtype)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.decay = ()
        self.state = {"running_mean": np.zeros(channels, dtype), "running_var": np.ones(channels, dtype)}
        self._plans = {}
        self._products = BoundProducts()

    def plan(self, batch):
        if batch not in self._plans:
            self._plans[batch] = _NormPlan(self, batch)
        return self._plans[batch]

    def _channel_sums(self, plan, x2):
        """Per-channel sums of x2 (rows, C): ones (1, rows) @ x2 -> (1, C)."""
        self._products.get(plan.sums, plan.ones, x2).product()
        return plan.sums[0]

    def forward(self, x, training=True):
        plan = self.plan(len(x))
        x2, y2 = x.reshape(-1, plan.xc.shape[1]), plan.out2
        scale, shift = self.params["scale"], self.params["shift"]
        if not training:
            a = scale / np.sqrt(self.state["running_var"] + self.eps)
            np.multiply(x2, a, out=y2)
            y2 += shift - self.state["running_mean"] * a
            return plan.out
        rows = len(x2)
        mean = self._channel_sums(plan, x2) / rows
        np.subtract(x2, mean, out=plan.xc)
        np.multiply(plan.xc, plan.xc, out=y2)  # y2 as scratch for the squares
        var = self._channel_sums(plan, y2) / rows
        plan.inv_std = 1 / np.sqrt(var + self.eps)
        plan.a = scale * plan.inv_std
        np.multiply(plan.xc, plan.a, out=y2)
        y2 += shift
        m = self.momentum
        self.state["running_mean"] *= 1 - m
        self.state["running_mean"] += m * mean
        self.state["running_var"] *= 1 - m
        self.state["running_var"] += m * var * (rows / max(rows - 1, 1))
        self.last = plan
        return plan.out

    def backward(self, dy, input_gradient=True):
        plan = self.last
        dy2, dx2, tmp = dy.reshape(plan.xc.shape), plan.dx2, plan.tmp
        rows = len(dy2)
        dshift = self._channel_sums(plan, dy2).copy()
        np.multiply(dy2, plan.xc, out=tmp)
        dy_xc = self._channel_sums(plan, tmp).copy()  # sum of dy * (x - mean) per channel
        self.grads["shift"][...] = dshift
        self.grads["scale"][...] = dy_xc * plan.inv_std
        if not input_gradient:
            return None
        # dx = a * (dy - mean(dy) - xhat * mean(dy * xhat)), xhat = (x - mean) * inv_std
        np.multiply(dy2, plan.a, out=dx2)
        np.multiply(plan.xc, plan.a * plan.inv_std ** 2 * dy_xc / rows, out=tmp)
        dx2 -= tmp
        dx2 -= plan.a * dshift / rows
        return plan.dx


class _NormPlan:
    def __init__(self, layer, batch):
        shape, dt = (batch, *layer.in_shape), layer.dtype
        channels = layer.in_shape[-1]
        rows = int(np.prod(shape)) // channels
        self.out = np.empty(shape, dt)
        self.out2 = self.out.reshape(rows, channels)
        self.xc = np.empty((rows, channels), dt)  # x - batch mean, kept for backward
        self.tmp = np.empty((rows, channels), dt)
        self.dx = np.empty(shape, dt)
        self.dx2 = self.dx.reshape(rows, channels)
        self.ones = np.ones((1, rows), dt)
        self.sums = np.empty((1, channels), dt)
