"""Hidden-layer activations: each is a small object with ``forward`` and ``backward``.

``forward(z)`` overwrites the pre-activation ``z`` (batch, width) with the activation and returns it;
``backward(a, grad)`` turns dLoss/da into dLoss/dz in place, using only the activation ``a``, so the
network never needs to keep ``z``. ``keeps_one`` says whether f(1) == 1: the network then runs the
activation over a buffer whose last column is the ones of the next layer's bias (network.py).
Look activations up by name in ``ACTIVATIONS``.
"""

import numpy as np
from scipy.special import expit

_ZERO = np.zeros((), np.float32)  # an array, not the Python 0: NumPy converts that on every call


class Relu:
    keeps_one = True
    name = "relu"

    def forward(self, z):
        return np.maximum(z, _ZERO, out=z)

    def backward(self, a, grad):
        # a = max(z, 0) >= 0, so sign(a) is exactly the 0/1 derivative; two plain float passes
        # cost half of ``grad * (a > 0)``, which goes through a bool array and a cast.
        return np.multiply(grad, np.sign(a), out=grad)


class LeakyRelu:
    keeps_one = True
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
    keeps_one = False
    name = "sigmoid"

    def forward(self, z):
        return expit(z, out=z)  # expit never overflows, unlike 1 / (1 + exp(-z))

    def backward(self, a, grad):
        return np.multiply(grad, a * (1 - a), out=grad)


class Tanh:
    keeps_one = False
    name = "tanh"

    def forward(self, z):
        return np.tanh(z, out=z)

    def backward(self, a, grad):
        return np.multiply(grad, 1 - a * a, out=grad)


ACTIVATIONS = {cls.name: cls() for cls in (Relu, LeakyRelu, Sigmoid, Tanh)}
