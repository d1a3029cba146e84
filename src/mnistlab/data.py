"""Load, check and convert MNIST-style data (IDX files, gzipped or not, and label-first CSV) into uint8 arrays.

Every problem with a user's file raises `InputError` with one line naming the file and, for CSV, the line and column.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import io
import math
import numbers
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistlab.errors import InputError
from mnistlab.files import atomic_write

PIXELS = 28 * 28
COLUMNS = 1 + PIXELS  # label, then pixel0..pixel783 (Kaggle's names)
_SPLITS = {"train": "train", "test": "t10k"}  # our split name -> MNIST file prefix
_CSV_NAMES = {"train": "mnist_train.csv", "test": "mnist_test.csv"}
_CHUNK = 4096  # CSV rows parsed / formatted per block


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


# ---------------------------------------------------------------- IDX


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped if they start with the gzip magic 1f 8b (whatever the extension)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (gzip.BadGzipFile, EOFError, OSError, zlib.error) as e:
            raise InputError(f"{path}: corrupt gzip stream: {e}") from None
    return data


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file of unsigned bytes (rank 1 = labels, rank 3 = images), gzipped or not; return a uint8 array."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise InputError(f"{path}: not an IDX file: only {len(data)} bytes")
    if data[:2] != b"\0\0":
        raise InputError(f"{path}: not an IDX file: magic {data[:4].hex()}, expected 00000801 or 00000803")
    if data[2] != 0x08:
        raise InputError(f"{path}: unsupported IDX data type 0x{data[2]:02x} (only 0x08, unsigned byte)")
    ndim = data[3]
    if ndim not in (1, 3):
        raise InputError(f"{path}: unsupported IDX rank {ndim} (expected 1 for labels or 3 for images)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InputError(f"{path}: truncated: {len(data)} bytes, shorter than the {header}-byte header")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected, found = math.prod(dims), len(data) - header
    if found != expected:
        what = "truncated" if found < expected else "trailing bytes"
        shape = "x".join(map(str, dims))
        raise InputError(f"{path}: {what}: header says {shape} = {expected} bytes, found {found}")
    return np.frombuffer(data, np.uint8, count=expected, offset=header).reshape(dims).copy()


def _find_idx(folder: Path, name: str) -> Path | None:
    """`folder/name`, else `folder/name.gz`, else None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _checked_pair(images: np.ndarray, labels: np.ndarray, ipath: Path, lpath: Path) -> tuple[np.ndarray, np.ndarray]:
    """Check an IDX images/labels pair and return images flattened to (n, 784)."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise InputError(f"{ipath}: expected 28x28 images, found shape {'x'.join(map(str, images.shape))}")
    if labels.ndim != 1:
        raise InputError(f"{lpath}: expected a rank-1 labels file, found rank {labels.ndim}")
    if len(images) != len(labels):
        raise InputError(f"{ipath}: {len(images)} images but {lpath} has {len(labels)} labels")
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise InputError(f"{lpath}: label {labels[bad[0]]} at index {bad[0]} is outside 0..9")
    return images.reshape(len(images), PIXELS), labels


def _load_idx_pair(images_path: Path) -> tuple[np.ndarray, np.ndarray]:
    name = images_path.name
    if "images-idx3" not in name:
        raise InputError(f"{images_path}: cannot tell which labels file goes with it (name lacks 'images-idx3')")
    labels_name = name.replace("images-idx3", "labels-idx1").removesuffix(".gz")
    labels_path = _find_idx(images_path.parent, labels_name)
    if labels_path is None:
        raise InputError(f"{images_path}: matching labels file {labels_name}[.gz] not found next to it")
    return _checked_pair(load_idx(images_path), load_idx(labels_path), images_path, labels_path)


def _load_folder_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split from a folder of the four MNIST IDX files, or else of mnist_train.csv/mnist_test.csv."""
    names = [f"{_SPLITS[split]}-images-idx3-ubyte", f"{_SPLITS[split]}-labels-idx1-ubyte"]
    found = [_find_idx(folder, n) for n in names]
    if None in found and (folder / _CSV_NAMES[split]).is_file():
        return load_csv(folder / _CSV_NAMES[split])
    for name, path in zip(names, found):
        if path is None:
            raise InputError(f"{folder}: missing {name} (or {name}.gz)")
    return _checked_pair(load_idx(found[0]), load_idx(found[1]), found[0], found[1])


# ---------------------------------------------------------------- CSV


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _column(j: int) -> str:
    return f"column {j + 1} ({'label' if j == 0 else f'pixel{j - 1}'})"


