"""A picture of what augmentation does: a few digits, and beside each its variants under every transform.

``preview("augment.png")`` writes a labelled grid PNG (the ``mnistlab augment-preview`` command):
one row per digit, the original first, then one column per transform at the strengths given, then
affine + elastic together and everything together. matplotlib (the ``plot`` extra) is imported here
only, with the Agg backend, so nothing else needs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import require_module
from .augment import GEOMETRIC, TRANSFORMS, Augmentation


def _caption(name, aug):
    return {
        "zoom": f"zoom ±{aug.zoom:g}",
        "rotate": f"rotate ±{aug.rotate:g}°",
        "shear": f"shear ±{aug.shear:g}°",
        "shift": f"shift ±{aug.shift:g} px",
        "elastic": f"elastic α{aug.elastic_alpha:g} σ{aug.elastic_sigma:g}",
        "thickness": f"thickness ±{aug.thickness}",
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
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
