"""Judging saved weights on a labelled set: accuracy, per-class precision and recall, confusion matrix.

``evaluate(network, images, labels)`` takes uint8 images (n, 784) and integer labels and returns a
plain dict, ready for JSON; ``format_report`` turns it into the text the ``test`` command prints.
"""

import numpy as np

from .data import to_float


def confusion_matrix(labels, predictions, classes=10):
    """counts[true, predicted] as a (classes, classes) integer array."""
    flat = np.bincount(np.asarray(labels, np.int64) * classes + predictions, minlength=classes * classes)
    return flat.reshape(classes, classes)


def evaluate(network, images, labels):
    labels = np.asarray(labels, np.intp)
    logits = network.logits(to_float(images))
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
