"""Max pooling over k x k windows of NHWC batches, stride k (the windows tile the image).

Forward keeps, per output, which of the k*k window positions held the maximum (the first one on a
tie, as PyTorch does), so backward routes each gradient to exactly one input; rows and columns past
the last whole window (an odd size) are dropped, as PyTorch's default does, and get gradient 0.
"""

import numpy as np


class MaxPool2d:
    kind = "pool"

    def __init__(self, in_shape, kernel=2, stride=None, dtype=np.float32):
        h, w, c = (int(v) for v in in_shape)
        stride = kernel if stride is None else stride
        if stride != kernel:
            raise ValueError(f"pool: stride {stride} != kernel {kernel}: only non-overlapping windows "
                             "(stride == kernel) are supported")
        if kernel < 1 or kernel > min(h, w):
            raise ValueError(f"pool: a {kernel}x{kernel} window does not fit a {h}x{w} input")
        self.kernel, self.dtype = int(kernel), np.dtype(dtype)
        self.in_shape, self.out_shape = (h, w, c), (h // kernel, w // kernel, c)
        self.params, self.grads, self.decay, self.state = {}, {}, (), {}
        self._plans = {}

    def plan(self, batch):
        if batch not in self._plans:
            self._plans[batch] = _PoolPlan(self, batch)
        return self._plans[batch]

    def _positions(self, x):
        """The k*k (batch, out_h, out_w, C) views of x, one per window position, row by row."""
        k, (out_h, out_w, _) = self.kernel, self.out_shape
        return [x[:, i:k * out_h:k, j:k * out_w:k] for i in range(k) for j in range(k)]

    def forward(self, x, training=True):
        plan = self.plan(len(x))
        first, *rest = self._positions(x)
        np.copyto(plan.out, first)
        if training:
            plan.argmax[...] = 0
        for p, view in enumerate(rest, 1):
            if training:
                np.greater(view, plan.out, out=plan.larger)
                np.copyto(plan.out, view, where=plan.larger)
                np.copyto(plan.argmax, np.uint8(p), where=plan.larger)
            else:
                np.maximum(plan.out, view, out=plan.out)
        return plan.out

    def backward(self, dy, input_gradient=True):
        if not input_gradient:
            return None
        plan = self.plan(len(dy))
        if plan.cropped:
            plan.dx[...] = 0
        for p, view in enumerate(self._positions(plan.dx)):
            np.equal(plan.argmax, np.uint8(p), out=plan.larger)
            np.multiply(dy, plan.larger, out=view)
        return plan.dx


class _PoolPlan:
    def __init__(self, layer, batch):
        shape = (batch, *layer.out_shape)
        self.out = np.empty(shape, layer.dtype)
        self.argmax = np.zeros(shape, np.uint8)
        self.larger = np.empty(shape, bool)
        self.dx = np.zeros((batch, *layer.in_shape), layer.dtype)
        h, w, _ = layer.in_shape
        self.cropped = h % layer.kernel or w % layer.kernel
