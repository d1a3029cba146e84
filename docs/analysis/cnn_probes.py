"""What held a CNN recipe back, from training and validation images only (never the test set): the figures
REPORT.md section 9 quotes for the first recipe's runs.

For each run folder (with its model.safetensors) it prints:

1. the accuracy on the first 20,000 *clean* training images (the network trained on distorted ones: an
   accuracy well below 100% there means the distortions, not overfitting, hold it back);
2. the validation accuracy with batch norm's running statistics as trained, and recomputed on those 20,000
   clean training images (how much the running averages over distorted batches cost);
3. the accuracy on the first 3,000 validation images redrawn as canvas drawings (``bench_draw.py``'s
   redrawing, seed 0), and with one part of the redrawing left out at a time (rotation, stroke width, the
   random size; "none": enlarged 4x and shrunk to a 56 px frame only), to see which part costs most.

    python docs/analysis/cnn_probes.py RUN_DIR [RUN_DIR ...]
"""

import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_draw import CANVAS  # noqa: E402

from mnistlab.build import load_data  # noqa: E402
from mnistlab.config import load_toml  # noqa: E402
from mnistlab.data.drawing import mnist_like, resize  # noqa: E402
from mnistlab.inference import Model  # noqa: E402

CLEAN = 20_000
REDRAWN = 3_000


def draw(digit, rng, rotate=True, width=True, size=True):
    """bench_draw.as_drawing with parts switchable; the same random draws whatever is switched off."""
    big = np.clip(ndimage.zoom(digit.astype(np.float64), 4, order=1), 0, 255)
    radius = int(rng.integers(-2, 3))
    if radius and width:
        footprint = np.ones((2 * abs(radius) + 1,) * 2, bool)
        big = (ndimage.grey_dilation if radius > 0 else ndimage.grey_erosion)(big, footprint=footprint)
    angle = rng.uniform(-12, 12)
    if rotate:
        big = np.clip(ndimage.rotate(big, angle, reshape=True, order=1), 0, 255)
    frame = rng.uniform(0.5, 3.0) * 28
    side = max(2, round(big.shape[0] * (frame if size else 56) / 112))
    small = np.clip(resize(big, (side, side)), 0, 255)
    canvas = np.zeros((CANVAS, CANVAS))
    top, left = rng.integers(0, CANVAS - side + 1, size=2)
    canvas[top:top + side, left:left + side] = small
    return canvas


def recomputed_norms(network, images):
    """Set every batch norm's running mean and variance to those of ``images`` passed through the layers below."""
    for i, layer in enumerate(network.layers):
        if layer.kind != "bn":
            continue
        outputs = []
        for start in range(0, len(images), 1000):
            a = images[start:start + 1000]
            for lower in network.layers[:i]:
                a = lower.forward(a)
            outputs.append(a.reshape(-1, a.shape[-1]))
        z = np.concatenate(outputs).astype(np.float64)
        layer.state["mean"][...] = z.mean(axis=0)
        layer.state["var"][...] = z.var(axis=0, ddof=1)


def probe(run):
    data = load_data(load_toml(Path(run) / "config.toml"))
    model = Model.load(run)
    net = model.network
    clean_x, clean_y = data.train_x[:CLEAN], data.train_y[:CLEAN]
    wrong = int(np.sum(net.predict(clean_x) != clean_y))
    print(f"{run}")
    print(f"  clean training images: {100 * (1 - wrong / len(clean_y)):.2f}% of the first {len(clean_y):,} "
          f"({wrong} wrong)")
    val = 100 * float(np.mean(net.predict(data.val_x) == data.val_y))
    images = np.rint(data.val_x[:REDRAWN].reshape(-1, 28, 28) * 255).astype(np.uint8)
    labels = data.val_y[:REDRAWN]

    def accuracy(x):
        return 100 * float(np.mean(model.predict(x.reshape(len(x), 784).astype(np.float32) / 255) == labels))

    plain = accuracy(images)
    print(f"  redrawn validation images (first {REDRAWN:,}; plain {plain:.2f}%):")
    for name, parts in [("all", {}), ("no rotation", {"rotate": False}), ("no stroke width", {"width": False}),
                        ("fixed size", {"size": False}), ("size only", {"rotate": False, "width": False}),
                        ("none", {"rotate": False, "width": False, "size": False})]:
        rng = np.random.default_rng(0)
        drawn = np.array([p if (p := mnist_like(draw(x, rng, **parts))) is not None else np.zeros((28, 28), np.uint8)
                          for x in images])
        got = accuracy(drawn)
        print(f"    {name:<16} {got:6.2f}%  drop {plain - got:5.2f}")
    if any(layer.kind == "bn" for layer in net.layers):
        recomputed_norms(net, clean_x.reshape(-1, *net.input_shape))
        again = 100 * float(np.mean(net.predict(data.val_x) == data.val_y))
        print(f"  validation: {val:.2f}% as trained, {again:.2f}% with batch norm's statistics recomputed on the "
              f"clean training images")
    else:
        print(f"  validation: {val:.2f}% (no batch norm)")


def main(argv=None):
    runs = sys.argv[1:] if argv is None else argv
    if not runs:
        print(__doc__)
        return 2
    for run in runs:
        if not (Path(run) / "model.safetensors").is_file():
            print(f"cnn_probes: {run}: no model.safetensors", file=sys.stderr)
            return 2
        probe(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
