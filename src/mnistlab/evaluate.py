"""Judging a saved model on a labelled set: accuracy, per-class precision and recall, confusion matrix.

``evaluate(model, images, labels)`` takes an ``inference.Model`` (or a ``Committee``: then each member's
accuracy and loss too), uint8 images (n, features) and integer labels and returns a plain dict, ready
for JSON; ``format_report`` turns it into the text the ``test`` command prints. ``evaluate_file(weights,
data)`` does what ``mnistlab test`` does: load both, check they fit, evaluate.
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
    """``evaluate`` for a weights file, run folder or "pretrained" (a list of several: their committee) on a
    labelled set (any path ``load_images_labels`` takes; None: the bundled MNIST test set)."""
    from .inference import load  # here: the report imports confusion_matrix without the network code

    model = load(weights)
    folder = bundled_mnist_dir() if data is None else data
    images, labels = load_images_labels(folder)
    name = f"bundled MNIST test set ({folder})" if data is None else str(data)
    several = isinstance(weights, (list, tuple)) and len(weights) > 1
    check_data(model, images, labels, name, "the committee" if several else
               weights[0] if isinstance(weights, (list, tuple)) else weights)
    return evaluate(model, images, labels)


def confusion_matrix(labels, predictions, classes=10):
    """counts[true, predicted] as a (classes, classes) integer array."""
    flat = np.bincount(np.asarray(labels, np.int64) * classes + predictions, minlength=classes * classes)
    return flat.reshape(classes, classes)


def evaluate(model, images, labels):
    """The report of an inference.Model for uint8 images (n, features) with values 0..255 and their labels (n,)."""
    return score(model, to_float(images), labels)


class Tally:
    """One model's predictions and summed loss over a labelled set, filled a chunk of logits at a time."""

    def __init__(self, labels, loss):
        self.labels, self.loss = labels, loss
        self.predictions = np.empty(len(labels), np.intp)
        self.total_loss = 0.0

    def add(self, start, logits):
        y = self.labels[start:start + len(logits)]
        self.total_loss += self.loss.value(logits, y) * len(y)
        self.predictions[start:start + len(logits)] = logits.argmax(axis=1)

    @property
    def accuracy(self):
        return float((self.predictions == self.labels).mean())

    @property
    def mean_loss(self):
        return float(self.total_loss / max(len(self.labels), 1))


def score(model, inputs, labels):
    """The report for network inputs (n, features), float in [0, 1], and their labels (n,), computed
    in chunks (the loss as Network.evaluate sums it, so it matches a run's metrics.json). For a
    Committee, ``members`` adds each member's name, accuracy and loss, from the same pass."""
    labels = np.asarray(labels, np.intp)
    tally = Tally(labels, model.loss)
    members = getattr(model, "members", None)
    if members:
        tallies = [Tally(labels, member.loss) for member in members]
        for i, logits, each in model.member_chunks(inputs):
            tally.add(i, logits)
            for member_tally, member_logits in zip(tallies, each):
                member_tally.add(i, member_logits)
    else:
        for i, logits in model.chunks(inputs):
            tally.add(i, logits)
    report = summary(labels, tally, model.classes)
    if members:
        report["members"] = [{"name": name, "accuracy": t.accuracy, "loss": t.mean_loss}
                             for name, t in zip(model.names, tallies)]
    return report


def summary(labels, tally, classes):
    """The report's dict of a filled Tally."""
    predictions = tally.predictions
    counts = confusion_matrix(labels, predictions, classes)
    true_positive = np.diag(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = true_positive / counts.sum(axis=0)  # nan where nothing was predicted as a class
        recall = true_positive / counts.sum(axis=1)
    return {
        "examples": int(len(labels)),
        "accuracy": tally.accuracy,
        "loss": tally.mean_loss,
        "precision": [None if np.isnan(p) else float(p) for p in precision],
        "recall": [None if np.isnan(r) else float(r) for r in recall],
        "confusion_matrix": counts.tolist(),
    }


def format_report(result):
    def pct(v):
        return "   -  " if v is None else f"{100 * v:6.2f}"

    lines = []
    members = result.get("members")
    if members:
        lines.append(f"committee of {len(members)} models (the mean of their probabilities):")
        lines += [f"  {100 * m['accuracy']:6.2f}% (loss {m['loss']:.4f})  {m['name']}" for m in members]
        lines.append(f"  {100 * result['accuracy']:6.2f}% (loss {result['loss']:.4f})  the committee")
        lines.append("")
    lines += [f"accuracy {100 * result['accuracy']:.2f}% on {result['examples']} images "
              f"(loss {result['loss']:.4f})" + (", the committee's" if members else ""), "",
              "class  precision  recall"]
    for digit, (p, r) in enumerate(zip(result["precision"], result["recall"])):
        lines.append(f"{digit:>5}  {pct(p)}%   {pct(r)}%")
    lines += ["", "confusion matrix (rows: true digit, columns: predicted)",
              "      " + "".join(f"{d:>6}" for d in range(len(result["confusion_matrix"])))]
    for digit, row in enumerate(result["confusion_matrix"]):
        lines.append(f"{digit:>5} " + "".join(f"{c:>6}" for c in row))
    return "\n".join(lines)
