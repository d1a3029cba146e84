"""A folder of the user's own labelled drawings, kept as an MNIST-format data set.

``Collection(folder)`` opens (or starts) one; ``add`` keeps a drawing with its label, ``delete`` and
``clear`` remove them. The folder holds:

- ``items/NNNNNN.npz``: one file per drawing, written once, atomically: the 28x28 image the model saw
  (uint8), the raw canvas (uint8, compressed) and a JSON record (label, the model's answer and
  probabilities, model, session, time). These are the truth: a drawing is kept once its file exists.
- ``images-idx3-ubyte.gz`` and ``labels-idx1-ubyte.gz``: every drawing in id order, in MNIST's own
  format, so ``mnistlab test --data FOLDER`` and any MNIST reader take the folder as it is;
  ``index.csv``: a row per drawing (id, label, answer, p0..p9, model, session, time).
  These three are derived from ``items/`` and rewritten atomically (``files.atomic_write``) after
  every change, and rebuilt when a folder is opened whose derived files do not match its items (a
  process killed between two renames).

Every change happens under an exclusive lock on ``FOLDER/.lock`` and first re-reads the listing of
``items/``, so several server processes can share one folder. Nothing is ever written outside it.
"""

from __future__ import annotations

import csv
import fcntl
import gzip
import io
import json
import os
import secrets
import struct
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError
from ..files import atomic_write, remove_stale_temporaries, write_text

IMAGES, LABELS, INDEX, ITEMS, LOCK = "images-idx3-ubyte.gz", "labels-idx1-ubyte.gz", "index.csv", "items", ".lock"
INDEX_FIELDS = ("id", "label", "answer", *(f"p{d}" for d in range(10)), "model", "session", "time")
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
SIDE = 28
ID_DIGITS = 6


class CollectionFull(Exception):
    """Adding a drawing would take the folder past its size cap."""


class Drawing(NamedTuple):
    """One kept drawing: its record (the index row as a dict) and its 28x28 uint8 image."""

    record: dict
    image: np.ndarray  # (28, 28) uint8


def idx_bytes(array):
    """A uint8 array as an IDX file's bytes (magic 0x0000 08 rank, big-endian dimensions, data)."""
    array = np.ascontiguousarray(array, np.uint8)
    return struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _item_name(drawing_id):
    return f"{drawing_id:0{ID_DIGITS}d}.npz"


