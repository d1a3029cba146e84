"""Inverted dropout: in training each unit is kept with probability 1 - rate and scaled by
1 / (1 - rate), so inference is the identity. Works on any shape (NHWC maps: per unit, not per
channel). The mask is drawn from the generator the network passes in, so a seed repeats a run.
"""

import numpy as np


class Dropout:
    kind = "dropout"

    def __init__(self, in_shape, rate, dtype=np.float32):
        if not 0 <= rate < 1:
            raise ValueError(f"dropout: rate {rate}: must be in [0, 1)")
        self.in_shape = self.out_shape = tuple(int(v) for v in in_shape)
        self.rate, self.dtype = float(rate), np.dtype(dtype)
        self.params, self.grads, self.decay, self.state = {}, {}, (), {}
        self._plans = {}

    def plan(self, batch):
        if batch not in self._plans:
            shape = (batch, *self.in_shape)
            self._plans[batch] = tuple(np.empty(shape, self.dtype) for _ in range(3))  # mask, out, dx
        return self._plans[batch]

    def forward(self, x, training=True, rng=None):
        if not training or self.rate == 0:
            self.mask = None
            return x
        mask, out, _ = self.plan(len(x))
        keep = 1.0 - self.rate
        drawn = rng.random(mask.shape, dtype=np.float32) < keep
        np.multiply(drawn, self.dtype.type(1 / keep), out=mask)
        np.multiply(x, mask, out=out)
        self.mask = mask
        return out

    def backward(self, dy, input_gradient=True):
        if not input_gradient:
            return None
        if self.mask is None:
            return dy
        mask, _, dx = self.plan(len(dy))
        return np.multiply(dy, mask, out=dx)
