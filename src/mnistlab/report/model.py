"""Figures of one saved model on a labelled set: confusion matrix, most confident mistakes, first-layer
weights (a dense layer's as 28x28 images, a conv layer's filters as KxK images), and for a CNN one
digit's feature maps through its image layers.

``predict_set(weights_path, data)`` loads the model (``inference.Model``, shared with the API and the
drawing page) and the test set (the bundled MNIST when ``data`` is None) and returns a ``Predictions``;
the ``*_figure`` functions draw from it. This is the one module of the report package that reads
a weights file.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..evaluate import confusion_matrix
from .figures import new_figure

SIDE = 28  # MNIST images are 28 x 28


@dataclass
class Predictions:
    images: np.ndarray  # (n, 784) uint8
    labels: np.ndarray  # (n,) true digits
    probabilities: np.ndarray  # (n, classes) softmax of the logits
    first_layer: np.ndarray | None  # (784, hidden) the first layer's weights, if it is a dense layer
    name: str  # the weights file, for titles
    architecture: str = ""  # '784-800-800-10 (relu)', or the arch spec of any other network, for captions
    network: object = None  # the loaded nn.Network (for a CNN's filters and feature maps)

    @property
    def convolutional(self):
        """Whether the first layer is a conv: its filters are drawn, and one digit's feature maps."""
        return self.network is not None and self.network.layers[0].kind == "conv"

    @property
    def draws_weights(self):
        """Whether the first layer's weights can be drawn: as 28x28 images, or as a conv's filters."""
        return self.convolutional or (self.first_layer is not None and self.first_layer.shape[0] == SIDE * SIDE)

    @property
    def predicted(self):
        return self.probabilities.argmax(axis=1)

    @property
    def accuracy(self):
        return float((self.predicted == self.labels).mean()) if len(self.labels) else float("nan")


def predict_set(weights_path, data=None):
    """Predictions of the model in ``weights_path`` (a model file, a run folder or "pretrained", the shipped
    model) on ``data`` (CSV/IDX file or folder; None: bundled MNIST)."""
    from ..data import bundled_mnist_dir, load_images_labels
    from ..inference import load

    model = load(weights_path)
    images, labels = load_images_labels(data or bundled_mnist_dir())
    if images.shape[1] != model.features:
        raise InputError(f"{data}: images have {images.shape[1]} pixels, {weights_path} expects {model.features}")
    probabilities = model.predict_proba(images) if len(images) else np.zeros((0, model.classes))
    first = model.network.tensors().get("dense.0.weight")
    return Predictions(images, np.asarray(labels, np.intp), probabilities, first, str(weights_path),
                       f"{model.describe()} ({model.network.activation_name})", model.network)


def confusion_figure(p):
    """Heatmap of counts[true, predicted] with every count written in its cell (log colour scale, so the
    off-diagonal mistakes are visible beside the large diagonal)."""
    from matplotlib.colors import LogNorm

    classes = p.probabilities.shape[1]
    counts = confusion_matrix(p.labels, p.predicted, classes)
    figure = new_figure(6.4, 5.6)
    ax = figure.subplots()
    image = ax.imshow(np.maximum(counts, 0.5), cmap="Blues", norm=LogNorm(vmin=0.5, vmax=max(counts.max(), 1)))
    dark = counts > np.sqrt(max(counts.max(), 1))  # white text on the darker half of the log scale
    for (t, q), n in np.ndenumerate(counts):
        if n:
            ax.text(q, t, str(n), ha="center", va="center", fontsize=7 if n >= 1000 else 8,
                    color="white" if dark[t, q] else "black")
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    ax.set(xlabel="predicted digit", ylabel="true digit",
           title=f"Confusion matrix: {100 * p.accuracy:.2f}% of {len(p.labels):,} correct")
    figure.colorbar(image, ax=ax, label="images (log scale)", shrink=0.8)
    return figure


def mistakes(p, count):
    """Indices of the ``count`` wrong predictions made with the highest confidence, most confident first."""
    wrong = np.flatnonzero(p.predicted != p.labels)
    confidence = p.probabilities[wrong, p.predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:count]]


