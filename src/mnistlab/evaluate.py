"""Judging saved weights on a labelled set: accuracy, per-class precision and recall, confusion matrix.

``evaluate(network, images, labels)`` takes uint8 images (n, 784) and integer labels and returns a
plain dict, ready for JSON; ``format_report`` turns it into the text the ``test`` command prints.
``evaluate_file(weights, data)`` does what ``mnistlab test`` does: load both, check they fit, evaluate.
"""

import numpy as np

from .data import bundled_mnist_dir, load_images_labels, to_float
from .errors import InputError


def check_fits(network, images, labels, data_name, weights_name):
    """InputError unless the network takes these images and can predict every label in the set."""
    if images.shape[1] != network.sizes[0]:
        raise InputError(f"{data_name}: images have {images.shape[1]} pixels, "
                         f"{weights_name} expects {network.sizes[0]}")
    classes = network.sizes[-1]
    if len(labels) and int(np.max(labels)) >= classes:
        raise InputError(f"{data_name}: has labels up to {int(np.max(labels))}, "
                         f"{weights_name} predicts {classes} classes (0..{classes - 1})")


def evaluate_file(weights, data=None):
    """``evaluate`` for a weights file on a labelled set (any path ``load_images_labels`` takes;
    None: the bundled MNIST test set)."""
    from .weights import load_model

    network, _ = load_model(weights)
    folder = bundled_mnist_dir() if data is None else data
    images, labels = load_images_labels(folder)
    name = f"bundled MNIST test set ({folder})" if data is None else str(data)
    check_fits(network, images, labels, name, weights)
    return evaluate(network, images, labels)


def confusion_matrix(labels, predictions, classes=10):
    """counts[true, predicted] as a (classes, classes) integer array."""
    flat = np.bincount(np.asarray(labels, np.int64) * classes + predictions, minlength=classes * classes)
    return flat.reshape(classes, classes)


def evaluate(network, images, labels):
    """The report for uint8 images (n, 784) with values 0..255 and their labels (n,)."""
    return score(network, to_float(images), labels)


def score(network, inputs, labels):
    """The report for network inputs (n, features), float in [0, 1], and their labels (n,)."""
    labels = np.asarray(labels, np.intp)
    logits = network.logits(inputs)
    predictions = logits.argmax(axis=1)
    counts = confusion_matrix(labels, predictions, network.sizes[-1])
    true_positive = np.diag(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = true_positive / counts.sum(axis=0)  # nan where nothing was predicted as a class
        recall = true_positive / counts.sum(axis=1)
    return {
        "examples": int(len(labels)),
        "accuracy": float((predictions == labels).mean()),
        "loss": float(network.loss.value(logits, labels)),
        "precision": [None if np.isnan(p) else float(p) for p in precision],
        "recall": [None if np.isnan(r) else float(r) for r in recall],
        "confusion_matrix": counts.tolist(),
    }


def format_report(result):
    def pct(v):
        return "   -  " if v is None else f"{100 * v:6.2f}"

    lines = [f"accuracy {100 * result['accuracy']:.2f}% on {result['examples']} images "
             f"(loss {result['loss']:.4f})", "", "class  precision  recall"]
    for digit, (p, r) in enumerate(zip(result["precision"], result["recall"])):
        lines.append(f"{digit:>5}  {pct(p)}%   {pct(r)}%")
    lines += ["", "confusion matrix (rows: true digit, columns: predicted)",
              "      " + "".join(f"{d:>6}" for d in range(len(result["confusion_matrix"])))]
    for digit, row in enumerate(result["confusion_matrix"]):
        lines.append(f"{digit:>5} " + "".join(f"{c:>6}" for c in row))
    return "\n".join(lines)
