"""Fine-tuning a saved model on a folder of the user's drawings, mixed with MNIST so it does not forget it.

``mnistlab train --init-from W --data drawings/ --mix 0.8`` lands here (``start_finetune``): when
``--data`` is a drawings folder (data/collection.py; one unprefixed IDX pair), the run starts from
the weights ``init_from`` names and every mini-batch holds ``round(mix * batch_size)`` MNIST training
images and the rest drawings. An epoch is one pass over the drawings' training part (drawn again
from the start when it runs out inside the last batch); the drawings are augmented anew every epoch
(``augment`` and its strengths, as in training), the MNIST images are not. ``val_fraction`` of the
drawings is held out: the weights of the epoch with the lowest validation loss on them are kept.
``test_data`` (optional) is a second drawings folder, e.g. of writers the fine-tuning never saw.

The run folder is laid out as a training run's (config.toml, history.csv, model.safetensors,
metrics.json), so the drawing page offers the new model. metrics.json gives the MNIST test accuracy
(``test_accuracy``) beside the drawings' (``drawings_val_accuracy``, ``drawings_test_accuracy``),
each also as it was before fine-tuning (``before``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .build import augmentation, loaded_network, make_optimizer, random_streams
from .config import to_toml, validate
from .data import fingerprint, load_dataset, load_images_labels, split_validation, to_float
from .data.idx import find_idx
from .errors import InputError
from .files import write_json, write_text
from .nn import make_schedule
from .nn.blas import thread_limits, threads_for
from .run import HISTORY, METRICS, MODEL, RunResult, claim_folder, epoch_line, history_csv
from .weights import save_model


def is_drawings_folder(path):
    """True for a folder holding one unprefixed IDX set (images-idx3-ubyte[.gz]) and no MNIST split."""
    if path is None or not Path(path).is_dir():
        return False
    folder = Path(path)
    return bool(find_idx(folder, "images-idx3-ubyte")) and not find_idx(folder, "train-images-idx3-ubyte")


class FinetuneData(NamedTuple):
    """float32 images (n, 784) in [0, 1] and integer labels: the drawings split in two, MNIST's
    training set (the batches' other part) and test set, and the optional second drawings set."""

    draw_x: np.ndarray
    draw_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    mnist_x: np.ndarray
    mnist_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    other_x: np.ndarray  # test_data's drawings, or empty
    other_y: np.ndarray
    fingerprint: str
    source: str


def load_finetune_data(config):
    images, labels = load_images_labels(config.data)
    dx, dy, vx, vy = split_validation(images, labels, config.val_fraction, random_streams(config.seed).split)
    if len(dx) == 0:
        raise InputError(f"{config.data}: no drawings left for training after holding out {config.val_fraction:.0%}")
    mnist = load_dataset()
    if config.test_data:
        ox, oy = load_images_labels(config.test_data)
    else:
        ox, oy = np.zeros((0, images.shape[1]), np.uint8), np.zeros(0, np.uint8)
    f = to_float
    source = f"drawings {config.data} + bundled MNIST (mix {config.mix:g})"
    return FinetuneData(f(dx), dy.astype(np.intp), f(vx), vy.astype(np.intp), f(mnist.train_images),
                        mnist.train_labels.astype(np.intp), f(mnist.test_images), mnist.test_labels.astype(np.intp),
                        f(ox), oy.astype(np.intp), fingerprint(images, labels), source)


def mixed_epoch(data, batch_size, mix, rng, augment=None):
    """One epoch's (images, labels), batch after batch of ``round(mix * batch_size)`` MNIST training
    images followed by drawings: the drawings in a new order (augmented with ``augment``), once each
    and then again from the start to fill the last batch; the MNIST images drawn at random."""
    from_mnist = int(round(mix * batch_size))
    per_batch = batch_size - from_mnist
    if per_batch < 1:
        raise InputError(f"mix {mix}: leaves no room for a drawing in a batch of {batch_size}; lower --mix")
    batches = -(-len(data.draw_x) // per_batch)
    order = np.resize(rng.permutation(len(data.draw_x)), batches * per_batch)
    drawings = data.draw_x[order]
    if augment is not None:
        drawings = augment.apply(drawings, rng)
    picks = rng.integers(0, len(data.mnist_x), batches * from_mnist)
    features = data.draw_x.shape[1]
    xs = np.empty((batches, batch_size, features), np.float32)
    ys = np.empty((batches, batch_size), np.intp)
    xs[:, :from_mnist] = data.mnist_x[picks].reshape(batches, from_mnist, features)
    ys[:, :from_mnist] = data.mnist_y[picks].reshape(batches, from_mnist)
    xs[:, from_mnist:] = drawings.reshape(batches, per_batch, features)
    ys[:, from_mnist:] = data.draw_y[order].reshape(batches, per_batch)
    return xs.reshape(-1, features), ys.reshape(-1)


def scores(network, data):
    """Loss and accuracy on MNIST's test set and on the drawings held out (None where there are none)."""
    def pair(x, y):
        return network.evaluate(x, y) if len(x) else (None, None)

    (test_loss, test_acc), (val_loss, val_acc), (other_loss, other_acc) = (
        pair(data.test_x, data.test_y), pair(data.val_x, data.val_y), pair(data.other_x, data.other_y))
    return {"test_accuracy": test_acc, "test_loss": test_loss, "drawings_val_accuracy": val_acc,
            "drawings_val_loss": val_loss, "drawings_test_accuracy": other_acc, "drawings_test_loss": other_loss}


def start_finetune(config, out_dir, log=print, unique=False):
    """Fine-tune ``config.init_from`` on the drawings folder ``config.data`` into ``out_dir``."""
    started = time.perf_counter()
    validate(config)
    if not config.init_from:
        raise InputError(f"--data {config.data}: a drawings folder fine-tunes a saved model: "
                         "give --init-from RUN/model.safetensors")
    network = loaded_network(config)
    if network.sizes[0] != 784 or network.sizes[-1] != 10:
        raise InputError(f"{config.init_from}: a {network.sizes} network does not read 28x28 digits")
    from dataclasses import replace
    config = replace(config, hidden=tuple(network.sizes[1:-1]), activation=network.activation_name)
    network.dropout = config.dropout
    data = load_finetune_data(config)
    out_dir = claim_folder(Path(out_dir), to_toml(config), unique)
    log(f"fine-tuning {network.sizes} from {config.init_from} on {len(data.draw_x)} drawings "
        f"({len(data.val_x)} held out) with MNIST making {config.mix:.0%} of each batch")
    before = scores(network, data)
    rng = random_streams(config.seed).train
    augment = augmentation(config)
    optimizer = make_optimizer(config)
    schedule = make_schedule(config.schedule, config.lr, config.epochs, config.step_size, config.gamma)
    history, best = [], None
    threads = threads_for(network.largest_product(config.batch_size), config.threads)
    with thread_limits(threads), np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(config.epochs):
            start = time.perf_counter()
            xs, ys = mixed_epoch(data, config.batch_size, config.mix, rng, augment)
            loss, correct = network.train_epoch(xs, ys, config.batch_size, optimizer, schedule(epoch), rng)
            if not math.isfinite(loss):
                raise InputError(f"fine-tuning diverged at epoch {epoch + 1}: lower --lr (now {config.lr})")
            val_loss, val_acc = network.evaluate(data.val_x, data.val_y) if len(data.val_x) else (math.nan, math.nan)
            record = {"epoch": epoch + 1, "train_loss": loss, "train_accuracy": correct / len(xs),
                      "val_loss": val_loss, "val_accuracy": val_acc, "learning_rate": schedule(epoch),
                      "seconds": time.perf_counter() - start}
            history.append(record)
            write_text(out_dir / HISTORY, history_csv(history))
            log(epoch_line(record, config.epochs, history))
            if len(data.val_x) and (best is None or val_loss < best[0]):
                best = (val_loss, epoch + 1, network.copy_parameters())
    if best is not None:
        network.set_parameters(*best[2])
    after = scores(network, data)
    metrics = {"stop_reason": f"max epochs ({config.epochs})", "epochs": len(history),
               "seconds": round(sum(r["seconds"] for r in history), 3),
               "wall_seconds": round(time.perf_counter() - started, 3), "diverged": False,
               "data": data.source, "data_sha256": data.fingerprint, "init_from": config.init_from,
               "mix": config.mix, "drawings": {"train": len(data.draw_x), "val": len(data.val_x),
                                               "test": len(data.other_x)},
               **after, "before": before}
    if best is not None:
        metrics["best_epoch"] = best[1]
    final = history[best[1] - 1] if best else history[-1]
    metrics.update({k: final[k] for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")})
    save_model(out_dir / MODEL, network, init=config.init, config=config.to_dict(), seed=config.seed, metrics=metrics)
    write_json(out_dir / METRICS, metrics)
    return RunResult(out_dir, metrics, network)


def describe_result(metrics):
    """Lines for the command line: MNIST and drawings accuracy before and after."""
    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}%"

    before = metrics["before"]
    lines = [f"MNIST test accuracy   {pct(before['test_accuracy'])} -> {pct(metrics['test_accuracy'])}",
             f"drawings held out     {pct(before['drawings_val_accuracy'])} -> {pct(metrics['drawings_val_accuracy'])}"
             f"  ({metrics['drawings']['val']} drawings)"]
    if metrics["drawings"]["test"]:
        lines.append(f"drawings, test set    {pct(before['drawings_test_accuracy'])} -> "
                     f"{pct(metrics['drawings_test_accuracy'])}  ({metrics['drawings']['test']} drawings)")
    return lines
