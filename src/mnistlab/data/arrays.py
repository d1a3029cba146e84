"""Arrays for training: the validation split, uint8 -> float conversion, one-hot labels, a data fingerprint,
and a look at how a training set's labels are spread over the classes."""

from __future__ import annotations

import hashlib
import numbers

import numpy as np

from ..errors import InputError


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


# A present class with fewer examples than this share of the most common one is called rare.
RARE_SHARE = 0.1


def class_spread_warning(labels: np.ndarray, classes: int = 10) -> str | None:
    """What is wrong with the spread of a training set's labels over the classes, or None if nothing.

    A network trained on one class answers that class for every image; with classes missing it can
    never answer those; a class far rarer than the others is learnt poorly. The text is meant for a
    warning (``mnistlab: warning: ...``), not an error: such a set may be what the user wants.
    """
    counts = np.bincount(np.asarray(labels, dtype=np.intp), minlength=classes)
    present = np.flatnonzero(counts)
    if len(present) == 0:
        return None
    if len(present) == 1:
        return (f"every training label is {present[0]}: the network can only learn to answer "
                f"{present[0]}")
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        names = ", ".join(map(str, missing))
        return (f"the training labels cover {len(present)} of {classes} classes (no {names}): the network "
                f"can never answer {'that class' if len(missing) == 1 else 'those'}")
    rare = np.flatnonzero(counts < RARE_SHARE * counts.max())
    if len(rare):
        top = int(counts.argmax())
        shown = ", ".join(f"{k} ({counts[k]})" for k in rare)
        return (f"labels {shown} have fewer than {RARE_SHARE:.0%} as many training examples as {top} "
                f"({counts[top]}): expect poor accuracy on them")
    return None
