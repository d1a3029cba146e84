"""The convolution layer (token ``convNkK[sS][same|valid]``): N filters of K x K, stride 1 or 2,
cross-correlation as every framework computes it, then the hidden activation.

Channel order: images flow between layers as (batch, height, width, channels), C-contiguous (NHWC),
whatever the spec's logical shape (channels, height, width) says. Then the K x K window of an output
pixel is K runs of K*channels contiguous numbers, its im2col row a plain copy of them, and the
product's output (batch*height*width, filters) *is* the next layer's NHWC input: no transposes. (In
NCHW every im2col row gathers K*K*C scattered numbers and the output must be transposed back.)

Parameters: ``weight`` (filters, channels, K, K), as PyTorch orders it, and ``bias`` (filters,) are
views of one array ``P = [W; b]`` of shape (K*K*channels + 1, filters) whose rows run (ky, kx,
channel). Every speed trick of the layer lives here, each measured in the README:

- forward is one gemm over an im2col buffer ending in a column of ones (the bias folded in, as in
  Dense): the windows are a strided view of the input, copied once into the buffer;
- the layer below writes straight into the inside of a zero-bordered buffer, so padding costs no copy;
- the weight gradient is one gemm on the kept im2col buffer (a factored ``LayerGradient``: plain SGD
  updates P in that same gemm);
- the input gradient is K*K gemms, one per kernel position, each adding onto a shifted run of
  rows of the padded input gradient (at stride 2, of one of its four phases): no col2im (see
  ``ConvStep._shifted_products``); for small outputs, where that grid is mostly padding, it is one
  gemm into a column buffer and K*K slice-adds back onto the image (col2im), a block of images at a
  time so that both stay in cache; never ``np.add.at``.
"""

import copy
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..arch import INFERENCE_IM2COL_ROWS
from .activations import ACTIVATIONS
from .blas import gemm
from .initializers import INITIALIZERS
from .layer import Parameter
from .optimizers import LayerGradient
from .streams import BARRIER, SERIAL, StreamProduct

# im2col rows per block of inference (about 16 MB of float32 for a 3x3x64 kernel): bounds memory
# whatever the number of images (arch.py counts it in the resource estimate).
INFERENCE_ROWS = INFERENCE_IM2COL_ROWS
_ZERO = np.zeros((), np.float32)


