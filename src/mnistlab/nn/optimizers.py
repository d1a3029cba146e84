"""Optimizers: each updates a layer's parameters in place from its gradient in factored form.

The contract is one method, ``update(param, learning_rate)``: ``param`` is a ``layer.Parameter``, an
array updated in place with its gradient object. Dense (dense.py) hands over ``P = [W; b]`` with a
``LayerGradient``: dP = scale * inputs.T @ delta, where inputs (batch, fan_in + 1) ends in a column of
ones, so its last row is the bias gradient; the factors instead of dP let SGD fold the whole update
into one BLAS call. ``state()``/``load_state()`` give the optimizer's arrays for checkpoints, named by
the tensors they belong to. Look up by name in ``OPTIMIZERS``; weight decay is L2: it adds
``weight_decay * W`` to the gradient of the part of each parameter that ``param.decay`` names (weights,
by rule: never biases or norm parameters).
"""

import numpy as np

from .blas import Axpy, Gemm
from .streams import SERIAL, StreamProduct


class LayerGradient:
    """The gradient ``dP = scale * inputs.T @ delta`` of one layer's parameters, never formed unless
    asked for: ``add_to`` folds it into an update of another array in one gemm. With two ``streams``
    (streams.py) each product is split by its output rows, one half a stream: every element is still
    one dot product over the whole batch."""

    def __init__(self, inputs, delta, scale=1.0, streams=SERIAL):
        self.inputs, self.delta, self.scale = inputs, delta, float(scale)
        self.streams = streams
        self._products = {}  # (id of target, split) -> bound Gemms; they keep the target alive
        self._target = self._split = self._bound = None  # the last target's products

    def _products_for(self, target, split):
        """The bound products of add_to for ``target``: (weights' rows or all, the bias row or None).
        One stream: Gemms, as ever (an MLP's update is a few microseconds of Python: nothing more
        here); two: StreamProducts, each stream its rows of the target."""
        inputs, delta, streams = self.inputs, self.delta, self.streams
        if streams.count == 1:
            return ((Gemm(target[:-1], inputs[:, :-1].T, delta), Gemm(target[-1:], inputs[:, -1:].T, delta))
                    if split else (Gemm(target, inputs.T, delta), None))
        rows = target[:-1] if split else target
        return (StreamProduct(streams, rows, inputs[:, :len(rows)].T, delta, streams.parts(len(rows))),
                StreamProduct(streams, target[-1:], inputs[:, -1:].T, delta, [(0, 1)]) if split else None)

    def add_to(self, target, alpha, beta=1.0, undecayed_beta=None):
        """target = beta * target + alpha * dP, in place; the bias row scaled by ``undecayed_beta`` if
        given (weight decay shrinks weights, never biases): two products instead of one."""
        split = undecayed_beta is not None and undecayed_beta != beta
        if target is not self._target or split is not self._split:  # else: as last time
            key = (id(target), split)
            if key not in self._products:
                self._products[key] = self._products_for(target, split)
            self._target, self._split, self._bound = target, split, self._products[key]
        weights, bias = self._bound
        if self.streams.count == 1:
            weights(alpha * self.scale, beta)
            if split:
                bias(alpha * self.scale, undecayed_beta)
            return
        a = alpha * self.scale
        self.streams.stages(weights.stage(a, beta))
        if split:  # the bias row: one product, here
            bias.run_part(0, a, undecayed_beta) if bias.split else bias.whole(a, undecayed_beta)

    def value(self):
        """dP as a new array."""
        out = np.empty((self.inputs.shape[1], self.delta.shape[1]), self.delta.dtype)
        if self.streams.count == 1:
            Gemm(out, self.inputs.T, self.delta)(self.scale)
        else:
            product = StreamProduct(self.streams, out, self.inputs.T, self.delta, self.streams.parts(len(out)))
            self.streams.stages(product.stage(self.scale))
        return out


