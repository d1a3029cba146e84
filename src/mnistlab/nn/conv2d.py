"""A k x k two-dimensional convolution (cross-correlation, as every framework computes it) on NHWC
batches: one gemm over an im2col buffer forward, one gemm for the weight gradient, and for the input
gradient one gemm and k² slice-adds.

Channel order: activations are (batch, height, width, channels), C-contiguous. Then the k x k
windows of an image are k*k runs of ``channels`` contiguous numbers, the im2col row of an output
pixel is a plain copy of them, and the product's output (batch * height * width, filters) *is* the
next layer's NHWC input: no transposes anywhere. (In NCHW every im2col row gathers k*k*C scattered
numbers and the output has to be transposed back.)

Weights are ``P = [W; b]`` of shape (k*k*C + 1, filters), rows of W in (ky, kx, channel) order,
as Dense keeps them (``weight`` and ``bias`` are views): each im2col row ends in a 1, so the bias is
part of the product and its gradient part of the weight gradient's product.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .blas import Gemm
from .initializers import INITIALIZERS


def output_size(size, kernel, stride, padding):
    """Output height (or width) of a convolution or pooling: floor((size + 2*pad - k) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def windows(x, kernel, stride, out_hw):
    """The (batch, out_h, out_w, k, k, C) view of every k x k window of x (batch, h, w, C): no copy."""
    n, _, _, c = x.shape
    sn, sh, sw, sc = x.strides
    return as_strided(x, (n, *out_hw, kernel, kernel, c), (sn, stride * sh, stride * sw, sh, sw, sc),
                      writeable=False)


class BoundProducts:
    """Gemms bound to the arrays they were last called with, so that a layer which is handed the
    same planned buffer every step (the usual case) binds once; a few entries, oldest dropped."""

    def __init__(self, size=4):
        self.size, self.found = size, {}

    def get(self, out, a, b):
        key = tuple((x.__array_interface__["data"][0], x.shape, x.strides) for x in (out, a, b))
        gemm = self.found.get(key)
        if gemm is None:
            if len(self.found) >= self.size:
                self.found.pop(next(iter(self.found)))
            gemm = self.found[key] = Gemm(out, a, b)
        return gemm


class Conv2d:
    """Convolution of (batch, h, w, channels) inputs with ``filters`` k x k filters.

    ``padding`` is "valid" (none) or "same" ((k - 1) / 2 on every side, odd k: the output is
    ceil(size / stride), as in PyTorch with ``padding=k//2``).
    """

    kind = "conv"

    def __init__(self, in_shape, filters, kernel, stride=1, padding="valid", dtype=np.float32):
        h, w, c = (int(v) for v in in_shape)
        if stride not in (1, 2):
            raise ValueError(f"conv: stride {stride}: must be 1 or 2")
        if padding not in ("valid", "same"):
            raise ValueError(f"conv: padding {padding!r}: must be 'valid' or 'same'")
        if padding == "same" and kernel % 2 == 0:
            raise ValueError(f"conv: 'same' padding needs an odd kernel, got {kernel}")
        self.kernel, self.stride, self.padding = int(kernel), int(stride), padding
        self.pad = (kernel - 1) // 2 if padding == "same" else 0
        out_h, out_w = (output_size(s, kernel, stride, self.pad) for s in (h, w))
        if out_h < 1 or out_w < 1:
            raise ValueError(f"conv: a {kernel}x{kernel} kernel does not fit a {h}x{w} input")
        self.in_shape, self.out_shape = (h, w, c), (out_h, out_w, int(filters))
        self.fan_in = kernel * kernel * c
        self.P = np.zeros((self.fan_in + 1, filters), dtype)  # [W; b]
        self.dP = np.zeros_like(self.P)
        self.params = {"weight": self.P[:-1], "bias": self.P[-1]}
        self.grads = {"weight": self.dP[:-1], "bias": self.dP[-1]}
        self.decay = ("weight",)  # weight decay applies to these, never to the bias
        self.state = {}  # nothing but the trained parameters
        self._plans = {}
        self._products = BoundProducts()

    def initialize(self, init, rng):
        """Draw the weights with a named initializer (fan_in = k*k*channels); biases zero."""
        self.params["weight"][...] = INITIALIZERS[init](self.P[:-1].shape, rng)
        self.params["bias"][...] = 0

    @property
    def dtype(self):
        return self.P.dtype

    def flops(self, batch, input_gradient=True):
        """Floating-point operations of a training step's products (forward, weight and input gradient)."""
        per_product = 2 * batch * int(np.prod(self.out_shape[:2])) * self.P.size
        return per_product * (3 if input_gradient else 2)

    def plan(self, batch):
        """Buffers and bound products for batches of this size (made once, then reused)."""
        if batch not in self._plans:
            self._plans[batch] = _ConvPlan(self, batch)
        return self._plans[batch]

    def forward(self, x, training=True):
        """(batch, h, w, C) -> (batch, out_h, out_w, filters); keeps the im2col buffer for backward."""
        plan = self.plan(len(x))
        k, s = self.kernel, self.stride
        if self.pad:
            plan.inside[...] = x  # the borders of plan.padded stay zero
            x = plan.padded
        np.copyto(plan.cols_view, windows(x, k, s, self.out_shape[:2]))
        plan.forward.product()
        self.last = plan
        return plan.out4

    def backward(self, dy, input_gradient=True):
        """dLoss/d(output) (batch, out_h, out_w, filters) -> fills ``grads`` (summed over the batch)
        and returns dLoss/d(input), or None when ``input_gradient`` is False (the first layer)."""
        plan = self.last
        dy2 = dy.reshape(-1, self.P.shape[1])
        self._products.get(self.dP, plan.cols.T, dy2).product()
        if not input_gradient:
            return None
        self._products.get(plan.dcols, dy2, self.P[:-1].T).product()
        plan.dpadded[...] = 0
        k, s = self.kernel, self.stride
        out_h, out_w, _ = self.out_shape
        dwin = plan.dcols.reshape(len(dy), out_h, out_w, k, k, -1)
        # Col2im: each of the k*k kernel positions adds its column block onto a strided slice of
        # the input gradient. np.add.at would do it in one call, 20-50x slower.
        for i in range(k):
            for j in range(k):
                plan.dpadded[:, i:i + s * out_h:s, j:j + s * out_w:s] += dwin[:, :, :, i, j]
        if self.pad:
            np.copyto(plan.dx, plan.dinside)
            return plan.dx
        return plan.dpadded


class _ConvPlan:
    def __init__(self, layer, batch):
        (h, w, c), (out_h, out_w, f), p = layer.in_shape, layer.out_shape, layer.pad
        k, dt, rows = layer.kernel, layer.dtype, batch * out_h * out_w
        self.padded = np.zeros((batch, h + 2 * p, w + 2 * p, c), dt) if p else None
        self.inside = self.padded[:, p:p + h, p:p + w] if p else None
        self.cols = np.ones((rows, layer.fan_in + 1), dt)  # im2col, last column the bias's ones
        self.cols_view = self.cols[:, :-1].reshape(batch, out_h, out_w, k, k, c)
        assert np.shares_memory(self.cols_view, self.cols)  # a view, not a copy
        self.out = np.empty((rows, f), dt)
        self.out4 = self.out.reshape(batch, out_h, out_w, f)
        self.forward = Gemm(self.out, self.cols, layer.P)
        self.dcols = np.empty((rows, layer.fan_in), dt)
        self.dpadded = np.zeros((batch, h + 2 * p, w + 2 * p, c), dt)
        self.dinside = self.dpadded[:, p:p + h, p:p + w] if p else None
        self.dx = np.empty((batch, h, w, c), dt) if p else None
