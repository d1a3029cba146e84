"""Weight initializers: plain functions ``(shape, rng) -> float32 array`` for a weight tensor.

A dense weight is (fan_in, fan_out); a convolution's (out_channels, in_channels, kh, kw) has fan_in
in_channels * kh * kw and fan_out out_channels * kh * kw (``fans``).

- ``zero``:   W = 0. Every hidden unit computes the same thing, so they never become different.
- ``random``: W ~ U[0, 1), the naive choice; activations grow by about fan_in / 2 per layer.
- ``he``:     W ~ N(0, 2 / fan_in), which keeps the variance of ReLU activations constant with depth
              (He et al., 2015).
- ``xavier``: W ~ N(0, 2 / (fan_in + fan_out)), the Glorot & Bengio (2010) balance of the forward and
              backward variance, suited to tanh and sigmoid.
- ``he_report``, ``xavier_report``: the formulas of the study this project grew from, which put the
              factor 2 outside the square root: std = 2 / sqrt(fan_in) and 2 / sqrt(fan_in + fan_out),
              so each is sqrt(2) times the standard std. Shipped so its experiments can be repeated as run, beside the standard ones.

Biases always start at zero. Look initializers up by name in ``INITIALIZERS``.
"""

import math

import numpy as np


def fans(shape):
    """(fan_in, fan_out) of a weight tensor: a (fan_in, fan_out) matrix, or (out, in, *kernel)."""
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def zero(shape, rng):
    return np.zeros(shape, dtype=np.float32)


def random(shape, rng):
    return rng.random(shape, dtype=np.float32)


def he(shape, rng):
    fan_in = fans(shape)[0]
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in)))


def xavier(shape, rng):
    fan_in, fan_out = fans(shape)
    std = np.sqrt(2.0 / (fan_in + fan_out))
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)


def he_report(shape, rng):
    fan_in = fans(shape)[0]
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(2.0 / np.sqrt(fan_in))


def xavier_report(shape, rng):
    fan_in, fan_out = fans(shape)
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(2.0 / np.sqrt(fan_in + fan_out))


INITIALIZERS = {f.__name__: f for f in (zero, random, he, xavier, he_report, xavier_report)}