class _State:
    """An optimizer's per-parameter arrays, keyed by Parameter.key, and their names in checkpoints:
    ``{kind}.{tensor}`` (``v.dense.0.weight``: the velocity of that tensor; a packed parameter's state
    is split by its ``parts``). Loaded arrays wait until their parameter is first updated."""

    def __init__(self, kinds):
        self.kinds = kinds
        self.arrays = {}  # key -> {kind: array shaped like the parameter}
        self.parts = {}  # key -> Parameter.parts
        self.loaded = {}  # "{kind}.{tensor}" -> array, not yet claimed by a parameter

    def get(self, param):
        arrays = self.arrays.get(param.key)
        if arrays is None:
            arrays = self.arrays[param.key] = {kind: np.zeros_like(param.value) for kind in self.kinds}
            self.parts[param.key] = param.parts
            for kind, array in arrays.items():
                for tensor, index in param.parts.items():
                    saved = self.loaded.pop(f"{kind}.{tensor}", None)
                    if saved is not None:
                        array[index] = saved
        return arrays

    def named(self):
        out = {f"{kind}.{tensor}": array[index] for key, arrays in self.arrays.items()
               for kind, array in arrays.items() for tensor, index in self.parts[key].items()}
        return {**self.loaded, **out}


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
        self.velocity = _State(("v",))
        self._axpy = {}

    def update(self, param, learning_rate):
        lr, wd, mu = float(learning_rate), self.weight_decay, self.momentum
        keep = 1.0 - lr * wd  # L2 decay of the weights, not the bias
        P, grad = param.value, param.gradient
        if mu == 0:
            grad.add_to(P, -lr, keep, undecayed_beta=1.0)  # P = keep * P - lr * g: one gemm
            return
        bound = self._axpy.get(param.key)
        if bound is None or bound[0] is not P:  # bound once per parameter
            V = self.velocity.get(param)["v"]
            decayed = param.decayed(V)
            bound = self._axpy[param.key] = (P, V, Axpy(P, V), decayed if decayed is None
                                             else Axpy(decayed, param.decayed(P)))
        _, V, p_plus_v, v_plus_w = bound
        # Nesterov without decay: P += mu * v_new - lr * g equals P += (1 + mu) * v_new - mu * v_old,
        # two passes over P instead of a second gradient product (a quarter of a batch-64 step).
        fast_nesterov = self.nesterov and not wd
        if fast_nesterov:
            p_plus_v(-mu)
        grad.add_to(V, -lr, mu)  # V = mu * V - lr * g
        if wd and v_plus_w is not None:
            v_plus_w(-lr * wd)  # the L2 part of the weights' gradient
        if fast_nesterov:
            p_plus_v(1.0 + mu)
        elif self.nesterov:  # P += mu * v_new - lr * (g + wd * W)
            grad.add_to(P, -lr, keep, undecayed_beta=1.0)
            p_plus_v(mu)
        else:
            p_plus_v(1.0)

    def state(self):
        return self.velocity.named()

    def load_state(self, arrays):
        self.velocity.loaded.update(arrays)


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction; weight decay is plain L2 on the gradient."""

    name = "adam"

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.weight_decay = float(weight_decay)
        self.moments = _State(("m", "v"))
        self.steps = {}  # Parameter.key -> updates so far

    def update(self, param, learning_rate):
        P, key = param.value, param.key
        moments = self.moments.get(param)
        self.steps[key] = self.steps.get(key, 0) + 1
        t = self.steps[key]
        g = param.gradient.value()
        if self.weight_decay and param.decay is not None:
            g[param.decay] += self.weight_decay * P[param.decay]
        m, v = moments["m"], moments["v"]
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
        arrays = self.moments.named()
        arrays.update({f"step.{key}": np.array([t], dtype=np.int64) for key, t in self.steps.items()})
        return arrays

    def load_state(self, arrays):
        for name, arr in arrays.items():
            if name.startswith("step."):
                self.steps[name.removeprefix("step.")] = int(arr[0])
            else:
                self.moments.loaded[name] = arr


OPTIMIZERS = {"sgd": Sgd, "adam": Adam}
