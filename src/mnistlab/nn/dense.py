"""The fully connected layer (token ``fcN``): ``x @ W + b``, then the hidden activation and dropout.

Weights are (fan_in, fan_out), so a batch flows as ``x @ W + b`` with x of shape (batch, fan_in); an
input of more dimensions (an image, a conv's output) is flattened first, which costs nothing. The
parameters ``weight`` and ``bias`` are views of one array ``P = [W; b]`` of shape (fan_in + 1, fan_out):
with a column of ones after its input, training computes the layer as one product ``[x, 1] @ P`` and
its gradient as one product ``[x, 1].T @ delta``: no bias additions or sums, which at batch 8 cost as
much as the products (see blas.py). Every speed trick of the layer lives here:

- the ones column: the step's input buffer ends in it; a Dense below writes its activation straight
  into it, one contiguous pass over the ones too when f(1) == 1 (``keeps_one``);
- wide layers write the input gradient ``delta @ W.T`` column-major into scratch and copy it back:
  BLAS is twice as fast that way (8x800 @ 800x800: 116 us against 227 on two threads);
- inference of one image (the drawing page) is a matrix-vector product: 3.5x faster than gemm with
  one row (0.15 ms against 0.53 ms for 784-1200-1200-10);
- inference of a batch puts the bias in the output first and lets gemm add ``x @ W`` to it (beta=1).
"""

import math

import numpy as np

from .activations import ACTIVATIONS
from .blas import Gemm, gemm
from .initializers import INITIALIZERS
from .layer import Parameter
from .optimizers import LayerGradient
from .streams import SERIAL, StreamProduct

WIDE = 256  # a layer whose fan_in and fan_out are both at least this gets column-major scratch


class Dense:
    kind = "dense"

    def __init__(self, spec, dtype=np.float32):
        self.spec = spec
        self.name = self.kind  # the network makes it "dense.{position}"
        fan_in, fan_out = math.prod(spec.in_shape), spec.out_shape[0]
        self.packed = np.zeros((fan_in + 1, fan_out), dtype)  # [W; b]
        self.params = {"weight": self.packed[:-1], "bias": self.packed[-1]}  # views
        self.state = {}
        name = spec.options.get("activation")
        self.activation = ACTIVATIONS[name] if name else None
        self.dropout = float(spec.options.get("dropout") or 0.0)

    def initialize(self, init, rng):
        W = self.params["weight"]
        W[...] = np.asarray(INITIALIZERS[init](W.shape, rng), dtype=W.dtype)

    def forward(self, x):
        """Inference: x (n, *in_shape) -> (n, fan_out), activated if hidden; no dropout."""
        a = np.ascontiguousarray(x.reshape(len(x), -1), dtype=self.packed.dtype)
        W, b = self.params["weight"], self.params["bias"]
        if len(a) == 1:
            a = (a[0] @ W + b)[None]
        else:
            out = np.empty((len(a), W.shape[1]), self.packed.dtype)
            out[...] = b
            a = gemm(out, a, W, beta=1.0)
        return self.activation.forward(a) if self.activation else a

    def plan(self, batch, input_grad, streams=SERIAL):
        return DenseStep(self, batch, input_grad, streams)


