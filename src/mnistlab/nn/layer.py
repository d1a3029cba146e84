"""The layer protocol: what every layer of a Network is, and the records it hands to the optimizers.

A layer type is one class in its own file in ``nn/`` (``dense.py``: ``Dense``), named by one token of
the architecture grammar (``arch.TOKENS``: ``Token("fc", ..., "mnistlab.nn.dense:Dense", ...)``). The
network builds it from the resolved spec and never looks inside it. A layer class:

- ``__init__(self, spec, dtype=np.float32)``: ``spec`` is an ``arch.Layer``: ``in_shape``/``out_shape``
  (excluding the batch), ``options`` (the token's values: ``units``, ``kernel``...; ``activation``, a
  name in ``ACTIVATIONS`` or None, when the hidden activation follows this layer; ``dropout`` where
  the run's dropout applies), ``parameters`` and ``state`` ({name: shape}). It allocates
  ``self.params`` and ``self.state`` with exactly those names and shapes (zeros) and keeps
  ``self.spec``.
- ``params``: {name: array}, the trained parameters (``"weight"``, ``"bias"``, ``"gamma"``...). They
  are views the layer may pack into larger arrays for speed (Dense keeps ``[W; b]`` in one); writing
  into them (``[...] =``) sets the parameter. Files name them ``{kind}.{position}.{name}``.
- ``state``: {name: array} of arrays saved with the model but not trained (batch norm's running
  ``mean``/``var``); {} for most layers. Saved, restored and copied with the best weights like params.
- ``initialize(self, init, rng)``: draw the initial parameters from ``rng`` (an ``np.random.Generator``)
  with ``INITIALIZERS[init]`` (weights only, each a plain ``(shape, rng) -> array``; biases stay 0,
  norm scales start at 1). Draw in a fixed order: a seed must give the same network every time.
- ``forward(self, x)``: inference. ``x`` (n, *in_shape) -> a new array (n, *out_shape), the
  activation applied when ``options["activation"]`` is set; no dropout, batch norm on its running
  statistics. The network's ``logits`` is this, layer after layer, in chunks of bounded size.
- ``plan(self, batch, input_grad)``: a step object for training at one batch size, made once and
  reused by every step of that size, so buffers and bound products are set up once.
  ``input_grad``: whether the layer below needs dLoss/dinput (False for the first layer: skip it).
  Optionally ``plan(self, batch, input_grad, streams=SERIAL)``: a CNN's step then runs as two streams
  (streams.py) when BLAS has two threads: the step splits its row-independent work with
  ``streams.run``/``streams.stages`` and its products with ``StreamProduct``, so that the result is
  bit for bit the one-stream step's. A network with a layer whose ``plan`` takes no ``streams`` runs
  as one stream.

A step (whatever ``plan`` returns) has:

- ``x``: an array (batch, *in_shape) the layer below writes its output into (the network copies the
  images into the first layer's), and ``dx``: an array of the same shape it writes dLoss/dx into
  during ``backward`` (None when ``input_grad`` is False). The step owns both, so a layer may give
  them a layout it needs (Dense's input ends in a column of ones; ``x`` is then a view of it).
- ``bind(self, above)``: called once, bottom to top, with the step above (or the loss's, whose ``x``
  receives the logits and whose ``dx`` holds dLoss/dlogits). The layer writes its output into
  ``above.x`` and reads dLoss/doutput from ``above.dx``, which it may overwrite. A layer may look at the
  type of ``above`` to skip a copy (Dense writing its activation straight into the next Dense's ones-
  augmented input), but only for types in its own file.
- ``forward(self, rng)``: training forward pass from ``x`` into ``above.x`` (dropout masks and batch
  statistics drawn here; ``rng`` is the trainer's generator, drawn in layer order).
- ``backward(self)``: from ``above.dx`` compute the gradients of ``parameters`` and, if asked, ``dx``;
  run before the layer's parameters are updated (so ``dx`` uses the weights of the forward pass).
- ``parameters``: a list of ``Parameter`` records, one per array the optimizer updates in place.

Scale: ``dx`` and ``above.dx`` hold the gradient of the batch's *summed* loss (the loss's own
``softmax - onehot``, no 1/batch), which keeps small numbers out of float32; the gradients a layer
hands the optimizer (``Parameter.gradient``) are of the *mean* loss, so a layer applies 1/batch there
(Dense folds it into the gemm's alpha). Batch statistics (batch norm) use the batch the step was
planned for; the epoch's last, shorter batch gets its own plan.

Weight decay is by rule, not by position: parameters named in ``DECAYED`` (``"weight"``) are shrunk,
everything else (biases, batch norm's gamma and beta) is not. A ``Parameter`` that packs several named
parameters (Dense's ``[W; b]``) says which part is which with ``parts``, and which rows decay with
``decay``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .blas import Axpy

DECAYED = ("weight",)  # parameter names weight decay applies to; never biases or norm parameters


@dataclass(frozen=True)
class Parameter:
    """One array an optimizer updates in place, with its gradient.

    ``key``: unique within the network (``"dense.0"``, ``"conv.1.weight"``), keys the optimizer's
    state. ``value``: the array. ``gradient``: an object with ``value()`` (dLoss/dvalue, a new array)
    and ``add_to(target, alpha, beta=1.0, undecayed_beta=None)`` (target = beta * target + alpha * grad,
    the rows outside ``decay`` scaled by ``undecayed_beta`` instead if given). ``parts``: {parameter
    tensor name: index into value} (Dense: {"dense.0.weight": slice(0, -1), "dense.0.bias": -1}), naming
    the optimizer's state in checkpoints (``v.dense.0.weight``). ``decay``: the index of the part weight
    decay applies to (None: none of it). ``views``: where a part is laid out in ``value`` other than as
    its tensor (a conv's weight rows are (ky, kx, channel), its tensor (filters, channels, ky, kx)), a
    function from an array laid out like value to {name after ``key``: view shaped like that tensor}.
    """

    key: str
    value: np.ndarray
    gradient: object
    parts: dict
    decay: object = None
    views: object = None

    def tensors(self, array):
        """``array``, laid out like value (its gradient, say), as {tensor name: part shaped like it}."""
        if self.views is None:
            return {name: array[index] for name, index in self.parts.items()}
        return {f"{self.key}.{name}": view for name, view in self.views(array).items()}

    def decayed(self, array):
        """The part of ``array`` (shaped like value) that weight decay applies to, or None."""
        return None if self.decay is None else array[self.decay]


def simple_parameters(layer, prefix, gradients):
    """Parameter records for a layer whose params are separate arrays with dense gradients:
    ``gradients`` {name: array}, written by the layer's backward before each update."""
    return [Parameter(f"{prefix}.{name}", value, ArrayGradient(gradients[name], name in DECAYED),
                      {f"{prefix}.{name}": slice(None)}, slice(None) if name in DECAYED else None)
            for name, value in layer.params.items()]


class ArrayGradient:
    """A gradient held as a plain array (scale applied by the layer), for layers without a factored form."""

    def __init__(self, array, decayed):
        self.array, self.decayed = array, decayed
        self._axpy = {}

    def value(self):
        return self.array.copy()

    def add_to(self, target, alpha, beta=1.0, undecayed_beta=None):
        """target = beta * target + alpha * gradient (``undecayed_beta`` instead of beta for a parameter
        weight decay does not apply to)."""
        if not self.decayed and undecayed_beta is not None:
            beta = undecayed_beta
        if beta != 1.0:
            target *= beta
        key = id(target)
        if key not in self._axpy:
            self._axpy[key] = Axpy(target, self.array)
        self._axpy[key](alpha)


class LossHead:
    """The top of a training step: ``x`` receives the logits (batch, classes) and ``dx`` is the same
    array, which the fused softmax cross-entropy overwrites with dLoss/dlogits (times the batch size)."""

    def __init__(self, batch, classes, dtype):
        self.x = self.dx = np.empty((batch, classes), dtype)


def build_layer(spec, dtype=np.float32):
    """The layer object for one ``arch.Layer``: the class its token names, imported on first use.
    ArchError (one line) for a token whose class is not written yet."""
    import importlib

    module_name, _, class_name = spec.token.layer.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        from ..arch import ArchError

        raise ArchError(f"arch: {spec.text!r}: this layer type is not implemented yet "
                        f"({spec.token.layer} does not exist)") from None
    return getattr(module, class_name)(spec, dtype)
