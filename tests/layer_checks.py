"""Shared by the layer tests: a stand-in for the spec a layer is built from, and the check of a
layer's training step against central differences in float64.

The check runs a step as the network does (``plan``, ``bind`` to the layer above, ``forward``,
``backward``) under a stand-in layer above whose ``dx`` holds ``upstream``: the step's ``dx`` must be
d(sum(out * upstream))/dx and each parameter's gradient that divided by the batch (the network's
convention: the loss's gradient comes times the batch size; see nn/layer.py).
"""

from types import SimpleNamespace

import numpy as np


def spec(in_shape, out_shape, **options):
    """What the layer classes read of an ``arch.Layer``."""
    return SimpleNamespace(in_shape=tuple(in_shape), out_shape=tuple(out_shape), options=options)


def layout(shape):
    """The NHWC order of a logical (C, h, w) shape; flat shapes unchanged."""
    return (*shape[1:], shape[0]) if len(shape) == 3 else tuple(shape)


def numerical_grad(f, x, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of x (float64, in place)."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        up = f()
        x[idx] = old - eps
        down = f()
        x[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


class Above:
    """The layer above: receives the output in ``x``; ``dx`` is dLoss/doutput."""

    def __init__(self, batch, shape):
        self.x = np.full((batch, *layout(shape)), np.nan)
        self.dx = np.zeros((batch, *layout(shape)))


def training_step(layer, batch, seed=5):
    """(run, step, above): ``run(x)`` puts x (NHWC) into the step and runs its forward pass, the
    dropout masks drawn from a fresh generator of ``seed`` each time; returns the output."""
    step = layer.plan(batch, True)
    above = Above(batch, layer.spec.out_shape)
    step.bind(above)

    def run(x):
        step.x[...] = x
        step.forward(np.random.default_rng(seed))
        return above.x

    return run, step, above


def check_layer_gradients(layer, x, rng, rtol=1e-6, atol=1e-8):
    """Assert the step's input gradient and every parameter's gradient against finite differences;
    returns the keys of the parameters checked."""
    run, step, above = training_step(layer, len(x))
    upstream = rng.standard_normal(above.x.shape)

    def loss():
        return float((run(x) * upstream).sum())

    run(x)
    above.dx[...] = upstream
    step.backward()
    np.testing.assert_allclose(step.dx, numerical_grad(loss, x), rtol=rtol, atol=atol, err_msg="input")
    for param in step.parameters:
        expected = numerical_grad(loss, param.value) / len(x)
        run(x)
        above.dx[...] = upstream
        step.backward()
        np.testing.assert_allclose(param.gradient.value(), expected, rtol=rtol, atol=atol, err_msg=param.key)
    return [param.key for param in step.parameters]
