"""Max pooling (token ``poolK``): the maximum of each K x K window, stride K (the windows tile the
image), per channel, on NHWC images (see conv2d.py).

Training keeps, per output, which input held the maximum, so backward routes each gradient to
exactly one input (on a tie the first of the window's rows, then of its columns). Rows and columns past the last whole
window (an odd size) are dropped, as PyTorch does by default, and get gradient 0. Overlapping
windows (stride < K) are not supported: a clear error.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .conv2d import nhwc
from .streams import SERIAL


class MaxPool2d:
    kind = "pool"

    def __init__(self, spec, dtype=np.float32):
        self.spec, self.name = spec, self.kind
        o, (c, h, w) = spec.options, spec.in_shape
        k = o.get("size", o.get("kernel"))
        stride = o.get("stride", k)
        if stride != k:
            raise ValueError(f"pool: stride {stride} != size {k}: only non-overlapping windows "
                             "(stride == size) are supported")
        if not 1 <= k <= min(h, w):
            raise ValueError(f"pool: a {k}x{k} window does not fit a {h}x{w} input")
        self.size, self.dtype = int(k), np.dtype(dtype)
        self.in_hwc, self.out_hwc = (h, w, c), (h // k, w // k, c)
        self.params, self.state = {}, {}

    def initialize(self, init, rng):
        pass

    def positions(self, x):
        """The K*K (batch, out_h, out_w, C) views of x (batch, h, w, C), one per window position."""
        k, (out_h, out_w, _) = self.size, self.out_hwc
        return [x[:, i:k * out_h:k, j:k * out_w:k] for i in range(k) for j in range(k)]

    def forward(self, x):
        """Inference: x (n, *in_shape) -> (n, out_h, out_w, C) NHWC."""
        first, *rest = self.positions(nhwc(np.asarray(x, self.dtype), len(x), self.spec.in_shape))
        out = first.copy()
        for view in rest:
            np.maximum(out, view, out=out)
        return out

    def plan(self, batch, input_grad, streams=SERIAL):
        return PoolStep(self, batch, input_grad, streams)


class PoolStep:
    """Pools in two stages, each over one axis of the window: the rows of each window column (runs of
    width*channels contiguous numbers), then the columns (runs of channels), recording at each stage
    which one won (uint8; bool when K = 2); backward routes the gradient back through both stages.
    At 64x24x24x64 on one core: forward 2.9 ms, backward 3.4 ms, where the K*K window positions one
    by one (compare, copy where larger, record which) took 18 ms and 2.9 ms. Each of ``streams``
    (streams.py) pools its own images."""

    def __init__(self, layer, batch, input_grad, streams=SERIAL):
        dt, k, (out_h, out_w, c) = layer.dtype, layer.size, layer.out_hwc
        self.layer, self.batch = layer, batch
        self.streams, self.images = streams, streams.parts(batch)
        self.x = np.zeros((batch, *layer.in_hwc), dt)
        self.dx = np.zeros((batch, *layer.in_hwc), dt) if input_grad else None
        h, w, _ = layer.in_hwc
        self.cropped = bool(h % k or w % k)
        self.rows = np.empty((batch, out_h, out_w, k, c), dt)  # each window column's maximum
        self.row_won = np.zeros((batch, out_h, out_w, k, c), np.uint8)
        self.col_won = np.zeros((batch, out_h, out_w, c), np.uint8)
        self.drows = np.empty((batch, out_h, out_w, k, c), dt)
        self.larger = np.empty((batch, out_h, out_w, k, c), bool)
        self.parameters = []

    def windows(self, x):
        """x (n, h, w, C) as (n, out_h, K, out_w * K, C): the window rows, no copy."""
        k, (out_h, out_w, c) = self.layer.size, self.layer.out_hwc
        sn, sh, sw, sc = x.strides
        return as_strided(x, (len(x), out_h, k, out_w * k, c), (sn, k * sh, sh, sw, sc))

    def bind(self, above):
        self.out = nhwc(above.x, self.batch, self.layer.spec.out_shape)
        self.dy = nhwc(above.dx, self.batch, self.layer.spec.out_shape)

    @staticmethod
    def _max(parts, out, won, larger):
        """out = the maximum of parts, won = the index of the first part holding it."""
        np.copyto(out, parts[0])
        if len(parts) == 2:  # a bool is the index 0 or 1 itself
            np.greater(parts[1], parts[0], out=won.view(bool))
            np.maximum(out, parts[1], out=out)
            return
        won[...] = 0
        for p, part in enumerate(parts[1:], 1):
            np.greater(part, out, out=larger)  # strictly: a tie keeps the first
            np.maximum(out, part, out=out)
            np.copyto(won, np.uint8(p), where=larger)

    def forward(self, rng):
        self.streams.run(self._forward)

    def _forward(self, part):
        first, end = self.images[part]
        k, (out_h, out_w, c) = self.layer.size, self.layer.out_hwc
        win = self.windows(self.x[first:end])
        rows = self.rows[first:end].reshape(end - first, out_h, out_w * k, c)
        larger = self.larger[first:end]
        self._max([win[:, :, i] for i in range(k)], rows, self.row_won[first:end].reshape(rows.shape),
                   larger.reshape(rows.shape))
        self._max([self.rows[first:end, :, :, j] for j in range(k)], self.out[first:end], self.col_won[first:end],
                  larger[:, :, :, 0])

    @staticmethod
    def _route(dy, won, parts, mask):
        """parts[p] = dy where won == p, else 0."""
        if len(parts) == 2:  # with K = 2: the second where won, the first the rest (a subtraction)
            np.multiply(dy, won.view(bool), out=parts[1])
            np.subtract(dy, parts[1], out=parts[0])
            return
        for p, part in enumerate(parts):
            np.equal(won, np.uint8(p), out=mask)
            np.multiply(dy, mask, out=part)

    def backward(self):
        if self.dx is not None:
            self.streams.run(self._backward)

    def _backward(self, part):
        first, end = self.images[part]
        k, (out_h, out_w, c) = self.layer.size, self.layer.out_hwc
        dx, larger = self.dx[first:end], self.larger[first:end]
        if self.cropped:
            dx[...] = 0
        # The gradient of each window column's maximum, then of each input.
        self._route(self.dy[first:end], self.col_won[first:end], [self.drows[first:end, :, :, j] for j in range(k)],
                    larger[:, :, :, 0])
        drows = self.drows[first:end].reshape(end - first, out_h, out_w * k, c)
        win = self.windows(dx)
        self._route(drows, self.row_won[first:end].reshape(drows.shape), [win[:, :, i] for i in range(k)],
                    larger.reshape(drows.shape))
