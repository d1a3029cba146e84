"""Optimizers: each updates a layer's parameters in place from its gradient in factored form.

The contract is one method, ``update(i, P, grad, learning_rate)``: layer ``i`` keeps its weights and
bias in one array ``P = [W; b]`` of shape (fan_in + 1, fan_out) (see network.py), and ``grad`` is a
``LayerGradient``: dP = scale * inputs.T @ delta, where inputs (batch, fan_in + 1) ends in a column
of ones, so its last row is the bias gradient. Handing over the factors instead of dP lets SGD fold
the whole update into one BLAS call. ``state()``/``load_state()`` give the optimizer's arrays for
checkpoints, split into weight and bias parts. Look up by name in ``OPTIMIZERS``; weight decay is
L2: it adds ``weight_decay * W`` to dW (never to biases).
"""

import numpy as np

from .blas import Axpy, Gemm


class LayerGradient:
    """The gradient ``dP = scale * inputs.T @ delta`` of one layer's parameters, never formed unless
    asked for: ``add_to`` folds it into an update of another array in one gemm."""

    def __init__(self, inputs, delta, scale=1.0):
        self.inputs, self.delta, self.scale = inputs, delta, float(scale)
        self._products = {}  # (id of target, split) -> bound Gemm(s); they keep the target alive
        self._target = self._split = self._bound = None  # the last target's products

    def add_to(self, target, alpha, beta=1.0, bias_beta=None):
        """target = beta * target + alpha * dP, in place; the bias row scaled by ``bias_beta`` if
        given (weight decay shrinks weights, never biases): two products instead of one."""
        split = bias_beta is not None and bias_beta != beta
        if target is not self._target or split is not self._split:  # else: as last time
            key = (id(target), split)
            if key not in self._products:
                self._products[key] = (
                    (Gemm(target[:-1], self.inputs[:, :-1].T, self.delta),
                     Gemm(target[-1:], self.inputs[:, -1:].T, self.delta)) if split
                    else (Gemm(target, self.inputs.T, self.delta), None))
            self._target, self._split, self._bound = target, split, self._products[key]
        weights, bias = self._bound
        weights(alpha * self.scale, beta)
        if split:
            bias(alpha * self.scale, bias_beta)

    def value(self):
        """dP as a new array."""
        out = np.empty((self.inputs.shape[1], self.delta.shape[1]), self.delta.dtype)
        Gemm(out, self.inputs.T, self.delta)(self.scale)
        return out


def _split(arrays, i):
    return {f"{kind}W.{i}": arr[:-1] for kind, arr in arrays.items()} | \
        {f"{kind}b.{i}": arr[-1] for kind, arr in arrays.items()}


def _join(arrays):
    """{(kind, i): array (fan_in + 1, fan_out)} from checkpoint keys like 'vW.0' and 'vb.0'."""
    parts = {}
    for key, arr in arrays.items():
        name, i = key.split(".")
        parts.setdefault((name[:-1], int(i)), {})[name[-1]] = arr
    return {key: np.vstack([p["W"], np.asarray(p["b"])[None]]) for key, p in parts.items()}


class Sgd:
    """Mini-batch gradient descent, optionally with (Nesterov) momentum.

    With momentum mu the velocity is v = mu * v - lr * g and P += v; Nesterov's form applies
    P += mu * v - lr * g instead (Sutskever et al., 2013).
    """

    name = "sgd"

    def __init__(self, momentum=0.9, nesterov=True, weight_decay=0.0):  # the defaults of RunConfig
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.velocity = {}
        self._axpy = {}

    def update(self, i, P, grad, learning_rate):
        lr, wd, mu = float(learning_rate), self.weight_decay, self.momentum
        keep = 1.0 - lr * wd  # L2 decay of the weights, not the bias
        if mu == 0:
            grad.add_to(P, -lr, keep, bias_beta=1.0)  # P = keep * P - lr * g: one gemm
            return
        if i not in self.velocity:
            self.velocity[i] = np.zeros_like(P)
        V = self.velocity[i]
        bound = self._axpy.get(i)
        if bound is None or bound[0].arrays[0] is not P or bound[0].arrays[1] is not V:
            bound = self._axpy[i] = (Axpy(P, V), Axpy(V[:-1], P[:-1]))  # bound once per array pair
        p_plus_v, v_plus_w = bound
        # Nesterov without decay: P += mu * v_new - lr * g equals P += (1 + mu) * v_new - mu * v_old,
        # two passes over P instead of a second gradient product (a quarter of a batch-64 step).
        fast_nesterov = self.nesterov and not wd
        if fast_nesterov:
            p_plus_v(-mu)
        grad.add_to(V, -lr, mu)  # V = mu * V - lr * g
        if wd:
            v_plus_w(-lr * wd)  # the L2 part of the weights' gradient
        if fast_nesterov:
            p_plus_v(1.0 + mu)
        elif self.nesterov:  # P += mu * v_new - lr * (g + wd * W)
            grad.add_to(P, -lr, keep, bias_beta=1.0)
            p_plus_v(mu)
        else:
            p_plus_v(1.0)

    def state(self):
        return {k: v for i, V in self.velocity.items() for k, v in _split({"v": V}, i).items()}

    def load_state(self, arrays):
        for (_, i), V in _join(arrays).items():
            self.velocity[i] = V


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction; weight decay is plain L2 on the gradient."""

    name = "adam"

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.weight_decay = float(weight_decay)
        self.moments = {}
        self.steps = {}

    def update(self, i, P, grad, learning_rate):
        if i not in self.moments:
            self.moments[i] = {"m": np.zeros_like(P), "v": np.zeros_like(P)}
            self.steps[i] = 0
        self.steps[i] += 1
        t = self.steps[i]
        g = grad.value()
        if self.weight_decay:
            g[:-1] += self.weight_decay * P[:-1]
        m, v = self.moments[i]["m"], self.moments[i]["v"]
        lr_t = learning_rate * np.sqrt(1 - self.beta2 ** t) / (1 - self.beta1 ** t)
        eps_t = self.eps * np.sqrt(1 - self.beta2 ** t)  # eps of the uncorrected form, rescaled
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        g *= g
        v += (1 - self.beta2) * g
        denom = np.sqrt(v)
        denom += eps_t
        np.divide(m, denom, out=denom)
        denom *= lr_t
        P -= denom

    def state(self):
        arrays = {k: a for i, ms in self.moments.items() for k, a in _split(ms, i).items()}
        arrays.update({f"step.{i}": np.array([t], dtype=np.int64) for i, t in self.steps.items()})
        return arrays

    def load_state(self, arrays):
        for key, arr in arrays.items():
            name, i = key.split(".")
            if name == "step":
                self.steps[int(i)] = int(arr[0])
        moments = _join({k: a for k, a in arrays.items() if not k.startswith("step.")})
        for (kind, i), arr in moments.items():
            self.moments.setdefault(i, {})[kind] = arr


OPTIMIZERS = {"sgd": Sgd, "adam": Adam}
