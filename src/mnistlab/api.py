"""The Python API, for notebooks and scripts: train a run, load a model, predict, load the data.

    import mnistlab
    run = mnistlab.train(hidden=[100, 100], epochs=2, out="runs/nb")   # keys as in a TOML config
    run.metrics["test_accuracy"], run.history                            # floats, a list of per-epoch dicts
    model = mnistlab.load("runs/nb/model.safetensors")                   # or the run folder itself
    model.predict(images)          # (n,) labels; images (n, 28, 28) or (n, 784), uint8 0-255 or float 0-1
    model.predict_proba(images)    # (n, 10), rows sum to 1
    mnistlab.load_mnist()          # the bundled data set as arrays

Each call is one library function under the command line's: ``train`` is ``mnistlab train``,
``Model.evaluate`` is ``mnistlab test``. Bad arguments raise ``InputError`` (a ``ValueError``) with
the message the command line prints; ``error.field`` names the setting at fault.
"""

from __future__ import annotations

import csv
import time
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import data as datasets
from .config import from_values
from .errors import InputError
from .evaluate import check_fits, score
from .nn import softmax
from .run import HISTORY, MODEL, start_run
from .weights import load_model, read_metadata

__all__ = ["MNIST", "InputError", "Model", "Run", "load", "load_mnist", "read_history", "train"]


class Model:
    """A trained network, ready to predict. ``metadata`` is what its file records (sizes, activation,
    config, metrics, ...)."""

    def __init__(self, network, metadata=None):
        self.network = network
        self.metadata = metadata or {}

    def __repr__(self):
        return f"Model(sizes={self.sizes}, activation={self.network.activation_name!r})"

    @property
    def sizes(self):
        return self.network.sizes

    @property
    def classes(self):
        return self.network.sizes[-1]

    def inputs(self, images):
        """float32 (n, features) in [0, 1] from any accepted form of ``images``, and whether it was a
        single image. uint8 (or other integer) pixels are 0-255, floats 0-1; shapes (n, 28, 28),
        (n, 784), or one image (28, 28) or (784,)."""
        x = np.asarray(images)
        features = self.sizes[0]
        single = x.ndim == 1 or (x.ndim == 2 and x.shape[1] != features and x.size == features)
        if single:
            x = x[None]
        if x.ndim >= 2 and int(np.prod(x.shape[1:])) == features:
            x = x.reshape(len(x), features)
        else:
            raise InputError(f"images: shape {np.shape(images)} does not fit the network's {features} inputs "
                             f"(expected (n, 28, 28), (n, {features}) or one image)")
        if x.dtype.kind in "iu":
            if x.size and (x.min() < 0 or x.max() > 255):
                raise InputError(f"images: integer pixels must be in 0..255, got {x.min()}..{x.max()}")
            if x.size and x.max() == 1:  # (X > 128).astype(int): read as 0-255, every image is near black
                warnings.warn("images: integer pixels whose largest value is 1 are read as 0-255, so they look "
                              "almost black to the model; for 0/1 images pass images * 255 or floats 0-1",
                              UserWarning, stacklevel=3)
            return datasets.to_float(x), single
        if x.dtype.kind != "f":
            raise InputError(f"images: expected uint8 pixels 0-255 or floats 0-1, got dtype {x.dtype}")
        if x.size and not np.isfinite(x).all():
            raise InputError("images: contain NaN or infinity")
        if x.size and (x.min() < 0 or x.max() > 1):
            raise InputError(f"images: float pixels must be in [0, 1], got {x.min():g}..{x.max():g} "
                             "(pass uint8 0-255, or divide by 255)")
        return np.ascontiguousarray(x, dtype=np.float32), single

    def predict_proba(self, images, chunk=10_000):
        """Class probabilities (n, classes), each row summing to 1; (classes,) for a single image."""
        x, single = self.inputs(images)
        out = np.empty((len(x), self.classes))
        for i in range(0, len(x), chunk):
            out[i:i + chunk] = softmax(self.network.logits(x[i:i + chunk]).astype(np.float64))
        return out[0] if single else out

    def predict(self, images):
        """The predicted labels (n,) as integers; an int for a single image."""
        x, single = self.inputs(images)
        labels = self.network.predict(x)
        return int(labels[0]) if single else labels

    def evaluate(self, images, labels):
        """What ``mnistlab test`` reports: accuracy, loss, per-class precision/recall, confusion matrix."""
        x, _ = self.inputs(images)
        if not len(x):
            raise InputError("images: none given; evaluate needs at least one labelled image")
        labels = class_labels(labels, self.classes)
        if len(labels) != len(x):
            raise InputError(f"labels: {len(labels)} labels for {len(x)} images")
        check_fits(self.network, x, labels, "labels", "the model")
        return score(self.network, x, labels)


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


@dataclass
class Run:
    """A finished run: its folder, its metrics.json, its per-epoch history and its model."""

    out_dir: Path
    metrics: dict
    history: list  # one dict per epoch: epoch, train_loss, train_accuracy, val_loss, ... (history.csv)
    model: Model | None  # None if the run diverged


def read_history(path):
    """history.csv as a list of dicts of numbers (epoch as int, an empty cell as NaN)."""
    with open(path, newline="") as f:
        return [{k: int(v) if k == "epoch" else float(v or "nan") for k, v in row.items()}
                for row in csv.DictReader(f)]


def train(*, out=None, log=print, progress=False, **settings):
    """Train a run with ``settings`` (the TOML config's keys: ``hidden=[100, 100]``, ``lr=0.1``, ...;
    the rest keep their defaults) into the run folder ``out`` (default: a new ``runs/<date-time>``).

    Returns a Run. ``log`` receives each progress line (None: quiet). Bad settings raise InputError.
    """
    for key in ("data", "test_data", "init_from"):  # a NumPy array here once filled the error with its digits
        value = settings.get(key)
        if value is not None and not isinstance(value, (str, PathLike)):
            raise InputError(f"train(): {key} must be a path (a CSV or IDX file, or a folder of IDX files), "
                             f"not {type(value).__name__}; to train on arrays, write them first with "
                             "mnistlab.data.export_csv", field=key)
    config = from_values(settings, "train()")
    quiet = log or (lambda message: None)
    if out is None:
        result = start_run(config, f"runs/{time.strftime('%Y%m%d-%H%M%S')}", progress, quiet, unique=True)
    else:
        result = start_run(config, out, progress, quiet)
    history = read_history(result.out_dir / HISTORY)
    model = None if result.network is None else Model(result.network, read_metadata(result.out_dir / MODEL))
    return Run(result.out_dir, result.metrics, history, model)


def load(path):
    """The Model in a weights file (``model.safetensors``), or in a run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL
    network, meta = load_model(path)
    return Model(network, meta)


class MNIST(NamedTuple):
    """MNIST as arrays: images uint8 (n, 28, 28) with values 0..255, labels uint8 (n,) with values 0..9."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def load_mnist(path=None):
    """The bundled MNIST (or a folder of MNIST-format IDX files) as an MNIST record of arrays."""
    ds = datasets.load_dataset(path)
    return MNIST(ds.train_images.reshape(-1, 28, 28), ds.train_labels,
                 ds.test_images.reshape(-1, 28, 28), ds.test_labels)