def same_padding(size, kernel, stride):
    """(before, after) zero rows for 'same' output ceil(size / stride): (K - 1) // 2 before, as
    PyTorch's ``padding=K//2``, and after only what the last window reaches."""
    out = -(-size // stride)
    before = (kernel - 1) // 2
    return before, max((out - 1) * stride + kernel - size - before, 0)


def windows(x, kernel, stride, out_hw):
    """The (batch, out_h, out_w, K, K, C) view of every K x K window of x (batch, h, w, C): no copy."""
    n, _, _, c = x.shape
    sn, sh, sw, sc = x.strides
    return as_strided(x, (n, *out_hw, kernel, kernel, c), (sn, stride * sh, stride * sw, sh, sw, sc),
                      writeable=False)


def nhwc(a, batch, shape):
    """``a`` as (batch, h, w, C) for a logical (C, h, w), or (batch, n) for a flat (n,): a view."""
    view = a.reshape(batch, *(tuple(shape[1:]) + tuple(shape[:1]) if len(shape) == 3 else shape))
    assert not a.size or np.shares_memory(view, a)  # a reshape that copied would lose the writes
    return view


def activation_backward(activation, a, grad, mask):
    """dLoss/da -> dLoss/dz in place, for the activation output ``a``; ReLU through ``mask``, a bool
    buffer shaped like ``a``: grad * (a > 0) costs 0.48 ms at 64x26x26x32 where Relu.backward's
    grad * sign(a), which allocates the sign each call, costs 1.05 ms."""
    if activation.name == "relu":
        np.greater(a, _ZERO, out=mask)
        np.multiply(grad, mask, out=grad)
    else:
        activation.backward(a, grad)


class Conv2d:
    kind = "conv"

    def __init__(self, spec, dtype=np.float32):
        self.spec, self.name = spec, self.kind  # the network makes it "conv.{position}"
        o = spec.options
        c, h, w = spec.in_shape
        filters, self.kernel, self.stride = o["filters"], o["kernel"], o["stride"]
        if self.stride not in (1, 2):
            raise ValueError(f"conv: stride {self.stride}: must be 1 or 2")
        k, s = self.kernel, self.stride
        if o["padding"] == "same":
            (top, bottom), (left, right) = same_padding(h, k, s), same_padding(w, k, s)
        else:
            top = bottom = left = right = 0
        self.pads = (top, bottom, left, right)
        self.in_hwc = (h, w, c)
        self.out_hwc = ((h + top + bottom - k) // s + 1, (w + left + right - k) // s + 1, filters)
        if self.out_hwc[:2] != tuple(spec.out_shape[1:]):
            raise ValueError(f"conv: output {self.out_hwc[:2]} does not match the spec's {spec.out_shape}")
        self.fan_in = k * k * c
        # [W; b], W rows (ky, kx, channel). Row-major, as the optimizers' one-pass updates need (in
        # column-major the weight gradient's product was 10-20% faster: 36864 x 289 x 32 on one
        # core at 57 GFLOP/s against 48, but the weight rows without the bias are no block of memory).
        self.packed = np.zeros((self.fan_in + 1, filters), dtype)
        self.params = self.views(self.packed)
        self.state = {}
        name = o.get("activation")
        self.activation = ACTIVATIONS[name] if name else None

    def views(self, packed):
        """{"weight": (filters, channels, k, k), "bias": (filters,)} views of an array laid out like
        ``packed``: the layer's own parameters, a folded copy's, or their gradient."""
        k, c, f = self.kernel, self.in_hwc[2], self.out_hwc[2]
        return {"weight": packed[:-1].reshape(k, k, c, f).transpose(3, 2, 0, 1), "bias": packed[-1]}

    def initialize(self, init, rng):
        W = self.packed[:-1]  # drawn as (fan_in, fan_out) = (K*K*C, filters)
        W[...] = np.asarray(INITIALIZERS[init](W.shape, rng), dtype=W.dtype)

    @property
    def dtype(self):
        return self.packed.dtype

    def padded_shape(self, batch):
        (h, w, c), (top, bottom, left, right) = self.in_hwc, self.pads
        return batch, h + top + bottom, w + left + right, c

    def forward(self, x):
        """Inference: x (n, *in_shape) -> (n, out_h, out_w, filters) NHWC, activated; in blocks of
        images so that the im2col buffer stays bounded."""
        n, (h, w, c), (out_h, out_w, f) = len(x), self.in_hwc, self.out_hwc
        x = nhwc(np.asarray(x, self.dtype), n, self.spec.in_shape)
        out = np.empty((n, out_h, out_w, f), self.dtype)
        block = max(1, INFERENCE_ROWS // (out_h * out_w))
        top, _, left, _ = self.pads
        padded = cols = None
        for start in range(0, n, block):
            part = x[start:start + block]
            m = len(part)
            if padded is None or len(padded) != m:
                padded = np.zeros(self.padded_shape(m), self.dtype) if any(self.pads) else None
                cols = np.empty((m * out_h * out_w, self.fan_in + 1), self.dtype)
                cols[:, -1] = 1  # the bias column; the windows fill the rest (np.ones wrote it all twice)
            if padded is not None:
                padded[:, top:top + h, left:left + w] = part
                part = padded
            cols[:, :-1].reshape(m, out_h, out_w, self.kernel, self.kernel, c)[...] = \
                windows(part, self.kernel, self.stride, (out_h, out_w))
            y = out[start:start + m].reshape(-1, f)
            gemm(y, cols, self.packed)
            if self.activation:
                self.activation.forward(y)
        return out

    def folded(self, norm):
        """A copy of this layer for inference with the batch norm ``norm`` that follows it folded in: the
        product's columns scaled by gamma / sqrt(var + eps), the bias (b - mean) * that + beta, then the
        activation the norm applied. One pass over the feature maps instead of three."""
        scale = norm.params["gamma"].astype(np.float64) / np.sqrt(norm.state["var"].astype(np.float64) + norm.eps)
        fused = copy.copy(self)
        fused.packed = (self.packed.astype(np.float64) * scale).astype(self.dtype)
        fused.packed[-1] = ((self.packed[-1] - norm.state["mean"]) * scale + norm.params["beta"]).astype(self.dtype)
        fused.params = fused.views(fused.packed)
        fused.activation = norm.activation
        return fused

    def plan(self, batch, input_grad, streams=SERIAL):
        return ConvStep(self, batch, input_grad, streams)


class ConvStep:
    """One training step of a Conv2d at a fixed batch size: buffers and the products bound to them.
    Each of ``streams`` (streams.py) runs the work of its own images, every product split by rows."""

    # Images per block of the input gradient's gemm + col2im: the block's columns and image gradient
    # stay in the core's cache between the two.
    BLOCK_ROWS = 4096
    # The shifted products compute on a grid of window corners that holds zeros where no window
    # starts; past this many corners per output, col2im is the faster (measured on one core: 12x12 ->
    # 10x10, 1.44 corners per output: 4.2 ms against 4.9; 8x8 -> 4x4 at stride 2, 2.25: 6.0 against
    # 4.5; 4x4 -> 1x1, 16: 2.9 against 0.4).
    MAX_CORNERS_PER_OUTPUT = 2.0

    def __init__(self, layer, batch, input_grad, streams=SERIAL):
        dt, self.layer, self.batch = layer.dtype, layer, batch
        self.streams, self.images = streams, streams.parts(batch)  # each stream's (first, end) image
        (h, w, c), (out_h, out_w, f) = layer.in_hwc, layer.out_hwc
        top, _, left, _ = layer.pads
        k, rows = layer.kernel, batch * out_h * out_w
        # The input lives inside a zero-bordered buffer: the layer below writes into ``x`` directly.
        self.padded = np.zeros(layer.padded_shape(batch), dt)
        self.x = self.padded[:, top:top + h, left:left + w]
        self.cols = np.ones((rows, layer.fan_in + 1), dt)  # im2col; its last column the bias's ones
        self.cols_view = self.cols[:, :-1].reshape(batch, out_h, out_w, k, k, c)
        assert np.shares_memory(self.cols_view, self.cols)
        self.windows = windows(self.padded, k, layer.stride, (out_h, out_w))
        self.dx = None
        s, (_, hp, wp, _) = layer.stride, layer.padded_shape(batch)
        corners = -(-hp // s) * -(-wp // s)
        self.shifted = input_grad and corners <= self.MAX_CORNERS_PER_OUTPUT * out_h * out_w
        if input_grad:
            self.dpadded = np.zeros(layer.padded_shape(batch), dt)
            self.dx = np.empty((batch, h, w, c), dt) if any(layer.pads) else self.dpadded
        if self.shifted:
            # The padded input gradient by phase (row % stride, column % stride), each on a grid of
            # ceil(Hp / stride) x ceil(Wp / stride); at stride 1 the one phase is dpadded itself.
            grid = (batch, -(-hp // s), -(-wp // s))
            self.phases = {(0, 0): self.dpadded} if s == 1 else \
                {(p, q): np.zeros((*grid, c), dt) for p in range(s) for q in range(s)}
            self.dgrid = np.zeros((*grid, f), dt)  # dLoss/dz at each window's corner, zeros elsewhere
        elif input_grad:
            per_image = out_h * out_w
            self.block = max(1, self.BLOCK_ROWS // per_image)
            self.dcols = np.empty((min(batch, self.block) * per_image, layer.fan_in), dt)

    def bind(self, above):
        layer, batch = self.layer, self.batch
        out_h, out_w, f = layer.out_hwc
        per_image = out_h * out_w
        rows = batch * per_image
        self.above_x = nhwc(above.x, batch, layer.spec.out_shape)
        self.above_dx = nhwc(above.dx, batch, layer.spec.out_shape)
        delta = self.above_dx.reshape(rows, f)  # dLoss/dz times the batch size, overwritten in place
        assert np.shares_memory(delta, above.dx)
        # The product writes the layer above's input when it is one block of memory (the activation
        # then applied in place), else a buffer of our own, activated into the padded buffer above.
        direct = self.above_x.flags.c_contiguous
        self.z = self.above_x.reshape(rows, f) if direct else np.empty((rows, f), layer.dtype)
        self.z4 = None if direct else self.z.reshape(self.above_x.shape)
        self.mask = np.empty(self.above_x.shape, bool) if layer.activation else None
        # Keep the Gemm objects: their ``product`` points into arrays they own.
        self.forward_product = StreamProduct(self.streams, self.z, self.cols, layer.packed,
                                             [(first * per_image, end * per_image) for first, end in self.images])
        self.gradient = LayerGradient(self.cols, delta, 1.0 / batch, self.streams)
        self.parameters = [Parameter(layer.name, layer.packed, self.gradient,
                                     {f"{layer.name}.weight": slice(0, -1), f"{layer.name}.bias": -1},
                                     decay=slice(0, -1), views=layer.views)]
        self.input_products = []
        if self.shifted:
            self.delta4 = delta.reshape(batch, out_h, out_w, f)
            self.input_products = self._shifted_products()
        elif self.dx is not None:  # col2im, a block of images at a time, each stream its images of it
            for start in range(0, batch, self.block):
                m = min(self.block, batch - start)
                self.input_products.append(
                    (start, m, StreamProduct(self.streams, self.dcols[:m * per_image],
                                             delta[start * per_image:(start + m) * per_image], layer.packed[:-1].T,
                                             [(a * per_image, b * per_image) for a, b in self.streams.parts(m)])))

    def _shifted_products(self):
        """The input gradient as K*K gemms, one per kernel position (i, j), each adding
        ``dgrid @ W_ij.T`` onto a shifted run of rows of the padded input gradient: no col2im.

        At stride 1, both the padded input gradient (batch, Hp, Wp, C) and ``dgrid`` (batch, Hp, Wp,
        F), which holds the output gradient at each window's top-left corner and zeros elsewhere, are
        read as one long image of batch*Hp rows: the input pixel (i, j) away from a corner is then a
        fixed number of rows (i*Wp + j) further on in both, so each kernel position is one product
        over contiguous rows; corners of no window hold zeros and add nothing. At stride 2 the input
        gradient is split into its four phases (even/odd rows and columns), each on the half-size
        grid of corners: position (i, j) lands in phase (i % 2, j % 2), (i // 2, j // 2) away.
        Returns [(phase, StreamProduct, overwrites)]: the first product into a phase overwrites it. A stream's rows are those of its images in the input gradient (the rows
        it reads from the images before are corners of no window: zeros no stream writes).
        """
        layer, k, s = self.layer, self.layer.kernel, self.layer.stride
        _, hp, wp, f = self.dgrid.shape
        c = layer.in_hwc[2]
        d_rows = self.dgrid.reshape(-1, f)
        rows, products, started = len(d_rows), [], set()
        for i in range(k):
            for j in range(k):
                phase = (i % s, j % s)
                shift, first = (i // s) * wp + j // s, (i * k + j) * c
                w_ij = layer.packed[first:first + c]  # (C, F): the rows of kernel position (i, j)
                dx_rows = self.phases[phase].reshape(-1, c)
                bounds = [(max(a * hp * wp - shift, 0), max(b * hp * wp - shift, 0)) for a, b in self.images]
                products.append((phase, StreamProduct(self.streams, dx_rows[shift:], d_rows[:rows - shift], w_ij.T,
                                                      bounds), phase not in started and shift == 0))
                started.add(phase)
        return products

    def forward(self, rng):
        self.streams.stages(self._im2col, self.forward_product.stage(), self._activate)

    def _im2col(self, part):
        first, end = self.images[part]
        np.copyto(self.cols_view[first:end], self.windows[first:end])

    def _activate(self, part):
        first, end = self.images[part]
        act = self.layer.activation
        if self.z4 is None:
            if act:
                per_image = self.layer.out_hwc[0] * self.layer.out_hwc[1]
                act.forward(self.z[first * per_image:end * per_image])
        elif act and act.name == "relu":
            np.maximum(self.z4[first:end], _ZERO, out=self.above_x[first:end])  # activation and copy in one pass
        else:
            z4 = self.z4[first:end]
            np.copyto(self.above_x[first:end], act.forward(z4) if act else z4)

    def backward(self):
        stages = [self._activation_backward]
        if self.shifted:
            stages += [self._place_delta, *[product.stage(1.0, 0.0 if overwrites else 1.0)
                                            for _, product, overwrites in self.input_products], self._gather]
        elif self.dx is not None:
            for start, m, product in self.input_products:  # the blocks share dcols: one after the other
                stages += [product.stage(), self._col2im(start, m), BARRIER]
            stages.append(self._gather)
        self.streams.stages(*stages)

    def _activation_backward(self, part):
        first, end = self.images[part]
        if self.layer.activation:
            activation_backward(self.layer.activation, self.above_x[first:end], self.above_dx[first:end],
                                self.mask[first:end])

    def _place_delta(self, part):
        """The output gradient at each window's corner of the stream's images."""
        first, end = self.images[part]
        out_h, out_w, _ = self.layer.out_hwc
        self.dgrid[first:end, :out_h, :out_w] = self.delta4[first:end]

    def _col2im(self, start, m):
        """A stage adding the block's columns (dcols = delta @ W.T) of each stream's images onto the
        input gradient: each kernel position onto a strided slice (np.add.at does it in one call,
        and 20-50x slower)."""
        layer = self.layer
        k, s, c = layer.kernel, layer.stride, layer.in_hwc[2]
        out_h, out_w, _ = layer.out_hwc
        parts = self.streams.parts(m)

        def add(part):
            first, end = parts[part]
            block = self.dpadded[start + first:start + end]
            block[...] = 0
            dwin = self.dcols[first * out_h * out_w:end * out_h * out_w].reshape(end - first, out_h, out_w, k, k, c)
            for i in range(k):
                for j in range(k):
                    block[:, i:i + s * out_h:s, j:j + s * out_w:s] += dwin[:, :, :, i, j]
        return add

    def _gather(self, part):
        """The stream's images of the input gradient into place: the phases (stride 2), the padding off."""
        layer, (first, end) = self.layer, self.images[part]
        s, dpadded = layer.stride, self.dpadded
        if self.shifted and s > 1:
            _, hp, wp, _ = dpadded.shape
            for (p, q), phase in self.phases.items():
                np.copyto(dpadded[first:end, p::s, q::s],
                          phase[first:end, :(hp - p + s - 1) // s, :(wp - q + s - 1) // s])
        if self.dx is not dpadded:
            top, _, left, _ = layer.pads
            h, w, _ = layer.in_hwc
            np.copyto(self.dx[first:end], dpadded[first:end, top:top + h, left:left + w])
