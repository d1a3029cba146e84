"""IDX files (MNIST's own format), gzipped or not: read and check them, find an images/labels pair.

``load_idx(path)`` returns a uint8 array; every problem raises ``InputError`` naming the file and what
is wrong (see data/README.md for the format).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import InputError

PIXELS = 28 * 28


def read_bytes(path: Path) -> bytes:
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
    data = read_bytes(path)
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


def find_idx(folder: Path, name: str) -> Path | None:
    """`folder/name`, else `folder/name.gz`, else None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def checked_pair(images: np.ndarray, labels: np.ndarray, ipath: Path, lpath: Path) -> tuple[np.ndarray, np.ndarray]:
    """Check an IDX images/labels pair and return images flattened to (n, 784)."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise InputError(f"{ipath}: expected 28x28 images, found shape {'x'.join(map(str, images.shape))}")
    if labels.ndim != 1:
        raise InputError(f"{lpath}: expected a rank-1 labels file, found rank {labels.ndim}")
    if len(images) != len(labels):
        raise InputError(f"{ipath}: {len(images)} images but {lpath} has {len(labels)} labels")
    if len(images) == 0:
        raise InputError(f"{ipath}: holds no images (its header says 0)")
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise InputError(f"{lpath}: label {labels[bad[0]]} at index {bad[0]} is outside 0..9")
    return images.reshape(len(images), PIXELS), labels


def is_idx(path: Path) -> bool:
    """True if the file (gzipped or not) starts as an IDX file does: two zero bytes. No text file does."""
    try:
        with open(path, "rb") as f:
            start = f.read(2)
            if start == b"\x1f\x8b":
                f.seek(0)
                with gzip.open(f) as g:
                    start = g.read(2)
    except (OSError, EOFError, zlib.error):
        return False  # unreadable or corrupt: the loader that runs next says what is wrong
    return start == b"\0\0"


def load_idx_pair(images_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An IDX images file and the labels file next to it (``*images-idx3*`` -> ``*labels-idx1*``)."""
    name = images_path.name
    if "labels-idx1" in name:
        raise InputError(f"{images_path}: is a labels file; give the images file next to it "
                         f"({name.replace('labels-idx1', 'images-idx3')})")
    if "images-idx3" not in name:
        raise InputError(f"{images_path}: cannot tell which labels file goes with it (name lacks 'images-idx3')")
    labels_name = name.replace("images-idx3", "labels-idx1").removesuffix(".gz")
    labels_path = find_idx(images_path.parent, labels_name)
    if labels_path is None:
        raise InputError(f"{images_path}: matching labels file {labels_name}[.gz] not found next to it")
    return checked_pair(load_idx(images_path), load_idx(labels_path), images_path, labels_path)
