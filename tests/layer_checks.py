"""Finite-difference checks shared by the layer tests: a layer's backward against central
differences of ``sum(forward(x) * upstream)`` in float64, for its input and every parameter."""

import numpy as np


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


def check_layer_gradients(layer, x, rng, forward=None, rtol=1e-6, atol=1e-8):
    """Assert that ``layer.backward`` gives dLoss/dx and fills ``layer.grads`` with dLoss/dparam for
    loss = sum(forward(x) * upstream); ``forward(x)`` defaults to ``layer.forward(x, training=True)``.
    Returns the names of the parameters checked."""
    forward = forward or (lambda a: layer.forward(a, training=True))
    upstream = rng.standard_normal((len(x), *layer.out_shape))

    def loss():
        return float((forward(x) * upstream).sum())

    forward(x)
    dx = layer.backward(upstream.copy()).copy()
    grads = {name: g.copy() for name, g in layer.grads.items()}
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=rtol, atol=atol, err_msg="input")
    for name, param in layer.params.items():
        np.testing.assert_allclose(grads[name], numerical_grad(loss, param), rtol=rtol, atol=atol,
                                   err_msg=name)
    return sorted(layer.params)
