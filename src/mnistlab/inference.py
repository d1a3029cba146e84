"""A trained network for prediction only: the one model the Python API, the drawing page and the report share.

    model = Model.load("runs/default/model.safetensors")
    model.predict(images)        # (n,) labels; images (n, 28, 28), (n, 784), (n, *input_shape) or one image
    model.predict_proba(images)  # (n, classes), rows summing to 1
    model.evaluate(images, labels)  # what `mnistlab test` reports

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


class Model:
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

    def predict_proba(self, images, chunk=CHUNK):
        """Class probabilities (n, classes), each row summing to 1; (classes,) for a single image."""
        x, single = self.inputs(images)
        out = self.probabilities(x, chunk)
        return out[0] if single else out

    def predict(self, images):
        """The predicted labels (n,) as integers; an int for a single image."""
        x, single = self.inputs(images)
        labels = self.network.predict(x, CHUNK)
        return int(labels[0]) if single else labels

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