def _scan(path: Path, numbered: list[tuple[int, str]]) -> None:
    """Slow path: find and raise the first bad cell among (line number, line) pairs."""
    for lineno, line in numbered:
        cells = line.split(",")
        if len(cells) != COLUMNS:
            got = len(cells)
            raise InputError(f"{path}:{lineno}: expected {COLUMNS} columns (label + {PIXELS} pixels), got {got}")
        for j, cell in enumerate(cells):
            try:
                value = float(cell)
            except ValueError:
                raise InputError(f"{path}:{lineno}: {_column(j)}: {cell.strip()!r} is not a number") from None
            top = 9 if j == 0 else 255
            if not value.is_integer():
                raise InputError(f"{path}:{lineno}: {_column(j)}: {cell.strip()} is not a whole number")
            if not 0 <= value <= top:
                raise InputError(f"{path}:{lineno}: {_column(j)}: {cell.strip()} is outside 0..{top}")


def _parse_block(lines: list[str]) -> np.ndarray | None:
    """Fast path: the block as a (rows, 785) uint8 array, or None if anything is off (then `_scan` says what)."""
    text = "\n".join(lines)
    for dtype in (np.int16, np.float64):  # integers first (fast); whole-number floats such as "0.0" also pass
        try:
            block = np.loadtxt(io.StringIO(text), delimiter=",", dtype=dtype, comments=None, ndmin=2)
        except ValueError:
            continue
        if block.shape[1] != COLUMNS or (dtype is np.float64 and not np.all(block == np.floor(block))):
            return None
        if block.min() < 0 or block[:, 0].max() > 9 or block[:, 1:].max() > 255:
            return None
        return block.astype(np.uint8)
    return None


def load_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a label-first CSV as uint8 images (n, 784) and labels (n,).

    Each row is label (0..9) then 784 pixels (0..255), comma-separated. The first line is a header (e.g. Kaggle's
    ``label,pixel0,...,pixel783``) when none of its cells is a number. Values are integers; whole-number floats such
    as ``255.0`` are also accepted. LF, CRLF or CR line endings, a final newline or not, and empty lines (skipped) are
    all fine; the file may be gzipped. Errors name ``file:line`` (1-based, header included) and the column.
    """
    path = Path(path)
    try:
        text = _read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not a UTF-8 text file (bad byte at offset {e.start})") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line]  # empty lines are skipped
    if not numbered:
        raise InputError(f"{path}: empty file, no data rows")
    first = numbered[0][1].split(",")
    if not any(_is_number(cell) for cell in first):  # a header such as Kaggle's label,pixel0,...,pixel783
        if len(first) != COLUMNS:
            raise InputError(f"{path}:{numbered[0][0]}: header has {len(first)} columns, expected {COLUMNS}")
        numbered = numbered[1:]
        if not numbered:
            raise InputError(f"{path}: only a header line, no data rows")
    blocks = []
    for start in range(0, len(numbered), _CHUNK):
        chunk = numbered[start : start + _CHUNK]
        block = _parse_block([line for _, line in chunk])
        if block is None:
            _scan(path, chunk)
            raise InputError(f"{path}:{chunk[0][0]}-{chunk[-1][0]}: cannot parse these lines as CSV")
        blocks.append(block)
    table = np.concatenate(blocks)
    return np.ascontiguousarray(table[:, 1:]), table[:, 0].copy()


def _csv_rows(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Format rows as 'label,p0,...,p783\\n' without a Python loop per value (values are 0..255)."""
    table = np.column_stack((labels, images)).astype(np.int32)
    digits = 1 + (table >= 10) + (table >= 100)
    ends = np.cumsum(digits.ravel() + 1)  # index just past each value's separator
    out = np.empty(int(ends[-1]), np.uint8)
    sep = ends - 1
    out[sep] = ord(",")
    out[sep[COLUMNS - 1 :: COLUMNS]] = ord("\n")
    flat, nd = table.ravel(), digits.ravel()
    out[sep - 1] = 48 + flat % 10
    two, three = nd >= 2, nd == 3
    out[sep[two] - 2] = 48 + flat[two] // 10 % 10
    out[sep[three] - 3] = 48 + flat[three] // 100
    return out.tobytes()


def _write_csv(target: Path, images: np.ndarray, labels: np.ndarray) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            for start in range(0, len(labels), _CHUNK):
                f.write(_csv_rows(images[start : start + _CHUNK], labels[start : start + _CHUNK]))

    atomic_write(target, write)


