"""Dropout (token ``dropP``): in training each value is zeroed with probability P and the kept ones
scaled by 1 / (1 - P) (inverted dropout), so inference is the identity. Works on any shape (NHWC
maps: per value, not per channel). The mask is drawn from the trainer's generator, in layer order,
so a seed repeats a run bit for bit.
"""

import numpy as np

from .conv2d import nhwc


class Dropout:
    kind = "dropout"

    def __init__(self, spec, dtype=np.float32):
        self.spec, self.name = spec, self.kind
        self.rate, self.dtype = float(spec.options["rate"]), np.dtype(dtype)
        if not 0 <= self.rate < 1:
            raise ValueError(f"dropout: rate {self.rate}: must be in [0, 1)")
        self.params, self.state = {}, {}

    def initialize(self, init, rng):
        pass

    def forward(self, x):
        """Inference: the identity (a new array)."""
        return np.array(x, self.dtype)

    def plan(self, batch, input_grad):
        return DropoutStep(self, batch, input_grad)


class DropoutStep:
    def __init__(self, layer, batch, input_grad):
        self.layer, self.batch = layer, batch
        shape = nhwc(np.empty((batch, *layer.spec.in_shape), layer.dtype), batch, layer.spec.in_shape).shape
        self.x = np.empty(shape, layer.dtype)
        self.mask = np.empty(shape, layer.dtype)
        self.dx = np.empty(shape, layer.dtype) if input_grad else None
        self.parameters = []

    def bind(self, above):
        self.out = nhwc(above.x, self.batch, self.layer.spec.out_shape)
        self.dy = nhwc(above.dx, self.batch, self.layer.spec.out_shape)

    def forward(self, rng):
        keep = 1.0 - self.layer.rate
        drawn = rng.random(self.mask.shape, dtype=np.float32) < keep
        np.multiply(drawn, self.layer.dtype.type(1 / keep), out=self.mask)
        np.multiply(self.x, self.mask, out=self.out)

    def backward(self):
        if self.dx is not None:
            np.multiply(self.dy, self.mask, out=self.dx)