class DenseStep:
    """One training step of a Dense layer at a fixed batch size: buffers, and the products bound to them.
    With two ``streams`` (streams.py; a CNN's fc layers) each runs its own rows; an MLP runs one."""

    def __init__(self, layer, batch, input_grad, streams=SERIAL):
        dt, P = layer.packed.dtype, layer.packed
        self.layer, self.batch = layer, batch
        self.streams = streams
        fan_in = P.shape[0] - 1
        # The input, ending in a column of ones (the bias), and dLoss/dinput, whose last column is
        # never written by BLAS and stays 0.
        self.x_full = np.ones((batch, fan_in + 1), dt)
        self.x = self.x_full[:, :-1].reshape(batch, *layer.spec.in_shape)
        self.dx_full = np.zeros((batch, fan_in + 1), dt) if input_grad else None
        self.dx = self.dx_full[:, :-1].reshape(batch, *layer.spec.in_shape) if input_grad else None
        self.scratch = None
        if input_grad and min(P.shape[0] - 1, P.shape[1]) >= WIDE:
            self.scratch = np.empty((batch, fan_in), dt, order="F")

    def bind(self, above):
        layer, batch, dt = self.layer, self.batch, self.layer.packed.dtype
        width = layer.packed.shape[1]
        self.act, self.keep = layer.activation, 1.0 - layer.dropout  # read every step: kept at hand
        self.acts = self.mask = self.dropped = self.back = self.copy_to = None
        hidden = layer.activation is not None or layer.dropout > 0
        if hidden and isinstance(above, DenseStep):
            self.back = above.dx_full  # (batch, width + 1)
            if layer.dropout > 0:
                self.acts = np.ones((batch, width + 1), dt)
                self.mask = np.ones((batch, width + 1), dt)
                self.dropped = above.x_full
            else:
                self.acts = above.x_full
        elif hidden:  # a layer of another type above: keep our own buffers and copy
            self.acts = np.ones((batch, width + 1), dt)
            self.back = np.zeros((batch, width + 1), dt)
            if layer.dropout > 0:
                self.mask = np.ones((batch, width + 1), dt)
                self.dropped = np.ones((batch, width + 1), dt)
            self.copy_to, self.copy_from = above.x.reshape(batch, width), above.dx.reshape(batch, width)
        if self.acts is not None:
            out, delta = self.acts[:, :-1], self.back[:, :-1]
        else:  # the last layer (its output the logits) or one whose activation follows later
            out, delta = above.x.reshape(batch, width), above.dx.reshape(batch, width)
        self.product = Gemm(out, self.x_full, layer.packed)  # a Gemm keeps its arrays and arguments alive
        self.input_product = None
        if self.dx is not None:
            target = self.dx_full[:, :-1] if self.scratch is None else self.scratch
            self.input_product = Gemm(target, delta, layer.packed[:-1].T)
        if self.streams.count > 1:  # the same work, each stream its own rows
            self.rows = self.streams.parts(batch)
            self.products = StreamProduct(self.streams, out, self.x_full, layer.packed, self.rows).stage()
            self.input_products = (StreamProduct(self.streams, target, delta, layer.packed[:-1].T, self.rows).stage()
                                   if self.dx is not None else None)
            self.forward, self.backward = self._forward_streams, self._backward_streams
        # delta is dLoss/dz times the batch size (the mean's 1/batch is applied in the update).
        gradient = LayerGradient(self.x_full, delta, 1.0 / batch, self.streams)
        self.parameters = [Parameter(layer.name, layer.packed, gradient,
                                     {f"{layer.name}.weight": slice(0, -1), f"{layer.name}.bias": -1},
                                     decay=slice(0, -1))]

    def forward(self, rng):
        self.product.product()
        a = self.acts
        if a is None:
            return
        act = self.act
        if act is not None:
            act.forward(a)  # one contiguous pass, the ones column included
            if not act.keeps_one:
                a[:, -1] = 1
        if self.mask is not None:  # inverted dropout: scale the kept units by 1 / keep
            keep = self.keep
            drawn = rng.random((len(a), a.shape[1] - 1), dtype=np.float32) < keep
            np.divide(drawn, np.float32(keep), out=self.mask[:, :-1])
            np.multiply(a, self.mask, out=self.dropped)
        if self.copy_to is not None:
            self.copy_to[...] = (self.dropped if self.mask is not None else a)[:, :-1]

    def backward(self):
        below = self.back
        if below is not None:  # dLoss/d(our activation) -> dLoss/dz, in place
            if self.copy_to is not None:
                below[:, :-1] = self.copy_from
            if self.mask is not None:
                below *= self.mask
            if self.act is not None:
                self.act.backward(self.acts, below)
        if self.input_product is not None:  # before this layer's update changes its weights
            self.input_product.product()
            if self.scratch is not None:
                self.dx_full[:, :-1] = self.scratch

    # Two streams: the steps above, each on its own rows (the dropout mask drawn whole first).

    def _forward_streams(self, rng):
        drawn = None if self.mask is None else rng.random((self.batch, self.acts.shape[1] - 1), dtype=np.float32)
        self.streams.stages(self.products, lambda part: self._forward_part(part, drawn))

    def _forward_part(self, part, drawn):
        first, end = self.rows[part]
        if self.acts is None:
            return
        a, act = self.acts[first:end], self.act
        if act is not None:
            act.forward(a)
            if not act.keeps_one:
                a[:, -1] = 1
        if self.mask is not None:
            keep = self.keep
            np.divide(drawn[first:end] < keep, np.float32(keep), out=self.mask[first:end, :-1])
            np.multiply(a, self.mask[first:end], out=self.dropped[first:end])
        if self.copy_to is not None:
            self.copy_to[first:end] = (self.dropped if self.mask is not None else self.acts)[first:end, :-1]

    def _backward_streams(self):
        stages = [self._backward_part]
        if self.input_products is not None:
            stages.append(self.input_products)
            if self.scratch is not None:
                stages.append(self._unscratch)
        self.streams.stages(*stages)

    def _unscratch(self, part):
        first, end = self.rows[part]
        self.dx_full[first:end, :-1] = self.scratch[first:end]

    def _backward_part(self, part):
        first, end = self.rows[part]
        if self.back is not None:
            below = self.back[first:end]
            if self.copy_to is not None:
                below[:, :-1] = self.copy_from[first:end]
            if self.mask is not None:
                below *= self.mask[first:end]
            if self.act is not None:
                self.act.backward(self.acts[first:end], below)