def export_csv(dataset: Dataset, folder: str | os.PathLike) -> tuple[Path, Path]:
    """Write `mnist_train.csv` and `mnist_test.csv` (no header, label first) into `folder`, atomically.

    Creates `folder` if needed and returns the two paths.
    """
    folder = Path(folder)
    paths = (folder / _CSV_NAMES["train"], folder / _CSV_NAMES["test"])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_csv(paths[0], dataset.train_images, dataset.train_labels)
        _write_csv(paths[1], dataset.test_images, dataset.test_labels)
    except OSError as e:
        raise InputError(f"{e.filename or folder}: cannot write: {e.strerror or e}") from None
    return paths


# ---------------------------------------------------------------- finding and loading data


def _is_csv(path: Path) -> bool:
    return path.name.lower().endswith((".csv", ".csv.gz"))


def load_images_labels(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 784) and labels (n,) from one path.

    A ``.csv``/``.csv.gz`` file; an IDX images file (``*images-idx3*``, its ``*labels-idx1*`` file is looked up next to
    it); or a folder, whose test split (t10k-*, else mnist_test.csv) is used.
    """
    path = Path(path)
    if path.is_dir():
        return _load_folder_split(path, "test")
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    return load_csv(path) if _is_csv(path) else _load_idx_pair(path)


def bundled_mnist_dir() -> Path:
    """The folder holding the bundled MNIST IDX files: in the installed package, else the repository's data/mnist."""
    candidates = []
    try:
        packaged = importlib.resources.files("mnistlab") / "_data" / "mnist"
        candidates.append(Path(str(packaged)))
    except (ModuleNotFoundError, AttributeError, TypeError, ValueError, OSError):
        pass
    candidates.append(Path(__file__).resolve().parents[2] / "data" / "mnist")
    names = [f"{p}-{k}" for p in _SPLITS.values() for k in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    for folder in candidates:
        if folder.is_dir() and all(_find_idx(folder, n) for n in names):
            return folder
    raise InputError(f"bundled MNIST not found (looked in {', '.join(map(str, candidates))})")


def load_dataset(train: str | os.PathLike | None = None, test: str | os.PathLike | None = None) -> Dataset:
    """Train and test splits from a folder of MNIST IDX files, or from two CSV files; `train=None` means bundled MNIST.

    With a folder, `test` (any path `load_images_labels` accepts) replaces the folder's own t10k split.
    """
    folder = bundled_mnist_dir() if train is None else Path(train)
    if folder.is_dir():
        train_xy = _load_folder_split(folder, "train")
        test_xy = _load_folder_split(folder, "test") if test is None else load_images_labels(test)
        source = f"bundled MNIST ({folder})" if train is None else str(folder)
        return Dataset(*train_xy, *test_xy, source=source if test is None else f"{source} + test {test}")
    if not folder.exists():
        raise InputError(f"{folder}: no such file or folder")
    if not _is_csv(folder):
        raise InputError(f"{folder}: expected a folder of MNIST IDX files or a .csv file")
    if test is None:
        raise InputError(f"{folder}: a CSV training file needs a CSV test file too")
    if not _is_csv(Path(test)):
        raise InputError(f"{test}: expected a .csv test file to go with the CSV training file {folder}")
    return Dataset(*load_csv(folder), *load_images_labels(test), source=f"{folder} + {test}")


# ---------------------------------------------------------------- arrays for training


def split_validation(
    images: np.ndarray, labels: np.ndarray, fraction: float = 0.1, rng: np.random.Generator | int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Randomly hold out round(fraction * n) examples: (train_x, train_y, val_x, val_y), each part in original order."""
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 <= fraction < 1:
        raise InputError(f"validation fraction must be in [0, 1), got {fraction!r}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    n = len(labels)
    n_val = min(int(round(fraction * n)), max(n - 1, 0))
    order = np.random.default_rng(rng).permutation(n)
    val, keep = np.sort(order[:n_val]), np.sort(order[n_val:])
    return images[keep], labels[keep], images[val], labels[val]


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels 0..255 -> float32 in [0, 1]."""
    return np.asarray(images, dtype=np.float32) / np.float32(255)


def one_hot(labels: np.ndarray, classes: int = 10) -> np.ndarray:
    """Labels (n,) -> float32 (n, classes) with a single 1 per row."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must be in 0..{classes - 1}")
    out = np.zeros((len(labels), classes), np.float32)
    out[np.arange(len(labels)), labels] = 1
    return out


def fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 hex digest of the images' bytes followed by the labels' bytes (C order): identifies training data."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(images))
    digest.update(np.ascontiguousarray(labels))
    return digest.hexdigest()
