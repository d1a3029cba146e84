"""Max pooling (token ``poolK``): the maximum of each K x K window, stride K (the windows tile the
image), per channel, on NHWC images (see conv2d.py).

Training keeps, per output, which of the K*K window positions held the maximum (the first one on a
tie), so backward routes each gradient to exactly one input. Rows and columns past the last whole
window (an odd size) are dropped, as PyTorch does by default, and get gradient 0. Overlapping
windows (stride < K) are not supported: a clear error.
"""

import numpy as np

from .conv2d import nhwc


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

    def plan(self, batch, input_grad):
        return PoolStep(self, batch, input_grad)


class PoolStep:
    def __init__(self, layer, batch, input_grad):
        self.layer, self.batch = layer, batch
        self.x = np.zeros((batch, *layer.in_hwc), layer.dtype)
        self.argmax = np.zeros((batch, *layer.out_hwc), np.uint8)  # which window position won
        self.larger = np.empty((batch, *layer.out_hwc), bool)
        self.dx = np.zeros((batch, *layer.in_hwc), layer.dtype) if input_grad else None
        h, w, _ = layer.in_hwc
        self.cropped = bool(h % layer.size or w % layer.size)
        self.parameters = []

    def bind(self, above):
        self.out = nhwc(above.x, self.batch, self.layer.spec.out_shape)
        self.dy = nhwc(above.dx, self.batch, self.layer.spec.out_shape)

    def forward(self, rng):
        first, *rest = self.layer.positions(self.x)
        out, argmax, larger = self.out, self.argmax, self.larger
        np.copyto(out, first)
        argmax[...] = 0
        for p, view in enumerate(rest, 1):
            np.greater(view, out, out=larger)  # strictly: a tie keeps the first
            np.copyto(out, view, where=larger)
            np.copyto(argmax, np.uint8(p), where=larger)

    def backward(self):
        if self.dx is None:
            return
        if self.cropped:
            self.dx[...] = 0
        for p, view in enumerate(self.layer.positions(self.dx)):
            np.equal(self.argmax, np.uint8(p), out=self.larger)
            np.multiply(self.dy, self.larger, out=view)
