"""Global average pooling: the mean of each channel over the whole map, (batch, h, w, C) -> (batch, C),
as the last feature layer of all-convolutional networks."""

import numpy as np


class GlobalAvgPool:
    kind = "gap"

    def __init__(self, in_shape, dtype=np.float32):
        h, w, c = (int(v) for v in in_shape)
        self.in_shape, self.out_shape, self.dtype = (h, w, c), (c,), np.dtype(dtype)
        self.params, self.grads, self.decay, self.state = {}, {}, (), {}
        self._plans = {}

    def plan(self, batch):
        if batch not in self._plans:
            self._plans[batch] = (np.empty((batch, *self.out_shape), self.dtype),
                                  np.empty((batch, *self.in_shape), self.dtype))
        return self._plans[batch]

    def forward(self, x, training=True):
        out, _ = self.plan(len(x))
        h, w, c = self.in_shape
        return np.mean(x.reshape(len(x), h * w, c), axis=1, out=out)

    def backward(self, dy, input_gradient=True):
        if not input_gradient:
            return None
        _, dx = self.plan(len(dy))
        h, w, _ = self.in_shape
        np.multiply(dy[:, None, None, :], self.dtype.type(1 / (h * w)), out=dx)
        return dx
