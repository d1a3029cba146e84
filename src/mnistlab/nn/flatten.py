"""Flatten (token ``flatten``): (C, h, w) images to rows of h*w*C values in NHWC order, pixel by pixel
with each pixel's channels together (see conv2d.py; PyTorch's NCHW flattens channel by channel, so
weights moved between the two are permuted)."""

import math

import numpy as np

from .conv2d import nhwc
from .streams import SERIAL


class Flatten:
    kind = "flatten"

    def __init__(self, spec, dtype=np.float32):
        self.spec, self.name = spec, self.kind
        self.dtype = np.dtype(dtype)
        self.params, self.state = {}, {}

    def initialize(self, init, rng):
        pass

    def forward(self, x):
        """Inference: x (n, *in_shape) -> (n, features), a view when x is contiguous."""
        return np.asarray(x, self.dtype).reshape(len(x), -1)

    def plan(self, batch, input_grad, streams=SERIAL):
        return FlattenStep(self, batch, input_grad, streams)


class FlattenStep:
    """Copies in both directions (the layers on either side own their buffers); a few hundred
    kilobytes a step, each of ``streams`` (streams.py) its own images."""

    def __init__(self, layer, batch, input_grad, streams=SERIAL):
        self.layer, self.batch = layer, batch
        self.streams, self.images = streams, streams.parts(batch)
        shape = nhwc(np.empty((batch, math.prod(layer.spec.in_shape)), layer.dtype), batch,
                     layer.spec.in_shape).shape
        self.x = np.empty(shape, layer.dtype)
        self.dx = np.empty(shape, layer.dtype) if input_grad else None
        self.parameters = []

    def bind(self, above):
        self.out = nhwc(above.x, self.batch, self.layer.spec.out_shape)  # (batch, features): views
        self.dy = nhwc(above.dx, self.batch, self.layer.spec.out_shape)

    def forward(self, rng):
        self.streams.run(self._forward)

    def _forward(self, part):
        first, end = self.images[part]
        np.copyto(self.out[first:end], self.x[first:end].reshape(end - first, -1))

    def backward(self):
        if self.dx is not None:
            self.streams.run(self._backward)

    def _backward(self, part):
        first, end = self.images[part]
        np.copyto(self.dx[first:end].reshape(end - first, -1), self.dy[first:end])
