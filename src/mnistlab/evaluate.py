"""Judging a saved model on a labelled set: accuracy, per-class precision and recall, confusion matrix.

``evaluate(model, images, labels)`` takes an ``inference.Model``, uint8 images (n, features) and integer
labels and returns a plain dict, ready for JSON; ``format_report`` turns it into the text the ``test``
command prints. ``evaluate_file(weights, data)`` does what ``mnistlab test`` does: load both, check
they fit, evaluate.
"""

import numpy as np

from .data import bundled_mnist_dir, load_images_labels, to_float
from .errors import InputError


def check_data(model, images, labels, data_name, weights_name):
    """InputError unless the model takes these images and can predict every label in the set."""
    if images.shape[1] != model.features:
        raise InputError(f"{data_name}: images have {images.shape[1]} pixels, "
                         f"{weights_name} expects {model.features}")
    model.check_labels(labels, data_name, weights_name)


def evaluate_file(weights, data=None):
    """``evaluate`` for a weights file on a labelled set (any path ``load_images_labels`` takes;
    None: the bundled MNIST test set)."""
    from .inference import Model  # here: the report imports confusion_matrix without the network code

    model = Model.load(weights)
    folder = bundled_mnist_dir() if data is None else data
    images, labels = load_images_labels(folder)
    name = f"bundled MNIST test set ({folder})" if data is None else str(data)
    check_data(model, images, labels, name, weights)
    return evaluate(model, images, labels)


def confusion_matrix(labels, predictions, classes=10):
    """counts[true, predicted] as a (classes, classes) integer array."""
    flat = np.bincount(np.asarray(labels, np.int64) * classes + predictions, minlength=classes * classes)
    return flat.reshape(classes, classes)


def evaluate(model, images, labels):
    """The report of an inference.Model for uint8 images (n, features) with values 0..255 and their labels (n,)."""
    return score(model, to_float(images), labels)


def score(model, inputs, labels):
    """The report for network inputs (n, features), float in [0, 1], and their labels (n,), computed
    in chunks (the loss as Network.evaluate sums it, so it matches a run's metrics.json)."""
    labels = np.asarray(labels, np.intp)
    predictions = np.empty(len(labels), np.intp)
    total_loss = 0.0
    for i, logits in model.chunks(inputs):
        y = labels[i:i + len(logits)]
        total_loss += model.network.loss.value(logits, y) * len(y)
        predictions[i:i + len(logits)] = logits.argmax(axis=1)
    counts = confusion_matrix(labels, predictions, model.classes)
    true_positive = np.diag(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = true_positive / counts.sum(axis=0)  # nan where nothing was predicted as a class
        recall = true_positive / counts.sum(axis=1)
    return {
        "examples": int(len(labels)),
        "accuracy": float((predictions == labels).mean()),
        "loss": float(total_loss / max(len(labels), 1)),
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
