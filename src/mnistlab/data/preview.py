"""A picture of what augmentation does: a few digits, and beside each its variants under every transform.

``preview("augment.png")`` writes a labelled grid PNG (the ``mnistlab augment-preview`` command):
one row per digit, the original first, then one column per transform at the strengths given, then
affine + elastic together and everything together. matplotlib (the ``plot`` extra) is imported here
only, with the Agg backend, so nothing else needs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError, require_module
from ..files import atomic_write
from .augment import GEOMETRIC, TRANSFORMS, Augmentation

MAX_COUNT = 50  # rows of 1.1 inches: 50 digits make a 5,000-pixel-tall image already


def _caption(name, aug):
    return {
        "zoom": f"zoom ±{aug.zoom:g}",
        "rotate": f"rotate ±{aug.rotate:g}°",
        "shear": f"shear ±{aug.shear:g}°",
        "shift": f"shift ±{aug.shift:g} px",
        "elastic": f"elastic α{aug.elastic_alpha:g} σ{aug.elastic_sigma:g}",
        "thickness": f"thickness ±{aug.thickness}",
        "resample": f"resample {round(28 * (1 - aug.resample))}-28 px",
        "blur": f"blur σ{aug.blur:g}",
        "squares": f"{aug.squares} squares {aug.square_size}px",
        "noise": f"noise {aug.noise:g}",
    }[name]


def preview(out_path, images=None, labels=None, augmentation=None, count=6, seed=0):
    """Write the grid PNG to ``out_path`` and return its path.

    images: uint8 (n, 784) or (n, 28, 28) (default: the bundled MNIST test set); the first ``count``
    are shown. augmentation: the strengths (default: ``Augmentation()``'s); its transform list is not
    used: every transform gets a column.
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= MAX_COUNT:
        raise InputError(f"count = {count!r}: must be a whole number from 1 to {MAX_COUNT}")
    require_module("augment-preview", "matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if images is None:
        from .sources import load_dataset
        ds = load_dataset(None)
        images, labels = ds.test_images, ds.test_labels
    images = np.asarray(images)[:count].reshape(-1, 28, 28)
    augmentation = augmentation or Augmentation()
    columns = [("original", images)]
    for k, name in enumerate(TRANSFORMS):
        rng = np.random.default_rng([seed, k])
        columns.append((_caption(name, augmentation), augmentation.only(name).apply(images, rng)))
    columns.append(("affine + elastic", augmentation.only(*GEOMETRIC).apply(images, np.random.default_rng(seed))))
    columns.append(("all", augmentation.only(*TRANSFORMS).apply(images, np.random.default_rng(seed))))

    rows = len(images)
    fig, axes = plt.subplots(rows, len(columns), figsize=(1.05 * len(columns), 1.1 * rows + 0.4),
                             squeeze=False)
    for c, (title, shown) in enumerate(columns):
        for r in range(rows):
            ax = axes[r, c]
            ax.imshow(shown[r], cmap="gray_r", vmin=0, vmax=255 if shown.dtype == np.uint8 else 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=7)
            if c == 0 and labels is not None:
                ax.set_ylabel(f"label {int(labels[r])}", fontsize=7)
    fig.suptitle("mnistlab augmentation: each transform alone, at its strength", fontsize=9)
    fig.tight_layout()
    out_path = Path(out_path)
    fmt = out_path.suffix.lstrip(".").lower() or "png"
    try:  # atomically: an interrupted preview leaves no half-written image
        atomic_write(out_path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=110))
    finally:
        plt.close(fig)
    return out_path
