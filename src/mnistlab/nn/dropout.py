"""Dropout (token ``dropP``): in training each value is zeroed with probability P and the kept ones
scaled by 1 / (1 - P) (inverted dropout), so inference is the identity. Works on any shape (NHWC
maps: per value, not per channel). The mask is drawn from the trainer's generator, in layer order,
so a seed repeats a run bit for bit.
"""

import numpy as np

from .conv2d import nhwc
from .streams import SERIAL


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

    def plan(self, batch, input_grad, streams=SERIAL):
        return DropoutStep(self, batch, input_grad, streams)


class DropoutStep:
    """The mask is drawn whole (one draw from the generator, as ever); each of ``streams`` (streams.py)
    applies it to its own images."""

    def __init__(self, layer, batch, input_grad, streams=SERIAL):
        self.layer, self.batch = layer, batch
        self.streams, self.images = streams, streams.parts(batch)
        shape = nhwc(np.empty((batch, *layer.spec.in_shape), layer.dtype), batch, layer.spec.in_shape).shape
        self.x = np.empty(shape, layer.dtype)
        self.mask = np.empty(shape, layer.dtype)
        self.dx = np.empty(shape, layer.dtype) if input_grad else None
        self.parameters = []

    def bind(self, above):
        self.out = nhwc(above.x, self.batch, self.layer.spec.out_shape)
        self.dy = nhwc(above.dx, self.batch, self.layer.spec.out_shape)

    def forward(self, rng):
        drawn = rng.random(self.mask.shape, dtype=np.float32)  # a temporary, as the mask's comparison
        self.streams.run(lambda part: self._forward(part, drawn))

    def _forward(self, part, drawn):
        first, end = self.images[part]
        keep = 1.0 - self.layer.rate
        np.multiply(drawn[first:end] < keep, self.layer.dtype.type(1 / keep), out=self.mask[first:end])
        np.multiply(self.x[first:end], self.mask[first:end], out=self.out[first:end])

    def backward(self):
        if self.dx is not None:
            self.streams.run(self._backward)

    def _backward(self, part):
        first, end = self.images[part]
        np.multiply(self.dy[first:end], self.mask[first:end], out=self.dx[first:end])
