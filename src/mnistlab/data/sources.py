"""Where data comes from: the bundled MNIST, a folder of IDX files, or a training and a test file, as a ``Dataset``.

``load_dataset(train, test)`` is the one entry point (``train=None``: the bundled MNIST);
``load_images_labels(path)`` reads one labelled set, as ``mnistlab test`` does. A file is told apart
by its content, not its name: an IDX file starts with two zero bytes, anything else is read as CSV.
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .csv import load_csv, write_csv
from .idx import PIXELS, checked_pair, find_idx, is_idx, load_idx, load_idx_pair

SPLITS = {"train": "train", "test": "t10k"}  # our split name -> MNIST file prefix
CSV_NAMES = {"train": "mnist_train.csv", "test": "mnist_test.csv"}


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test splits: images uint8 (n, 784) with values 0..255, labels uint8 (n,) with values 0..9."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str = ""  # where the data came from, for logs and model metadata

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if x.dtype != np.uint8 or y.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != PIXELS:
                raise ValueError(f"{split}: need uint8 images (n, {PIXELS}) and uint8 labels (n,)")
            if y.shape != (x.shape[0],):
                raise ValueError(f"{split}: {x.shape[0]} images but labels of shape {y.shape}")


def _load_folder_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split from a folder of the four MNIST IDX files, or else of mnist_train.csv/mnist_test.csv."""
    names = [f"{SPLITS[split]}-images-idx3-ubyte", f"{SPLITS[split]}-labels-idx1-ubyte"]
    found = [find_idx(folder, n) for n in names]
    if None in found and (folder / CSV_NAMES[split]).is_file():
        return load_csv(folder / CSV_NAMES[split])
    for name, path in zip(names, found):
        if path is None:
            raise InputError(f"{folder}: missing {name} (or {name}.gz)")
    return checked_pair(load_idx(found[0]), load_idx(found[1]), found[0], found[1])


def _load_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An IDX images file (its labels file looked up next to it) or a CSV file, gzipped or not, told by content."""
    return load_idx_pair(path) if is_idx(path) else load_csv(path)


def load_images_labels(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 784) and labels (n,) from one path.

    A CSV file; an IDX images file (``*images-idx3*``, its ``*labels-idx1*`` file is looked up next to it), either
    gzipped or not; or a folder, whose test split (t10k-*, else mnist_test.csv) is used, or its one
    unprefixed ``images-idx3-ubyte`` set (a folder of collected drawings, data/collection.py).
    """
    path = Path(path)
    if path.is_dir():
        single = find_idx(path, "images-idx3-ubyte")
        if single and not find_idx(path, "t10k-images-idx3-ubyte"):  # one set, as a drawings folder holds
            return load_idx_pair(single)
        return _load_folder_split(path, "test")
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    return _load_file(path)


def bundled_mnist_dir() -> Path:
    """The folder holding the bundled MNIST IDX files: in the installed package, else the repository's data/mnist."""
    candidates = []
    try:
        packaged = importlib.resources.files("mnistlab") / "_data" / "mnist"
        candidates.append(Path(str(packaged)))
    except (ModuleNotFoundError, AttributeError, TypeError, ValueError, OSError):
        pass
    candidates.append(Path(__file__).resolve().parents[3] / "data" / "mnist")
    names = [f"{p}-{k}" for p in SPLITS.values() for k in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    for folder in candidates:
        if folder.is_dir() and all(find_idx(folder, n) for n in names):
            return folder
    raise InputError(f"bundled MNIST not found (looked in {', '.join(map(str, candidates))})")


_CACHE: dict | None = None  # path stamps -> Dataset, while cache_datasets() is on


def cache_datasets(enabled: bool = True) -> None:
    """Keep what ``load_dataset`` loads in memory for the rest of this process, keyed by the paths and
    their modification times. A sweep worker runs many short runs on the same data, and loading and
    decompressing MNIST took 0.3 s of each. The cached arrays are made read-only. Turning it on
    again keeps what it holds (a sweep worker turns it on before each run)."""
    global _CACHE
    if not enabled:
        _CACHE = None
    elif _CACHE is None:
        _CACHE = {}


def _stamp(path):
    if path is None:
        return None
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path), stat.st_mtime_ns, stat.st_size)


def load_dataset(train: str | os.PathLike | None = None, test: str | os.PathLike | None = None) -> Dataset:
    """Train and test splits (see ``_load_dataset``), from memory when ``cache_datasets()`` is on."""
    if _CACHE is None:
        return _load_dataset(train, test)
    key = (_stamp(train), _stamp(test))
    if key not in _CACHE:
        dataset = _load_dataset(train, test)
        for array in (dataset.train_images, dataset.train_labels, dataset.test_images, dataset.test_labels):
            array.setflags(write=False)
        _CACHE[key] = dataset
    return _CACHE[key]


def _load_dataset(train: str | os.PathLike | None = None, test: str | os.PathLike | None = None) -> Dataset:
    """Train and test splits from a folder of MNIST IDX files, or from a training file (CSV or IDX images) and a
    test set; `train=None` means bundled MNIST.

    `test` is any path `load_images_labels` accepts (a CSV or IDX file, or a folder's test split); with a folder it
    replaces the folder's own t10k split, with a training file it is required.
    """
    folder = bundled_mnist_dir() if train is None else Path(train)
    if folder.is_dir():
        train_xy = _load_folder_split(folder, "train")
        test_xy = _load_folder_split(folder, "test") if test is None else load_images_labels(test)
        source = f"bundled MNIST ({folder})" if train is None else str(folder)
        return Dataset(*train_xy, *test_xy, source=source if test is None else f"{source} + test {test}")
    if not folder.exists():
        raise InputError(f"{folder}: no such file or folder")
    if test is None:
        raise InputError(f"{folder}: a training file needs a CSV test file, an IDX images file or a folder as "
                         "its test set too (--test-data)")
    return Dataset(*_load_file(folder), *load_images_labels(test), source=f"{folder} + {test}")


def export_csv(dataset: Dataset, folder: str | os.PathLike) -> tuple[Path, Path]:
    """Write `mnist_train.csv` and `mnist_test.csv` (no header, label first) into `folder`, atomically.

    Creates `folder` if needed and returns the two paths.
    """
    folder = Path(folder)
    paths = (folder / CSV_NAMES["train"], folder / CSV_NAMES["test"])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_csv(paths[0], dataset.train_images, dataset.train_labels)
        write_csv(paths[1], dataset.test_images, dataset.test_labels)
    except OSError as e:
        raise InputError(f"{e.filename or folder}: cannot write: {e.strerror or e}") from None
    return paths
