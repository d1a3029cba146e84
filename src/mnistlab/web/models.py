"""The trained models a page can choose from: every ``model.safetensors`` under a runs folder.

A model is named by its path relative to the runs folder (``default/model.safetensors``); a name is
checked to stay inside that folder. Loaded networks are kept, and reloaded when their file changes.
Uses ``weights.load_model`` only: never the training or run code.
"""

import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ..data.drawing import SIZE
from ..errors import InputError
from ..nn import softmax
from ..weights import load_model

MODEL_FILE = "model.safetensors"
MAX_LISTED = 200  # newest first; a runs folder of thousands of sweeps stays quick to list
TRAIN_HINT = "train one with `make run` (or `mnistlab train --out runs/default`), or pass --weights FILE"


class UnknownModel(LookupError):
    """A model name that names no model file inside the runs folder."""


def find_default_weights(runs_dir):
    """``runs/default/model.safetensors`` if it exists, else the newest ``model.safetensors`` under runs/."""
    runs_dir = Path(runs_dir)
    default = runs_dir / "default" / MODEL_FILE
    if default.is_file():
        return default
    found = model_files(runs_dir)
    if not found:
        raise InputError(f"{runs_dir}: no trained model found; {TRAIN_HINT}")
    return found[0]


def model_files(runs_dir):
    """Every ``model.safetensors`` under ``runs_dir``, newest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    stamped = []
    for path in runs_dir.rglob(MODEL_FILE):
        try:
            stamped.append((path.stat().st_mtime, path))
        except OSError:  # removed while listing
            continue
    return [path for _, path in sorted(stamped, reverse=True)[:MAX_LISTED]]


@dataclass(frozen=True)
class Model:
    """One loaded model: its name, network and metadata (sizes, activation, metrics, config, ...)."""

    name: str
    network: object
    meta: dict

    def info(self, default=False):
        metrics = self.meta.get("metrics") or {}
        sizes = self.network.sizes
        return {"name": self.name, "default": default, "sizes": sizes,
                "activation": self.network.activation_name,
                "parameters": int(sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))),
                "test_accuracy": metrics.get("test_accuracy"), "epochs": metrics.get("epochs"),
                "data": data_description(metrics.get("data")), "seed": self.meta.get("seed")}

    def predict(self, image28):
        """(digit, probabilities (10,)) for a (28, 28) uint8 image."""
        x = image28.reshape(1, SIZE * SIZE).astype(np.float32) / 255.0  # the training normalisation
        probabilities = softmax(self.network.logits(x).astype(np.float64))[0]
        return int(probabilities.argmax()), probabilities


def data_description(source):
    """A model's training data as clients see it: no server paths (``bundled MNIST (/srv/...)`` ->
    ``bundled MNIST``, ``/srv/a/train.csv + test /srv/a/test.csv`` -> ``train.csv + test test.csv``)."""
    if not source:
        return source
    parts = []
    for part in source.split(" + "):
        label = "test " if part.startswith("test ") else ""
        part = part.removeprefix("test ")
        parts.append(label + ("bundled MNIST" if part.startswith("bundled MNIST") else PurePosixPath(part).name))
    return " + ".join(parts)


class Catalogue:
    """The default model plus every model under ``runs_dir``, loaded on first use."""

    def __init__(self, runs_dir, default_path):
        self.runs_dir = Path(runs_dir).resolve()
        self.default_path = Path(default_path).resolve()
        self.default_name = self.name_of(self.default_path)
        self._cache = {}  # resolved path -> ((mtime_ns, size), Model)
        self._lock = threading.Lock()
        self.get(None)  # a broken default model is an error at start, not on the first request

    def name_of(self, path):
        try:
            return path.relative_to(self.runs_dir).as_posix()
        except ValueError:
            # a --weights file outside the runs folder: its folder's name and its own, no server path
            return f"{path.parent.name}/{path.name}"

    def resolve(self, name):
        """The file a model name stands for; UnknownModel unless it is a model file in the runs folder."""
        if name is None or name == "" or name == self.default_name:
            return self.default_path
        if "\0" in name or "\\" in name or Path(name).is_absolute():
            raise UnknownModel(f"model {name[:100]!r}: not a path inside the runs folder")
        try:
            path = (self.runs_dir / name).resolve()
            found = path.is_relative_to(self.runs_dir) and path.suffix == ".safetensors" and path.is_file()
        except (OSError, ValueError):  # a name too long for the file system, a symlink loop, ...
            found = False
        if not found:
            raise UnknownModel(f"model {name[:100]!r}: no such model in the runs folder")
        return path

    def get(self, name):
        """The loaded Model for ``name`` (None: the default); InputError if its file is not a model."""
        path = self.resolve(name)
        try:
            stat = path.stat()
        except OSError:
            if path == self.default_path:  # `draw --weights` naming nothing: a bad argument, not a 404
                raise InputError(f"{path}: no such weights file (give a model.safetensors file or a run "
                                 "folder)") from None
            raise UnknownModel(f"model {name!r}: no such model") from None
        # A file replaced by a rename is a new inode: its cached network is dropped even if the new file
        # has the old one's size and time. (load_model reads metadata and tensors from one open file.)
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._cache.get(path)
            if cached is None or cached[0] != stamp:
                network, meta = load_model(path)
                if network.sizes[0] != SIZE * SIZE or network.sizes[-1] != 10:
                    raise InputError(f"{path}: a {network.sizes} network does not read 28x28 digits")
                cached = (stamp, Model(self.name_of(path), network, meta))
                self._cache[path] = cached
        return cached[1]

    def without_paths(self, message, name):
        """A load error of model ``name`` as a client may see it: no server path in it."""
        message = message.removeprefix(f"{self.resolve(name)}: ")
        for folder in {self.runs_dir, self.default_path.parent}:
            message = message.replace(f"{folder}/", "")
        return message

    def listing(self):
        """Info for the default model and every readable model under the runs folder."""
        paths = [self.default_path] + [p.resolve() for p in model_files(self.runs_dir)]
        out, seen = [], set()
        for path in paths:
            if path in seen:
                continue
            seen.add(path)
            try:
                model = self.get(None if path == self.default_path else self.name_of(path))
            except (InputError, UnknownModel):
                continue  # an unreadable file is simply not offered
            out.append(model.info(default=path == self.default_path))
        return out
