"""The architecture spec: a network as a string a user types, such as ``fc800-fc800`` or
``conv32k5-bn-pool2-drop0.25-fc128``, and what each layer of it costs.

Tokens, joined by ``-`` (a flatten before the first ``fc`` after image layers, and the final
``fc{classes}``, are implicit):

- ``fcN``           fully connected, N units
- ``convNkK[sS][same|valid]``  N filters of KxK, stride S (default 1), zero padding that keeps the size
                    at stride 1 (``same``, the default) or none (``valid``)
- ``poolK``         KxK max-pool, stride K
- ``bn``            batch normalisation (per channel after a conv, per unit after an fc)
- ``dropP``         dropout with probability P
- ``gap``           global average pool: (channels, height, width) -> (channels,)
- ``flatten``       (channels, height, width) -> (channels * height * width,)

``parse(text)`` checks the syntax (one ``ArchError`` line: ``arch: 'conv32k0' at token 1: kernel must be
>= 1``); ``format_arch`` writes tokens back as the same string; ``resolve(text, features, classes,
activation, dropout)`` follows the shapes from the input through every layer and gives an ``Arch``
whose ``layers`` each know their output shape, parameters, multiply-adds per image and training
memory per image. Every place that builds, sizes, saves, shows or estimates a model reads this.

The hidden activation follows every ``fc`` and ``conv`` but the last ``fc`` (after a ``bn`` that directly
follows one, instead); the run's ``dropout`` setting applies to the hidden ``fc`` layers' outputs.

A new layer type is one ``Token`` in ``TOKENS`` (its fields, shape rule and costs) naming the class that
implements it (``module:Class``, in ``nn/``; see ``nn/layer.py``). This module imports no NumPy, so
``mnistlab --help`` stays fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import InputError

CLASSES = 10
FLOAT = 4  # bytes of a float32
CONV_MAX_CORNERS_PER_OUTPUT = 2.0  # nn/conv2d.py's ConvStep.MAX_CORNERS_PER_OUTPUT
INFERENCE_FLOATS = 16 * 2 ** 20  # one layer's input and output at once in inference: 64 MB of float32
INFERENCE_ROWS = 10_000  # images evaluated at once at most
INFERENCE_IM2COL_ROWS = 16_384  # a conv's im2col block in inference (nn/conv2d.py)


class ArchError(InputError):
    """A spec that does not parse or does not fit its input."""

    def __init__(self, message):
        super().__init__(message, field="arch")


@dataclass(frozen=True)
class Field:
    """One number or word of a token: ``prefix`` (``k`` in ``k5``; "" for the number right after the
    name), its type (int, float, or a tuple of words), default (None: required) and lower bound."""

    name: str
    prefix: str = ""
    kind: object = int
    default: object = None
    minimum: float | None = 1
    below: float | None = None  # exclusive upper bound


# ---------------------------------------------------------------- shape and cost rules, per token

def _size(shape):
    return math.prod(shape)


def _image(shape, what):
    if len(shape) != 3:
        raise ValueError(f"{what} needs images (channels, height, width), gets {_shape_text(shape)}")
    return shape


def _fc_shape(shape, o):
    return (o["units"],)


def _fc_params(shape, o):
    return {"weight": (_size(shape), o["units"]), "bias": (o["units"],)}


def _inputs(shape, o):
    """A step's x, and dx unless it is the first layer's (see nn/layer.py)."""
    return _size(shape) * (2 if o["input_grad"] else 1)


def _fc_memory(shape, out, o):
    # Dense (nn/dense.py): its ones-augmented input and input gradient; with dropout, its activation
    # and mask (the dropped copy is the next layer's input); column-major scratch for wide layers.
    fan_in, fan_out = _size(shape), o["units"]
    floats = (fan_in + 1) * (2 if o["input_grad"] else 1) + (2 * (fan_out + 1) if o.get("dropout") else 0)
    return floats + (fan_in if o["input_grad"] and min(fan_in, fan_out) >= 256 else 0)


def _conv_out(size, o):
    k, s = o["kernel"], o["stride"]
    if o["padding"] == "same":
        return -(-size // s)
    if size < k:
        raise ValueError(f"a {k}x{k} kernel without padding does not fit a {size}x{size} input")
    return (size - k) // s + 1


def _conv_shape(shape, o):
    c, h, w = _image(shape, "conv")
    return (o["filters"], _conv_out(h, o), _conv_out(w, o))


def _conv_params(shape, o):
    c = _image(shape, "conv")[0]
    return {"weight": (o["filters"], c, o["kernel"], o["kernel"]), "bias": (o["filters"],)}


def _conv_macs(shape, out, o):
    return _size(out) * shape[0] * o["kernel"] ** 2


def _same_padding(size, k, s):
    """(before, after) zero rows of 'same' padding, as nn/conv2d.py pads (PyTorch's k // 2 before)."""
    before = (k - 1) // 2
    return before, max((-(-size // s) - 1) * s + k - size - before, 0)


def _bools(n):
    return -(-n // FLOAT)  # a bool or uint8 buffer of n values, in floats


def _conv_memory(shape, out, o):
    # nn/conv2d.py's ConvStep: the zero-bordered input (x lives inside it), the im2col buffer, the
    # activation's mask, an output buffer when the layer above is a padded conv; with the input gradient: the padded input gradient (and a copy of its
    # inside when padded), and either the output gradient on the grid of window corners (and, at
    # stride 2, the input gradient's four phases) or col2im's column buffer.
    (c, h, w), (f, oh, ow), k, s = shape, out, o["kernel"], o["stride"]
    pads = [p for size in (h, w) for p in (_same_padding(size, k, s) if o["padding"] == "same" else (0, 0))]
    hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
    floats = hp * wp * c + oh * ow * (k * k * c + 1) + (_bools(oh * ow * f) if o.get("activation") else 0)
    floats += oh * ow * f if o.get("above_padded") else 0  # its own output buffer, see ConvStep.bind
    if o["input_grad"]:
        floats += hp * wp * c + (h * w * c if any(pads) else 0)
        corners = -(-hp // s) * -(-wp // s)
        if corners <= CONV_MAX_CORNERS_PER_OUTPUT * oh * ow:
            floats += corners * f + (s * s * corners * c if s > 1 else 0)
        else:
            floats += oh * ow * k * k * c  # at most: col2im works a block of images at a time
    return floats


def _pool_memory(shape, out, o):
    # nn/maxpool.py's PoolStep: x, dx, each window column's maximum and its gradient, which row and
    # which column won (uint8), and a bool mask.
    (c, h, w), k = shape, o["size"]
    column_maxima = (h // k) * (w // k) * k * c
    return _inputs(shape, o) + 2 * column_maxima + _bools(column_maxima) * 2 + _bools(_size(out))


def _bn_memory(shape, out, o):
    # nn/batchnorm.py's NormStep: x, x - mean, a scratch, dx; the activation's mask.
    return _inputs(shape, o) + 2 * _size(shape) + (_bools(_size(out)) if o.get("activation") else 0)


def _pool_shape(shape, o):
    c, h, w = _image(shape, "pool")
    if h < o["size"] or w < o["size"]:
        raise ValueError(f"a {o['size']}x{o['size']} pool does not fit a {h}x{w} input")
    return (c, h // o["size"], w // o["size"])


def _bn_params(shape, o):
    return {"gamma": (shape[0],), "beta": (shape[0],)}


def _gap_shape(shape, o):
    return (_image(shape, "gap")[0],)


def _flatten_shape(shape, o):
    return (_size(shape),)


def _same(shape, o):
    return tuple(shape)


def _no_params(shape, o):
    return {}


def _no_macs(shape, out, o):
    return 0


def _per_value(shape, out, o):
    return _size(out)


def _in_and_out(shape, out, o):
    return _inputs(shape, o) + _size(out)  # x, dx and one output-sized buffer


@dataclass(frozen=True)
class Token:
    """One kind of layer in the grammar, and the layer class (``module:Class``) that implements it.

    ``shape(in_shape, options)``: output shape (raise ValueError(why) if the input does not fit);
    ``parameters``: {name: shape}; ``state``: {name: shape} of saved non-trained arrays;
    ``macs(in_shape, out_shape, options)``: multiply-adds per image; ``memory``: floats per image of
    the layer's training-step buffers (its x, its dx unless ``options["input_grad"]`` is False, and
    any others; the loss's logits are counted once for the network). ``weighted``: the hidden activation follows it. ``image``: needs its input as
    (channels, height, width).
    """

    name: str
    fields: tuple
    layer: str
    shape: object = _same
    parameters: object = _no_params
    state: object = _no_params
    macs: object = _no_macs
    memory: object = _in_and_out
    weighted: bool = False
    image: bool = False


TOKENS = {t.name: t for t in (
    Token("fc", (Field("units"),), "mnistlab.nn.dense:Dense", _fc_shape, _fc_params,
          macs=lambda shape, out, o: _size(shape) * o["units"], memory=_fc_memory, weighted=True),
    Token("conv", (Field("filters"), Field("kernel", "k"), Field("stride", "s", default=1),
                   Field("padding", kind=("same", "valid"), default="same")),
          "mnistlab.nn.conv2d:Conv2d", _conv_shape, _conv_params, macs=_conv_macs, memory=_conv_memory,
          weighted=True, image=True),
    Token("pool", (Field("size"),), "mnistlab.nn.maxpool:MaxPool2d", _pool_shape, image=True,
          memory=_pool_memory),
    Token("bn", (), "mnistlab.nn.batchnorm:BatchNorm", parameters=_bn_params,
          state=lambda shape, o: {"mean": (shape[0],), "var": (shape[0],)}, macs=_per_value,
          memory=_bn_memory),
    Token("drop", (Field("rate", kind=float, minimum=0, below=1),), "mnistlab.nn.dropout:Dropout"),
    Token("gap", (), "mnistlab.nn.global_pool:GlobalAvgPool", _gap_shape, image=True,
          memory=lambda shape, out, o: _inputs(shape, o)),
    Token("flatten", (), "mnistlab.nn.flatten:Flatten", _flatten_shape, memory=lambda shape, out, o: _inputs(shape, o)),
)}


# ---------------------------------------------------------------- parsing and formatting

@dataclass(frozen=True)
class Spec:
    """One token of a spec: its kind (a TOKENS name) and its fields' values."""

    kind: str
    options: tuple  # ((field name, value), ...) in the token's field order

    @property
    def values(self):
        return dict(self.options)

    def text(self):
        token = TOKENS[self.kind]
        parts = [self.kind]
        for f, (_, value) in zip(token.fields, self.options):
            if f.default is not None and value == f.default:
                continue
            parts.append(value if isinstance(f.kind, tuple) else f.prefix + _number_text(value))
        return "".join(parts)


def _number_text(value):
    return str(value) if isinstance(value, int) else repr(float(value)).removesuffix(".0")


def _read_number(body, kind):
    """(value, rest) for the number at the start of ``body``; ValueError if there is none."""
    end = 0
    while end < len(body) and (body[end].isdigit() or (kind is float and body[end] == ".")):
        end += 1
    if end == 0:
        raise ValueError
    return kind(body[:end]), body[end:]


def _parse_token(text):
    """A Spec from one token like ``conv32k5s2``; ValueError(why) if it is not one."""
    names = sorted((n for n in TOKENS if text.startswith(n)), key=len, reverse=True)
    if not names:
        raise ValueError(f"unknown layer (known: {', '.join(TOKENS)})")
    token = TOKENS[names[0]]
    body, values = text[len(token.name):], []
    for f in token.fields:
        if isinstance(f.kind, tuple):
            word = next((w for w in f.kind if body.startswith(w)), None)
            body = body[len(word):] if word else body
            values.append((f.name, word or f.default))
            continue
        if body.startswith(f.prefix) and body[len(f.prefix):][:1].replace(".", "0").isdigit():
            try:
                value, body = _read_number(body[len(f.prefix):], f.kind)
            except ValueError:
                raise ValueError(f"{f.name} is not a number") from None
        elif f.default is None:
            example = f"{token.name}{''.join(g.prefix + '5' for g in token.fields if g.default is None)}"
            raise ValueError(f"needs its {f.name} (e.g. {example})")
        else:
            value = f.default
        if f.minimum is not None and value < f.minimum:
            raise ValueError(f"{f.name} must be >= {f.minimum}")
        if f.below is not None and value >= f.below:
            raise ValueError(f"{f.name} must be < {f.below}")
        values.append((f.name, value))
    if body:
        raise ValueError(f"unexpected {body!r} after {token.name}")
    return Spec(token.name, tuple(values))


def parse(text):
    """The Specs of a spec string; ArchError (one line) on the first bad token."""
    if not isinstance(text, str) or not text.strip():
        raise ArchError(f"arch: {text!r}: empty (expected tokens like fc800-fc800)")
    specs = []
    for i, token in enumerate(text.strip().split("-"), 1):
        try:
            specs.append(_parse_token(token.strip()))
        except ValueError as e:
            raise ArchError(f"arch: {token!r} at token {i}: {e}") from None
    return tuple(specs)


def format_arch(specs):
    return "-".join(spec.text() for spec in specs)


def hidden_arch(hidden):
    """The spec ``--hidden 800,800`` stands for: 'fc800-fc800'."""
    return "-".join(f"fc{units}" for units in hidden)


def dense_hidden(text):
    """(800, 800) for 'fc800-fc800'; None if the spec has any layer but fc."""
    specs = parse(text)
    return tuple(s.values["units"] for s in specs) if all(s.kind == "fc" for s in specs) else None


# ---------------------------------------------------------------- shapes and costs of a whole network

@dataclass(frozen=True)
class Layer:
    """One layer of a resolved spec: what the network builds and every estimate reads."""

    kind: str
    options: dict = field(compare=False)  # the token's values, plus activation and dropout where they apply
    in_shape: tuple
    out_shape: tuple
    parameters: dict  # name -> shape
    state: dict  # name -> shape, saved but not trained
    macs: int  # multiply-adds per image, forward
    memory: int  # training floats per image beyond the parameters
    text: str  # the token ('fc10' for the implicit last layer)

    @property
    def token(self):
        return TOKENS[self.kind]

    @property
    def parameter_count(self):
        return sum(_size(s) for s in self.parameters.values())

    @property
    def activation(self):
        return self.options.get("activation")


@dataclass(frozen=True)
class Arch:
    """A spec resolved against its input: ``layers`` from the input to the final fc."""

    text: str
    input_shape: tuple
    classes: int
    layers: tuple
    activation: str  # the hidden activation
    dropout: float  # on the hidden fc layers' outputs

    @property
    def parameter_count(self):
        return sum(layer.parameter_count for layer in self.layers)

    @property
    def macs(self):
        """Multiply-adds of one image's forward pass."""
        return sum(layer.macs for layer in self.layers)

    @property
    def features(self):
        return _size(self.input_shape)

    @property
    def dense_sizes(self):
        """[784, 800, 800, 10] for an all-fc network (the mnistlab-mlp/1 file layout); else None."""
        if any(layer.kind != "fc" for layer in self.layers):
            return None
        return [self.features] + [layer.out_shape[0] for layer in self.layers]

    @property
    def inference_rows(self):
        """Images to evaluate at once: as many as keep every layer's input and output together
        under INFERENCE_FLOATS (at most INFERENCE_ROWS: 10,000 for the dense networks, a few
        hundred for a CNN, whose maps are tens of thousands of values an image)."""
        widest = max(_size(layer.in_shape) + _size(layer.out_shape) for layer in self.layers)
        return max(1, min(INFERENCE_ROWS, INFERENCE_FLOATS // widest))

    def training_memory(self, batch):
        """Bytes of one training step's buffers at this batch size (parameters not included)."""
        return FLOAT * batch * (self.classes + sum(layer.memory for layer in self.layers))

    def largest_product(self, batch):
        """Multiply-adds of the largest single layer at this batch size (see nn/blas.threads_for)."""
        return batch * max(layer.macs + (layer.out_shape[0] if layer.kind == "fc" else 0)
                           for layer in self.layers)

    def table(self):
        """Per-layer lines: token, output shape, parameters, multiply-adds per image."""
        rows = [f"{'input':<16} {_shape_text(self.input_shape):>14}"]
        rows += [f"{layer.text:<16} {_shape_text(layer.out_shape):>14} {layer.parameter_count:>12,} "
                 f"{layer.macs:>14,}" for layer in self.layers]
        return rows


def _shape_text(shape):
    return "x".join(map(str, shape))


def image_shape(features):
    """(1, side, side) for a square number of pixels; ValueError otherwise."""
    side = math.isqrt(features)
    if side * side != features:
        raise ValueError(f"needs square images, the data has {features} pixels per image")
    return (1, side, side)


def resolve(text, features=784, classes=CLASSES, activation="relu", dropout=0.0):
    """The Arch of spec ``text`` on inputs of ``features`` values (square images when a layer needs
    them), ending in the implicit fc{classes}; ArchError naming the token that does not fit."""
    specs = parse(text) if text != "" else ()  # "": no hidden layer, only the final fc
    needs_image = any(TOKENS[s.kind].image for s in specs)
    if needs_image:
        try:
            shape = image_shape(features)
        except ValueError as e:
            raise ArchError(f"arch: {text!r}: {e}") from None
    else:
        shape = (features,)
    input_shape, layers = shape, []
    specs = specs + (Spec("fc", (("units", classes),)),)
    for i, spec in enumerate(specs):
        token, options = TOKENS[spec.kind], spec.values
        options["input_grad"] = i > 0  # the first layer computes no gradient for its input
        if spec.kind == "conv" and i + 1 < len(specs):  # it writes a padded conv's input through a buffer
            above = specs[i + 1]
            options["above_padded"] = above.kind == "conv" and above.values["padding"] == "same" \
                and above.values["kernel"] > 1
        last = i == len(specs) - 1
        if token.weighted and not last:
            follows_bn = i + 1 < len(specs) - 1 and specs[i + 1].kind == "bn"
            options["activation"] = None if follows_bn else activation
            if spec.kind == "fc" and dropout:
                options["dropout"] = dropout
        elif spec.kind == "bn" and i > 0 and TOKENS[specs[i - 1].kind].weighted:
            options["activation"] = activation
        elif last:
            options["activation"] = None
        name = spec.text() if not last else f"fc{classes}"
        try:
            out = tuple(token.shape(shape, options))
            if any(n < 1 for n in out):
                raise ValueError(f"leaves no output ({_shape_text(out)})")
            params = token.parameters(shape, options)
        except ValueError as e:
            where = f"at token {i + 1}" if not last else "at the final fc"
            raise ArchError(f"arch: {name!r} {where}: {e}") from None
        layers.append(Layer(spec.kind, options, shape, out, params, token.state(shape, options),
                            token.macs(shape, out, options), token.memory(shape, out, options), name))
        shape = out
    return Arch(format_arch(specs[:-1]), input_shape, classes, tuple(layers), activation, float(dropout))
