"""Optimizers: each takes a layer's gradient in factored form and updates its weights in place.

The contract is one method, ``update(i, W, b, inputs, delta, learning_rate)``: layer ``i`` with
weights W (fan_in, fan_out) and bias b (fan_out,) saw ``inputs`` (batch, fan_in) and got back
``delta`` = dLoss/dz (batch, fan_out), so its gradient is dW = inputs.T @ delta, db = delta.sum(0).
Handing over the factors instead of dW lets plain SGD fold the whole update into one BLAS call.
``state()``/``load_state()`` give the optimizer's arrays for checkpoints. Look up by name in
``OPTIMIZERS``; weight decay is L2: it adds ``weight_decay * W`` to dW (never to biases).
"""

import numpy as np

from .blas import add_outer, axpy


class Sgd:
    """Mini-batch gradient descent, optionally with (Nesterov) momentum.

    With momentum mu the velocity is v = mu * v - lr * g and W += v; Nesterov's form applies
    W += mu * v - lr * g instead (Sutskever et al., 2013).
    """

    name = "sgd"

    def __init__(self, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.velocity = {}

    def update(self, i, W, b, inputs, delta, learning_rate):
        lr = float(learning_rate)
        db = delta.sum(axis=0)
        if self.momentum == 0:
            # W = (1 - lr * wd) * W - lr * inputs.T @ delta: decay and step in a single gemm.
            add_outer(W, -lr, inputs, delta, 1.0 - lr * self.weight_decay)
            b -= lr * db
            return
        mu = self.momentum
        if i not in self.velocity:
            self.velocity[i] = (np.zeros_like(W), np.zeros_like(b))
        vW, vb = self.velocity[i]
        # Nesterov without decay: W += mu * v_new - lr * g equals W += (1 + mu) * v_new - mu * v_old,
        # two passes over W instead of a second gradient product (a quarter of a batch-64 step).
        fast_nesterov = self.nesterov and not self.weight_decay
        if fast_nesterov:
            axpy(W, -mu, vW)
        add_outer(vW, -lr, inputs, delta, mu)  # vW = mu * vW - lr * g
        if self.weight_decay:
            vW -= (lr * self.weight_decay) * W  # the L2 part of the gradient
        vb *= mu
        vb -= lr * db
        if fast_nesterov:
            axpy(W, 1.0 + mu, vW)
            b += mu * vb
            b -= lr * db
        elif self.nesterov:  # W += mu * v_new - lr * (g + wd * W)
            add_outer(W, -lr, inputs, delta, 1.0 - lr * self.weight_decay)
            axpy(W, mu, vW)
            b += mu * vb
            b -= lr * db
        else:
            axpy(W, 1.0, vW)
            b += vb

    def state(self):
        return {f"{kind}.{i}": arr for i, (vW, vb) in self.velocity.items()
                for kind, arr in (("vW", vW), ("vb", vb))}

    def load_state(self, arrays):
        for key, arr in arrays.items():
            kind, i = key.split(".")
            i = int(i)
            if i not in self.velocity:
                self.velocity[i] = (None, None)
            vW, vb = self.velocity[i]
            self.velocity[i] = (arr, vb) if kind == "vW" else (vW, arr)


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction; weight decay is plain L2 on the gradient."""

    name = "adam"

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.weight_decay = float(weight_decay)
        self.moments = {}
        self.steps = {}

    def update(self, i, W, b, inputs, delta, learning_rate):
        if i not in self.moments:
            self.moments[i] = [np.zeros_like(W), np.zeros_like(W), np.zeros_like(b), np.zeros_like(b)]
            self.steps[i] = 0
        self.steps[i] += 1
        t = self.steps[i]
        gW = inputs.T @ delta
        if self.weight_decay:
            gW += self.weight_decay * W
        gb = delta.sum(axis=0)
        mW, vW, mb, vb = self.moments[i]
        lr_t = learning_rate * np.sqrt(1 - self.beta2 ** t) / (1 - self.beta1 ** t)
        eps_t = self.eps * np.sqrt(1 - self.beta2 ** t)  # eps of the uncorrected form, rescaled
        for param, g, m, v in ((W, gW, mW, vW), (b, gb, mb, vb)):
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            g *= g
            v += (1 - self.beta2) * g
            denom = np.sqrt(v)
            denom += eps_t
            np.divide(m, denom, out=denom)
            denom *= lr_t
            param -= denom

    def state(self):
        arrays = {f"{name}.{i}": arr for i, ms in self.moments.items()
                  for name, arr in zip(("mW", "vW", "mb", "vb"), ms)}
        arrays.update({f"step.{i}": np.array([t], dtype=np.int64) for i, t in self.steps.items()})
        return arrays

    def load_state(self, arrays):
        names = ("mW", "vW", "mb", "vb")
        for key, arr in arrays.items():
            name, i = key.split(".")
            i = int(i)
            if name == "step":
                self.steps[i] = int(arr[0])
            else:
                self.moments.setdefault(i, [None] * 4)[names.index(name)] = arr


OPTIMIZERS = {"sgd": Sgd, "adam": Adam}
