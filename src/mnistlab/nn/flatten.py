"""Flatten: (batch, h, w, C) -> (batch, h*w*C), a view (no copy), in NHWC order: a dense layer after
it sees pixel by pixel, each pixel's channels together (PyTorch's NCHW flattens channel by channel,
so weights moved between the two are permuted)."""

import numpy as np


class Flatten:
    kind = "flatten"

    def __init__(self, in_shape, dtype=np.float32):
        self.in_shape = tuple(int(v) for v in in_shape)
        self.out_shape = (int(np.prod(self.in_shape)),)
        self.dtype = np.dtype(dtype)
        self.params, self.grads, self.decay, self.state = {}, {}, (), {}

    def plan(self, batch):
        return None

    def forward(self, x, training=True):
        return x.reshape(len(x), *self.out_shape)

    def backward(self, dy, input_gradient=True):
        return dy.reshape(len(dy), *self.in_shape) if input_gradient else None
