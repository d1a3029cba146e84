"""Hidden-layer activations: each is a small object with ``forward`` and ``backward``.

``forward(z)`` overwrites the pre-activation ``z`` (batch, width) with the activation and returns it;
``backward(a, grad)`` turns dLoss/da into dLoss/dz in place, using only the activation ``a``, so the
network never needs to keep ``z``. Look activations up by name in ``ACTIVATIONS``.
"""

import numpy as np
from scipy.special import expit


class Relu:
    name = "relu"

    def forward(self, z):
        return np.maximum(z, 0, out=z)

    def backward(self, a, grad):
        return np.multiply(grad, a > 0, out=grad)


class LeakyRelu:
    name = "leaky_relu"

    def __init__(self, slope=0.01):
        self.slope = slope

    def forward(self, z):
        # max(z, slope * z) is z for z > 0 and slope * z below, for 0 < slope < 1.
        return np.maximum(z, z * np.float32(self.slope), out=z)

    def backward(self, a, grad):
        scale = np.where(a > 0, np.float32(1), np.float32(self.slope))
        return np.multiply(grad, scale, out=grad)


class Sigmoid:
    name = "sigmoid"

    def forward(self, z):
        return expit(z, out=z)  # expit never overflows, unlike 1 / (1 + exp(-z))

    def backward(self, a, grad):
        return np.multiply(grad, a * (1 - a), out=grad)


class Tanh:
    name = "tanh"

    def forward(self, z):
        return np.tanh(z, out=z)

    def backward(self, a, grad):
        return np.multiply(grad, 1 - a * a, out=grad)


ACTIVATIONS = {cls.name: cls() for cls in (Relu, LeakyRelu, Sigmoid, Tanh)}
