"""A trained network for prediction only: the one model the Python API, the drawing page and the report share.

    model = Model.load("runs/default/model.safetensors")
    model.predict(images)        # (n,) labels; images (n, 28, 28), (n, 784), (n, *input_shape) or one image
    model.predict_proba(images)  # (n, classes), rows summing to 1
    model.evaluate(images, labels)  # what `mnistlab test` reports
    committee = load(["runs/a", "runs/b", "runs/c"])  # a Committee: the same calls, the members' mean

Images are checked and reshaped by the network's input shape (uint8 pixels 0-255 or floats 0-1),
and evaluated in chunks, so memory stays bounded for any set and any layer type. It needs only
``weights.load_model`` and the network's ``logits``: no trainer, no run-folder code.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from .data import to_float
from .errors import InputError
from .nn.losses import softmax

CHUNK = 10_000  # images evaluated at once


class Predictor:
    """What a Model and a Committee share: the checks of images and labels, probabilities, evaluation.

    A subclass sets ``input_shape``, ``features`` and ``classes`` and gives ``chunks(x)`` (its logits,
    a chunk of rows at a time), ``probabilities(x)``, ``loss`` (a loss with ``value(logits, labels)``)
    and ``predict``."""

    def inputs(self, images):
        """(float32 (n, features) in [0, 1], whether it was one image) from any accepted form of
        ``images``: uint8 (or other integer) pixels 0-255 or floats 0-1; shapes (n, *input_shape), (n, 28, 28),
        (n, features), or one image in any of those shapes without the n."""
        x = np.asarray(images)
        features = self.features
        single = (x.ndim == 1 or x.shape == self.input_shape
                  or (x.ndim == 2 and x.shape[1] != features and x.size == features))
        if single:
            x = x.reshape(1, -1) if x.size == features else x[None]
        if x.ndim >= 2 and math.prod(x.shape[1:]) == features:
            x = x.reshape(len(x), features)
        else:
            shapes = "(n, 28, 28), " if features == 784 else ""
            if len(self.input_shape) > 1:
                shapes += f"(n, {', '.join(map(str, self.input_shape))}), "
            raise InputError(f"images: shape {np.shape(images)} does not fit the network's {features} inputs "
                             f"(expected {shapes}(n, {features}) or one image)")
        if x.dtype.kind in "iu":
            if x.size and (x.min() < 0 or x.max() > 255):
                raise InputError(f"images: integer pixels must be in 0..255, got {x.min()}..{x.max()}")
            if x.size and x.max() == 1:  # (X > 128).astype(int): read as 0-255, every image is near black
                warnings.warn("images: integer pixels whose largest value is 1 are read as 0-255, so they look "
                              "almost black to the model; for 0/1 images pass images * 255 or floats 0-1",
                              UserWarning, stacklevel=3)
            return to_float(x), single
        if x.dtype.kind != "f":
            raise InputError(f"images: expected uint8 pixels 0-255 or floats 0-1, got dtype {x.dtype}")
        if x.size and not np.isfinite(x).all():
            raise InputError("images: contain NaN or infinity")
        if x.size and (x.min() < 0 or x.max() > 1):
            raise InputError(f"images: float pixels must be in [0, 1], got {x.min():g}..{x.max():g} "
                             "(pass uint8 0-255, or divide by 255)")
        return np.ascontiguousarray(x, dtype=np.float32), single

    def predict_proba(self, images, chunk=CHUNK):
        """Class probabilities (n, classes), each row summing to 1; (classes,) for a single image."""
        x, single = self.inputs(images)
        out = self.probabilities(x, chunk)
        return out[0] if single else out

    def check_labels(self, labels, data_name, model_name):
        """InputError unless the model can predict every label in the set."""
        classes = self.classes
        if len(labels) and int(np.max(labels)) >= classes:
            raise InputError(f"{data_name}: has labels up to {int(np.max(labels))}, "
                             f"{model_name} predicts {classes} classes (0..{classes - 1})")

    def evaluate(self, images, labels):
        """What ``mnistlab test`` reports: accuracy, loss, per-class precision/recall, confusion matrix."""
        from .evaluate import score

        x, _ = self.inputs(images)
        if not len(x):
            raise InputError("images: none given; evaluate needs at least one labelled image")
        labels = class_labels(labels, self.classes)
        if len(labels) != len(x):
            raise InputError(f"labels: {len(labels)} labels for {len(x)} images")
        self.check_labels(labels, "labels", "the model")
        return score(self, x, labels)


class Model(Predictor):
    """A trained network and the metadata of its file (config, metrics, ...), ready to predict."""

    def __init__(self, network, metadata=None):
        self.network = network
        self.metadata = metadata or {}
        # Read on every call (the drawing page predicts one image at a time): plain attributes.
        self.input_shape = tuple(network.input_shape)  # excluding the batch: (784,) or (1, 28, 28)
        self.features = math.prod(self.input_shape)
        self.classes = network.classes

    @classmethod
    def load(cls, path):
        """The Model in a model file, or in a run folder (its model file); InputError naming the file if
        it is not one."""
        from .runfolder import MODEL
        from .weights import load_model

        path = Path(path)
        return cls(*load_model(path / MODEL if path.is_dir() else path))

    def __repr__(self):
        return f"Model(arch={self.arch!r}, activation={self.network.activation_name!r})"

    @property
    def arch(self):
        """The architecture spec ('fc800-fc800'; the final fc is implied)."""
        return self.network.arch.text

    @property
    def sizes(self):
        """Layer sizes like [784, 800, 800, 10] of an all-dense network; None for any other."""
        return self.network.sizes

    @property
    def parameter_count(self):
        return self.network.arch.parameter_count

    def describe(self):
        """'784-800-800-10' for an all-dense network, else its spec: for titles and model cards."""
        return "-".join(map(str, self.sizes)) if self.sizes else self.arch

    def chunks(self, x, chunk=CHUNK):
        """(start, logits) of network inputs x (n, features), ``chunk`` rows at a time."""
        for i in range(0, len(x), chunk):
            yield i, self.network.logits(x[i:i + chunk])

    def probabilities(self, x, chunk=CHUNK):
        """Softmax probabilities (n, classes), float64, of network inputs x (n, features)."""
        if len(x) <= chunk:  # one chunk (the drawing page's one image): no generator, no copy
            return softmax(self.network.logits(x).astype(np.float64))
        out = np.empty((len(x), self.classes))
        for i, logits in self.chunks(x, chunk):
            out[i:i + len(logits)] = softmax(logits.astype(np.float64))
        return out

    def predict(self, images):
        """The predicted labels (n,) as integers; an int for a single image."""
        x, single = self.inputs(images)
        labels = self.network.predict(x, CHUNK)
        return int(labels[0]) if single else labels

    @property
    def loss(self):
        return self.network.loss


class Committee(Predictor):
    """Several models read as one: the mean of their predicted probabilities. The members must take the
    same number of inputs and predict the same classes (an MLP and a CNN of 28x28 digits may sit together).

    ``names`` (one per member, e.g. the paths they were loaded from) label them in reports."""

    def __init__(self, members, names=None):
        members = list(members)
        names = [f"member {k + 1}" for k in range(len(members))] if names is None else [str(n) for n in names]
        if len(members) < 2:
            raise InputError(f"a committee needs at least two models, got {len(members)}")
        if len(names) != len(members):
            raise InputError(f"a committee of {len(members)} models given {len(names)} names")
        first = members[0]
        for name, member in zip(names[1:], members[1:]):
            if (member.features, member.classes) != (first.features, first.classes):
                raise InputError(f"committee: {name} takes {member.features} inputs and predicts {member.classes} "
                                 f"classes, {names[0]} {first.features} and {first.classes}; members must agree")
        self.members, self.names = members, names
        shapes = {member.input_shape for member in members}
        self.input_shape = first.input_shape if len(shapes) == 1 else (first.features,)
        self.features, self.classes = first.features, first.classes
        self.metadata = {"committee": [member.metadata for member in members]}

    @classmethod
    def load(cls, paths):
        """The Committee of the models in ``paths`` (model files, run folders or "pretrained"), named by them."""
        return cls([Model.load(weights_path(path)) for path in paths], [str(path) for path in paths])

    def __repr__(self):
        return f"Committee({', '.join(repr(member) for member in self.members)})"

    @property
    def arch(self):
        """The members' specs, joined by ' + ' ('conv32k3-...-fc128 + fc800-fc800')."""
        return " + ".join(dict.fromkeys(member.arch for member in self.members))

    sizes = None  # as any network that is not all-dense

    @property
    def parameter_count(self):
        return sum(member.parameter_count for member in self.members)

    def describe(self):
        """'committee of 3 (conv32k3-...)': for titles and model cards."""
        kinds = dict.fromkeys(member.describe() for member in self.members)
        return f"committee of {len(self.members)} ({', '.join(kinds)})"

    def member_chunks(self, x, chunk=CHUNK):
        """(start, the committee's logits, each member's logits) of network inputs x (n, features), ``chunk``
        rows at a time. The committee's logits are the log of the mean probabilities: their softmax is
        that mean, and the cross-entropy of them is the committee's."""
        for i in range(0, len(x), chunk):
            logits = [member.network.logits(x[i:i + chunk]) for member in self.members]
            mean = sum(softmax(z.astype(np.float64)) for z in logits) / len(logits)
            # the floor keeps a class every member rules out (all probabilities 0 in float64) finite
            yield i, np.log(np.maximum(mean, np.finfo(np.float64).tiny)), logits

    def chunks(self, x, chunk=CHUNK):
        """(start, logits) of network inputs x (n, features), ``chunk`` rows at a time (see member_chunks)."""
        for i, logits, _ in self.member_chunks(x, chunk):
            yield i, logits

    def probabilities(self, x, chunk=CHUNK):
        """The members' mean softmax probabilities (n, classes), float64, of network inputs x (n, features)."""
        out = np.empty((len(x), self.classes))
        for i in range(0, len(x), chunk):
            part = x[i:i + chunk]
            out[i:i + len(part)] = sum(member.probabilities(part, chunk) for member in self.members)
        out /= len(self.members)
        return out

    def predict(self, images):
        """The predicted labels (n,) as integers (the class of highest mean probability); an int for a single image."""
        x, single = self.inputs(images)
        labels = self.probabilities(x).argmax(axis=1)
        return int(labels[0]) if single else labels

    @property
    def loss(self):
        from .nn.losses import SoftmaxCrossEntropy

        return SoftmaxCrossEntropy()  # of the log mean probabilities: the committee's cross-entropy


