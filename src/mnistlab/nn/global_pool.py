"""Global average pooling (token ``gap``): each channel's mean over the whole map, (h, w, C) -> (C,),
the last feature layer of all-convolutional networks. NHWC images (see conv2d.py)."""

import numpy as np

from .conv2d import nhwc


class GlobalAvgPool:
    kind = "gap"

    def __init__(self, spec, dtype=np.float32):
        self.spec, self.name = spec, self.kind
        c, h, w = spec.in_shape
        self.in_hwc, self.dtype = (h, w, c), np.dtype(dtype)
        self.params, self.state = {}, {}

    def initialize(self, init, rng):
        pass

    def forward(self, x):
        """Inference: x (n, *in_shape) -> (n, C)."""
        x = nhwc(np.asarray(x, self.dtype), len(x), self.spec.in_shape)
        return x.mean(axis=(1, 2), dtype=self.dtype)

    def plan(self, batch, input_grad, streams=None):
        return GapStep(self, batch, input_grad)  # small work: one stream whatever ``streams``


class GapStep:
    def __init__(self, layer, batch, input_grad):
        self.layer, self.batch = layer, batch
        h, w, c = layer.in_hwc
        self.x = np.empty((batch, h, w, c), layer.dtype)
        self.dx = np.empty((batch, h, w, c), layer.dtype) if input_grad else None
        self.parameters = []

    def bind(self, above):
        self.out = nhwc(above.x, self.batch, self.layer.spec.out_shape)  # (batch, features): views
        self.dy = nhwc(above.dx, self.batch, self.layer.spec.out_shape)

    def forward(self, rng):
        h, w, c = self.layer.in_hwc
        np.mean(self.x.reshape(self.batch, h * w, c), axis=1, out=self.out)

    def backward(self):
        if self.dx is not None:
            h, w, _ = self.layer.in_hwc
            np.multiply(self.dy[:, None, None, :], self.layer.dtype.type(1 / (h * w)), out=self.dx)
