"""The Python API, for notebooks and scripts: train a run, load a model, predict, load the data.

    import mnistlab
    run = mnistlab.train(hidden=[100, 100], epochs=2, out="runs/nb")   # keys as in a TOML config
    run.metrics["test_accuracy"], run.history                            # floats, a list of per-epoch dicts
    model = mnistlab.load("runs/nb/model.safetensors")                   # or the run folder itself
    committee = mnistlab.load(["runs/a", "runs/b", "runs/c"])            # the mean of their probabilities
    mnistlab.load("pretrained")                                          # the model shipped with mnistlab
    model.predict(images)          # (n,) labels; images (n, 28, 28) or (n, 784), uint8 0-255 or float 0-1
    model.predict_proba(images)    # (n, 10), rows sum to 1
    mnistlab.load_mnist()          # the bundled data set as arrays

Each call is one library function under the command line's: ``train`` is ``mnistlab train``,
``Model.evaluate`` is ``mnistlab test``. Bad arguments raise ``InputError`` (a ``ValueError``) with
the message the command line prints; ``error.field`` names the setting at fault.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import data as datasets
from .config import from_values
from .errors import InputError
from .inference import Committee, Model
from .inference import load as load_model
from .run import start_run
from .runfolder import HISTORY, MODEL, read_history
from .weights import read_metadata

__all__ = ["MNIST", "Committee", "InputError", "Model", "Run", "load", "load_mnist", "read_history", "train"]


@dataclass
class Run:
    """A finished run: its folder, its metrics.json, its per-epoch history and its model."""

    out_dir: Path
    metrics: dict
    history: list  # one dict per epoch: epoch, train_loss, train_accuracy, val_loss, ... (history.csv)
    model: Model | None  # None if the run diverged


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
    """The Model in a weights file (``model.safetensors``), in a run folder, or "pretrained" (the model shipped
    with mnistlab); a list of several of those: their Committee, which predicts as one Model does."""
    return load_model(path)


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