class Collection:
    def __init__(self, folder, max_bytes=DEFAULT_MAX_BYTES):
        self.folder = Path(folder).resolve()
        self.items_dir = self.folder / ITEMS
        self.max_bytes = max_bytes
        try:
            self.items_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"{e.filename or folder}: cannot create the drawings folder: {e.strerror or e}") from None
        if self.items_dir.is_symlink() or self.items_dir.resolve() != self.items_dir:
            raise InputError(f"{self.items_dir}: is a link; the drawings folder must hold its own items/")
        self._cache = {}  # id -> Drawing
        with self._locked():
            remove_stale_temporaries(self.folder)
            remove_stale_temporaries(self.items_dir)
            if self._derived_stale():
                self._write_derived()

    # ------------------------------------------------------------------ reading

    @contextmanager
    def _locked(self):
        """Hold the folder's lock and bring the in-memory drawings up to date with items/."""
        with open(self.folder / LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._sync()
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _ids_on_disk(self):
        ids = []
        for entry in os.scandir(self.items_dir):
            stem, dot, ext = entry.name.partition(".")
            if ext == "npz" and stem.isdigit() and len(stem) == ID_DIGITS:
                ids.append(int(stem))
        return sorted(ids)

    def _sync(self):
        on_disk = set(self._ids_on_disk())
        for gone in set(self._cache) - on_disk:
            del self._cache[gone]
        for new in sorted(on_disk - set(self._cache)):
            self._cache[new] = self._read_item(new)

    def _read_item(self, drawing_id):
        path = self.items_dir / _item_name(drawing_id)
        try:
            with np.load(path, allow_pickle=False) as f:
                record = json.loads(str(f["record"]))
                image = f["image"]
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"{path}: not a drawing file ({e})") from None
        if image.shape != (SIDE, SIDE) or image.dtype != np.uint8:
            raise InputError(f"{path}: image is {image.dtype} {image.shape}, expected uint8 (28, 28)")
        return Drawing(record, image)

    def drawings(self):
        """Every kept drawing, in id order."""
        with self._locked():
            return [self._cache[k] for k in sorted(self._cache)]

    def arrays(self):
        """(images (n, 28, 28) uint8, labels (n,) uint8, records) of every drawing, in id order."""
        found = self.drawings()
        images = np.stack([d.image for d in found]) if found else np.zeros((0, SIDE, SIDE), np.uint8)
        labels = np.array([d.record["label"] for d in found], np.uint8)
        return images, labels, [d.record for d in found]

    def canvas(self, drawing_id):
        """The raw canvas (h, w) uint8 a drawing was made on."""
        with np.load(self.items_dir / _item_name(drawing_id), allow_pickle=False) as f:
            return f["canvas"]

    def size_bytes(self):
        """Bytes the folder's files take (items and derived files)."""
        total = 0
        for folder in (self.folder, self.items_dir):
            for entry in os.scandir(folder):
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
        return total

    # ------------------------------------------------------------------ changing

    def add(self, image, canvas, label, answer, probabilities, model="", session=""):
        """Keep a drawing; return its record. ``image``: (28, 28) uint8 as the model saw it;
        ``canvas``: the raw (h, w) uint8 drawing. Raises CollectionFull past the size cap."""
        image = np.asarray(image)
        if image.shape != (SIDE, SIDE) or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 (28, 28), got {image.dtype} {image.shape}")
        if not (isinstance(label, int) and 0 <= label <= 9):
            raise ValueError(f"label must be an integer 0..9, got {label!r}")
        buffer = io.BytesIO()
        with self._locked():
            drawing_id = max(self._cache, default=0) + 1
            record = {"id": drawing_id, "label": label, "answer": None if answer is None else int(answer),
                      "probabilities": [round(float(p), 6) for p in probabilities], "model": str(model),
                      "session": str(session), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            np.savez_compressed(buffer, image=image, canvas=np.asarray(canvas, np.uint8),
                                record=np.array(json.dumps(record)))
            data = buffer.getvalue()
            # The item, a new row in the index and about a compressed image's worth in the IDX file.
            needed = len(data) + 200 + SIDE * SIDE
            used = self.size_bytes()
            if used + needed > self.max_bytes:
                raise CollectionFull(f"{self.folder}: the drawings folder is full ({used / 2**20:.1f} MiB of its "
                                     f"{self.max_bytes / 2**20:.1f} MiB cap); delete drawings or raise the cap")
            path = self.items_dir / _item_name(drawing_id)
            atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
            self._cache[drawing_id] = Drawing(record, image.copy())
            self._write_derived()
        return record

    def delete(self, drawing_id):
        """Remove one drawing; False if there is none of that id."""
        with self._locked():
            if drawing_id not in self._cache:
                return False
            (self.items_dir / _item_name(drawing_id)).unlink(missing_ok=True)
            del self._cache[drawing_id]
            self._write_derived()
        return True

    def clear(self):
        """Remove every drawing; return how many there were."""
        with self._locked():
            count = len(self._cache)
            for drawing_id in list(self._cache):
                (self.items_dir / _item_name(drawing_id)).unlink(missing_ok=True)
            self._cache.clear()
            self._write_derived()
        return count

    # ------------------------------------------------------------------ derived files

    def _index_text(self, found):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(INDEX_FIELDS)
        for d in found:
            r = d.record
            probabilities = r.get("probabilities") or [""] * 10
            writer.writerow([r["id"], r["label"], "" if r.get("answer") is None else r["answer"], *probabilities,
                             r.get("model", ""), r.get("session", ""), r.get("time", "")])
        return buffer.getvalue()

    def _derived_stale(self):
        """True unless index.csv lists exactly the items on disk and both IDX files exist."""
        if not all((self.folder / name).is_file() for name in (IMAGES, LABELS, INDEX)):
            return True
        try:
            with open(self.folder / INDEX, newline="") as f:
                listed = [int(row["id"]) for row in csv.DictReader(f)]
            images = _idx_count(self.folder / IMAGES)
            labels = _idx_count(self.folder / LABELS)
        except (OSError, ValueError, KeyError, EOFError, gzip.BadGzipFile):
            return True
        return listed != sorted(self._cache) or images != len(listed) or labels != len(listed)

    def _write_derived(self):
        """Rewrite the IDX pair and index.csv from the drawings in memory (caller holds the lock).

        Both IDX files are written to temp files before either is renamed into place, so the window
        in which they disagree is two renames long; opening the folder again repairs it."""
        found = [self._cache[k] for k in sorted(self._cache)]
        images = np.stack([d.image for d in found]) if found else np.zeros((0, SIDE, SIDE), np.uint8)
        labels = np.array([d.record["label"] for d in found], np.uint8)
        staged = []
        try:
            for name, array in ((IMAGES, images), (LABELS, labels)):
                staged.append(_stage(self.folder / name, idx_bytes(array)))
            for tmp, path in staged:
                os.replace(tmp, path)
        finally:
            for tmp, _ in staged:
                Path(tmp).unlink(missing_ok=True)
        write_text(self.folder / INDEX, self._index_text(found))

    # ------------------------------------------------------------------ summary and export

    def zip_bytes(self):
        """The folder as a zip: the IDX pair, index.csv and every item file."""
        buffer = io.BytesIO()
        with self._locked(), zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
            for name in (IMAGES, LABELS, INDEX):
                z.write(self.folder / name, f"drawings/{name}")
            for drawing_id in sorted(self._cache):
                name = _item_name(drawing_id)
                z.write(self.items_dir / name, f"drawings/{ITEMS}/{name}")
        return buffer.getvalue()


def _stage(path, data):
    """``data`` gzipped into a synced temp file beside ``path`` (named as ``atomic_write`` names its temp
    files, so a killed process's leftovers are cleaned up the same way); returns (temp, path) for the
    caller to rename. Not ``atomic_write`` itself: its rename would change the two IDX files one at a
    time, with a gzip of each in between."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(data)
        raw.flush()
        os.fsync(raw.fileno())
    return tmp, path


def _idx_count(path):
    """The first dimension in a gzipped IDX file's header."""
    with gzip.open(path, "rb") as f:
        header = f.read(8)
    if len(header) < 8 or header[:2] != b"\0\0":
        raise ValueError("not an IDX file")
    return int.from_bytes(header[4:8], "big")


def summary(records, predictions, session=None):
    """Counts per digit and the accuracy of ``predictions`` (one per record, a model's answers now),
    for the whole set and for the records of ``session``."""
    def part(chosen):
        labels = np.array([records[i]["label"] for i in chosen], int)
        guessed = np.array([predictions[i] for i in chosen], int)
        per_digit = np.bincount(labels, minlength=10) if len(labels) else np.zeros(10, int)
        right = np.bincount(labels[guessed == labels], minlength=10) if len(labels) else np.zeros(10, int)
        return {"count": int(len(labels)), "per_digit": per_digit.tolist(),
                "accuracy": float((guessed == labels).mean()) if len(labels) else None,
                "per_digit_accuracy": [float(r / c) if c else None for r, c in zip(right, per_digit)]}

    everything = list(range(len(records)))
    mine = [i for i in everything if session and records[i].get("session") == session]
    return {"all": part(everything), "session": part(mine)}
