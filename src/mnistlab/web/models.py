"""The trained models a page can choose from: the served one (a model or a committee of several), the
model shipped with mnistlab, and every ``model.safetensors`` under a runs folder.

A model is named by its path relative to the runs folder (``default/model.safetensors``); a name is
checked to stay inside that folder. The shipped model is ``pretrained``; a committee served with
``--weights A,B,C`` is ``committee: A, B, C``. Loaded models are kept, and reloaded when a file changes.
Uses the inference model (``inference.Model``, ``Committee``) only: never the training or run code.
"""

import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..data.drawing import SIZE
from .. import pretrained as shipped
from ..errors import InputError
from ..inference import PRETRAINED, Committee, Model
from ..runfolder import MODEL as MODEL_FILE

MAX_LISTED = 200  # newest first; a runs folder of thousands of sweeps stays quick to list
TRAIN_HINT = "train one with `make run` (or `mnistlab train --out runs/default`), or pass --weights FILE"


class UnknownModel(LookupError):
    """A model name that names no model file inside the runs folder."""


def find_default_weights(runs_dir, pretrained=None):
    """``runs/default/model.safetensors`` if it exists, else the model shipped with mnistlab (the file
    ``pretrained``, by default ``pretrained.FILE``), else the newest ``model.safetensors`` under runs/."""
    runs_dir = Path(runs_dir)
    default = runs_dir / "default" / MODEL_FILE
    if default.is_file():
        return default
    shipped_file = shipped.available(pretrained)
    if shipped_file is not None:
        return shipped_file
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
class Entry:
    """One model of the catalogue: its name and the loaded inference.Model (with its file's metadata) or
    Committee (whose ``names`` are its members' catalogue names)."""

    name: str
    model: Model | Committee

    def info(self, default=False):
        """The model card: what /api/model answers. A committee's lists its members' cards."""
        model, meta = self.model, self.model.metadata
        if isinstance(model, Committee):
            members = [Entry(name, member).info() for name, member in zip(model.names, model.members)]
            return {"name": self.name, "default": default, "sizes": None, "arch": model.arch,
                    "activation": " / ".join(dict.fromkeys(m["activation"] for m in members)),
                    "parameters": model.parameter_count, "test_accuracy": None, "epochs": None,
                    "data": " / ".join(dict.fromkeys(m["data"] for m in members if m["data"])) or None, "seed": None,
                    "members": members, "pretrained": None}
        metrics = meta.get("metrics") or {}
        return {"name": self.name, "default": default, "sizes": model.sizes, "arch": model.arch,
                "activation": model.network.activation_name, "parameters": model.parameter_count,
                "test_accuracy": metrics.get("test_accuracy"), "epochs": metrics.get("epochs"),
                "data": data_description(metrics.get("data")), "seed": meta.get("seed"),
                "members": None, "pretrained": shipped.summary(meta.get("pretrained"))}

    def predict(self, image28):
        """(digit, probabilities (10,)) for a (28, 28) uint8 image."""
        probabilities = self.model.predict_proba(image28)
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


COMMITTEE = "committee: "  # a committee's name: this, then its members' names joined by ", "


