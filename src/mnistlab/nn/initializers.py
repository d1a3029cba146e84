"""Weight initializers: plain functions ``(shape, rng) -> float32 array`` for a (fan_in, fan_out) matrix.

- ``zero``:   W = 0. Every hidden unit computes the same thing, so they never become different.
- ``random``: W ~ U[0, 1), the naive choice; activations grow by about fan_in / 2 per layer.
- ``he``:     W ~ N(0, 2 / fan_in), which keeps the variance of ReLU activations constant with depth
              (He et al., 2015).
- ``xavier``: W ~ N(0, 2 / (fan_in + fan_out)), the Glorot & Bengio (2010) balance of the forward and
              backward variance, suited to tanh and sigmoid.

Biases always start at zero. Look initializers up by name in ``INITIALIZERS``.
"""

import numpy as np


def zero(shape, rng):
    return np.zeros(shape, dtype=np.float32)


def random(shape, rng):
    return rng.random(shape, dtype=np.float32)


def he(shape, rng):
    fan_in = shape[0]
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in)))


def xavier(shape, rng):
    fan_in, fan_out = shape
    std = np.sqrt(2.0 / (fan_in + fan_out))
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)


INITIALIZERS = {f.__name__: f for f in (zero, random, he, xavier)}
