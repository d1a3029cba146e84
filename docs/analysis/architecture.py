"""The figures of REPORT section 3 that the study's table does not hold, from results/architecture/.

Per configuration (means over its finished seeds): multiply-adds per image, seconds per epoch, the
last epoch's training accuracy and loss, the epoch of the lowest validation loss and how far the
validation loss rose after it; and the largest logit seed 0's model gives on the 60,000 training
images, when its weights are on disk (they are not committed: `mnistlab sweep architecture` makes
them). Reads run folders only; trains nothing.

    python docs/analysis/architecture.py [RESULTS_DIR]
"""

import csv
import statistics
import sys
from pathlib import Path

import numpy as np

import mnistlab
from mnistlab.arch import hidden_arch, resolve


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def multiply_adds(hidden):
    """Multiply-adds per image of the network a study's ``hidden=100-100`` key names (arch.py's count)."""
    return resolve(hidden_arch(map(int, hidden.split("-")))).macs


def largest_logit(model_file, images):
    model = mnistlab.load(model_file)
    x, _ = model.inputs(images)
    return max(float(logits.max()) for _, logits in model.chunks(x))


def main(results=Path("results/architecture")):
    runs = [r for r in read_csv(results / "runs.csv") if r["status"] == "finished"]
    images = None
    print("configuration | MACs/image | s/epoch | train acc | train loss | best val-loss epoch | "
          "val-loss rise | largest logit (seed 0)")
    for row in read_csv(results / "table.csv"):
        mine = [r for r in runs if r["config"] == row["config"]]
        histories = [read_csv(results / r["run_dir"] / "history.csv") for r in mine]
        per_epoch, train_acc, train_loss, best, rise = [], [], [], [], []
        for r, history in zip(mine, histories):
            val_loss = [float(h["val_loss"]) for h in history]
            lowest = int(np.argmin(val_loss))
            per_epoch.append(float(r["seconds"]) / len(history))
            train_acc.append(float(history[-1]["train_accuracy"]))
            train_loss.append(float(history[-1]["train_loss"]))
            best.append(lowest + 1)
            rise.append(val_loss[-1] - val_loss[lowest])
        model_file = next((results / r["run_dir"] / "model.safetensors" for r in mine if r["seed"] == "0"), None)
        logit = "-"
        if model_file and model_file.is_file():
            images = mnistlab.load_mnist().train_images if images is None else images
            logit = f"{largest_logit(model_file, images):.1f}"
        mean = statistics.mean
        print(f"{row['label']} | {multiply_adds(row['hidden']) / 1e3:.0f}k | {mean(per_epoch):.1f} | "
              f"{mean(train_acc):.4f} | {mean(train_loss):.4f} | {mean(best):.0f} | {mean(rise):.4f} | {logit}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("results/architecture"))