PRETRAINED = "pretrained"  # the name load() takes for the model shipped with mnistlab


def committee_names(text):
    """The models named by ``text``: "A" or "A,B,C" (a committee). A path that exists is one model whatever it
    holds, since the study folders' names have commas (``runs/augment=zoom,rotate,shift/seed0``); else the text
    is split at its commas. InputError for an empty name between commas."""
    if text == PRETRAINED or Path(text).exists():
        return [text]
    names = text.split(",")
    if "" in names:
        raise InputError(f"--weights {text}: an empty name between commas (A,B,C names a committee)")
    return names


def weights_path(spec):
    """The model file or run folder ``spec`` names: a path, or "pretrained" for the shipped model."""
    if isinstance(spec, str) and spec == PRETRAINED:
        from .pretrained import shipped_model

        return shipped_model()
    return Path(spec)


def load(spec):
    """A Model from a model file, a run folder or "pretrained" (the shipped model); a Committee from a list or
    tuple of several of those (a list of one is that one Model). InputError naming what is wrong."""
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise InputError("no model given: name a model file, a run folder or pretrained")
        if len(spec) == 1:
            return load(spec[0])
        return Committee.load(spec)
    return Model.load(weights_path(spec))


def class_labels(labels, classes):
    """``labels`` as an integer array (n,), or InputError: text, fractions and classes out of range are
    refused (whole-number floats such as 2.0 are taken as the integers they are)."""
    y = np.asarray(labels).reshape(-1)
    if y.dtype.kind == "f" and y.size and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        shown = ", ".join(str(v) for v in y[:3]) + (", ..." if y.size > 3 else "")
        raise InputError(f"labels: expected integer classes 0..{classes - 1}, got {y.dtype} values ({shown})")
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise InputError(f"labels: expected classes 0..{classes - 1}, got {y.min()}..{y.max()}")
    return y
