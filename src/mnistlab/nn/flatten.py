"""Flatten (token ``flatten``): (C, h, w) images to rows of h*w*C values in NHWC order, pixel by pixel
with each pixel's channels together (see conv2d.py; PyTorch's NCHW flattens channel by channel, so
weights moved between the two are permuted)."""

import math

import numpy as np

from .conv2d import nhwc


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

    def plan(self, batch, input_grad):
        return FlattenStep(self, batch, input_grad)


class FlattenStep:
    """Copies in both directions (the layers on either side own their buffers); a few hundred
    kilobytes a step."""

    def __init__(self, layer, batch, input_grad):
        self.layer, self.batch = layer, batch
        shape = nhwc(np.empty((batch, math.prod(layer.spec.in_shape)), layer.dtype), batch,
                     layer.spec.in_shape).shape
        self.x = np.empty(shape, layer.dtype)
        self.dx = np.empty(shape, layer.dtype) if input_grad else None
        self.parameters = []

    def bind(self, above):
        self.out = nhwc(above.x, self.batch, self.layer.spec.out_shape)  # (batch, features): views
        self.dy = nhwc(above.dx, self.batch, self.layer.spec.out_shape)

    def forward(self, rng):
        np.copyto(self.out, self.x.reshape(self.batch, -1))

    def backward(self):
        if self.dx is not None:
            np.copyto(self.dx.reshape(self.batch, -1), self.dy)