def _image_grid(count, columns, cell_width, cell_height, title_space, hspace):
    """(figure, axes) of an empty grid of ``count`` image cells, ``columns`` to a row, axes off."""
    rows = max(1, -(-count // columns))
    height = cell_height * rows + 0.5
    figure = new_figure(cell_width * columns, height, layout=None)
    axes = np.atleast_1d(figure.subplots(rows, columns, gridspec_kw=dict(
        left=0.01, right=0.99, bottom=0.01, top=1 - title_space / height, hspace=hspace, wspace=0.1))).ravel()
    for ax in axes:
        ax.set_axis_off()
    return figure, axes


def mistakes_figure(p, count=24, columns=8):
    """A grid of the most confident mistakes, each titled 'true 4 → 9' with the confidence in the 9."""
    chosen = mistakes(p, count)
    figure, axes = _image_grid(len(chosen), columns, 1.3, 1.5, 0.75, hspace=0.45)
    for ax, i in zip(axes, chosen):
        guess = p.predicted[i]
        ax.imshow(p.images[i].reshape(SIDE, SIDE), cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(f"true {p.labels[i]} → {guess}\n{100 * p.probabilities[i, guess]:.1f}% sure",
                     fontsize="small")
    wrong = int((p.predicted != p.labels).sum())
    figure.suptitle(f"The {len(chosen)} most confident of {wrong:,} mistakes" if wrong else "No mistakes")
    return figure


def weights_figure(p, count=64, columns=16):
    """The first layer's weights into the first ``count`` hidden units, each as a 28x28 image, or a
    conv's first ``count`` filters, each as a KxK image (red positive, blue negative, each on its own
    symmetric scale)."""
    if p.convolutional:
        return filters_figure(p, count, columns)
    weights = p.first_layer
    if weights is None:
        raise InputError(f"{p.name}: its first layer is not a dense layer, whose weights could be drawn as images")
    if weights.shape[0] != SIDE * SIDE:
        raise InputError(f"{p.name}: first layer has {weights.shape[0]} inputs, not {SIDE}x{SIDE} pixels")
    count = min(count, weights.shape[1])
    columns = min(columns, count)
    figure, axes = _image_grid(count, columns, 0.8, 0.8, 0.45, hspace=0.08)
    for unit, ax in zip(range(count), axes):
        w = weights[:, unit].reshape(SIDE, SIDE)
        scale = float(np.abs(w).max()) or 1.0
        ax.imshow(w, cmap="RdBu_r", vmin=-scale, vmax=scale)
    figure.suptitle(f"First-layer weights of {count} of {weights.shape[1]} hidden units "
                    "(red: positive, blue: negative)", fontsize="medium")
    return figure


def filters_figure(p, count=64, columns=16):
    """The first conv layer's filters (their first input channel: the image's only one)."""
    filters = np.asarray(p.network.layers[0].params["weight"])[:, 0]  # (filters, K, K)
    count = min(count, len(filters))
    columns = min(columns, count)
    figure, axes = _image_grid(count, columns, 0.8, 0.8, 0.45, hspace=0.08)
    for w, ax in zip(filters[:count], axes):
        scale = float(np.abs(w).max()) or 1.0
        ax.imshow(w, cmap="RdBu_r", vmin=-scale, vmax=scale)
    k = filters.shape[-1]
    figure.suptitle(f"First-layer filters: {count} of {len(filters)}, {k}x{k} "
                    "(red: positive, blue: negative)", fontsize="medium")
    return figure


def feature_maps(network, image):
    """[(layer name, (h, w, C) output)] of one image (784 floats in [0, 1]) through the network's
    image layers (conv, bn, pool; dropout, the identity in inference, is left out), up to the first
    whose output is no longer an image."""
    maps, a = [], np.asarray(image, network.dtype).reshape(1, *network.input_shape)
    for layer in network.layers:
        a = layer.forward(a)
        if a.ndim != 4:
            break
        if layer.kind != "dropout":
            maps.append((layer.name, a[0]))  # NHWC: (h, w, channels)
    return maps


def feature_maps_figure(p, index=0, channels=8):
    """One test digit and the first ``channels`` feature maps of each image layer, a row per layer
    (each map on its own grey scale: what the channel responds to, and where)."""
    maps = feature_maps(p.network, p.images[index] / 255.0)
    rows = len(maps) + 1
    figure, axes = _image_grid(rows * channels, channels, 0.9, 1.0, 0.6, hspace=0.35)
    axes = axes.reshape(rows, channels)
    axes[0, 0].imshow(p.images[index].reshape(SIDE, SIDE), cmap="gray_r", vmin=0, vmax=255)
    axes[0, 0].set_title(f"input: a {p.labels[index]}", fontsize="small")
    for row, (name, out) in zip(axes[1:], maps):
        for j, ax in enumerate(row[:out.shape[-1]]):
            ax.imshow(out[:, :, j], cmap="gray")
            ax.set_title(f"{name}: {j}" if j == 0 else str(j), fontsize="x-small")
    figure.suptitle(f"Test image {index} (a {p.labels[index]}, predicted {p.predicted[index]}) through the "
                    f"network: the first {channels} channels of each image layer", fontsize="medium")
    return figure