class Catalogue:
    """The served model (a model file, or a list of several: their committee), the model shipped with mnistlab
    (listed when its file, ``pretrained``, by default ``pretrained.FILE``, exists) and every model under
    ``runs_dir``, loaded on first use."""

    def __init__(self, runs_dir, default, pretrained=None):
        self.runs_dir = Path(runs_dir).resolve()
        self.pretrained = Path(shipped.FILE if pretrained is None else pretrained).resolve()
        several = default if isinstance(default, (list, tuple)) else [default]
        self.default_paths = tuple(Path(path).resolve() for path in several)
        self.default_name = self.name_of(self.default_paths)
        self._cache = {}  # resolved path -> ((inode, mtime_ns, size), Model)
        self._entries = {}  # tuple of resolved paths -> Entry, rebuilt when a member's Model is reloaded
        self._lock = threading.Lock()
        self.get(None)  # a broken default model is an error at start, not on the first request

    def name_of(self, paths):
        """The catalogue name of a model file, or of a tuple of them (one: its name; several: a committee's)."""
        if isinstance(paths, tuple):
            if len(paths) == 1:
                return self.name_of(paths[0])
            return COMMITTEE + ", ".join(self.name_of(path) for path in paths)
        if paths == self.pretrained:
            return PRETRAINED
        try:
            return paths.relative_to(self.runs_dir).as_posix()
        except ValueError:
            # a --weights file outside the runs folder: its folder's name and its own, no server path
            return f"{paths.parent.name}/{paths.name}"

    def resolve(self, name):
        """The files (a tuple) a model name stands for; UnknownModel unless it is the served model, the
        shipped one or a model file in the runs folder."""
        if name is None or name == "" or name == self.default_name:
            return self.default_paths
        if name == PRETRAINED and self.pretrained.is_file():
            return (self.pretrained,)
        if "\0" in name or "\\" in name or Path(name).is_absolute():
            raise UnknownModel(f"model {name[:100]!r}: not a path inside the runs folder")
        try:
            path = (self.runs_dir / name).resolve()
            found = path.is_relative_to(self.runs_dir) and path.suffix == ".safetensors" and path.is_file()
        except (OSError, ValueError):  # a name too long for the file system, a symlink loop, ...
            found = False
        if not found:
            raise UnknownModel(f"model {name[:100]!r}: no such model in the runs folder")
        return (path,)

    def load(self, path, name):
        """The Model in ``path``, from the cache unless its file changed; InputError if it is not a model."""
        try:
            stat = path.stat()
        except OSError:
            if path in self.default_paths:  # `draw --weights` naming nothing: a bad argument, not a 404
                raise InputError(f"{path}: no such weights file (give a model.safetensors file or a run "
                                 "folder)") from None
            raise UnknownModel(f"model {name!r}: no such model") from None
        # A file replaced by a rename is a new inode: its cached network is dropped even if the new file
        # has the old one's size and time. (load_model reads metadata and tensors from one open file.)
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached is None or cached[0] != stamp:
            model = Model.load(path)
            if model.features != SIZE * SIZE or model.classes != 10:
                raise InputError(f"{path}: a {model.describe()} network does not read 28x28 digits")
            model.network = model.network.folded()  # served, never trained: batch norms folded in
            cached = (stamp, model)
            self._cache[path] = cached
        return cached[1]

    def get(self, name):
        """The loaded Entry for ``name`` (None: the served model); InputError if a file is not a model."""
        paths = self.resolve(name)
        with self._lock:
            members = [self.load(path, name) for path in paths]
            entry = self._entries.get(paths)
            if entry is None or (entry.model.members if len(members) > 1 else [entry.model]) != members:
                model = members[0] if len(members) == 1 else Committee(members, [self.name_of(p) for p in paths])
                entry = self._entries[paths] = Entry(self.name_of(paths), model)
        return entry

    def without_paths(self, message, name):
        """A load error of model ``name`` as a client may see it: no server path in it."""
        for path in self.resolve(name):
            message = message.removeprefix(f"{path}: ")
        for folder in {self.runs_dir, self.pretrained.parent} | {path.parent for path in self.default_paths}:
            message = message.replace(f"{folder}/", "")
        return message

    def listing(self):
        """Info for the served model, the shipped one and every readable model under the runs folder."""
        candidates = [self.default_paths]
        if self.pretrained.is_file():
            candidates.append((self.pretrained,))
        candidates += [(p.resolve(),) for p in model_files(self.runs_dir)]
        out, seen = [], set()
        for paths in candidates:
            if paths in seen:
                continue
            seen.add(paths)
            try:
                entry = self.get(None if paths == self.default_paths else self.name_of(paths))
            except (InputError, UnknownModel):
                continue  # an unreadable file is simply not offered
            out.append(entry.info(default=paths == self.default_paths))
        return out
