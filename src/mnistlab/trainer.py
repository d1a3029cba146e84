"""The training loop: shuffle each epoch, run mini-batches, record a history, ask the stopping rule.

``Trainer(network, optimizer, schedule, stopping, rng, batch_size).fit(train_x, train_y, val_x, val_y)`` returns
the stop reason. It does no file I/O: ``on_epoch(trainer)`` is called after every epoch so the caller
can write the history and a checkpoint (see ``run.py``). Its whole state (network, optimizer,
history, best weights, generator) can be saved and put back, so an interrupted run resumes exactly.
"""

import math
import time
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from .nn.blas import thread_limits, threads_for
from .runfolder import HISTORY_FIELDS  # the keys of each epoch's record (a history.csv row)


class Best(NamedTuple):
    """The best validation epoch so far and its weights, kept when the stopping rule restores them."""

    val_loss: float
    epoch: int  # 1-based, as in the history
    tensors: dict  # a copy of Network.tensors(): "dense.0.weight" -> array


class Trainer:
    def __init__(self, network, optimizer, schedule, stopping, rng, batch_size):
        self.network = network
        self.optimizer = optimizer
        self.schedule = schedule  # epoch (0-based) -> learning rate
        self.stopping = stopping
        self.rng = rng
        self.batch_size = batch_size
        self.history = []  # one dict per finished epoch, keys HISTORY_FIELDS
        self.best = None  # a Best when the stopping rule restores the best weights
        self.stop_reason = None
        self._shuffled = None  # (images, labels) buffers for each epoch's shuffled copy
        self.augment = None  # online augmentation: .epoch(e) -> epoch e's images (data.prefetch.EpochImages)

    def fit(self, train_x, train_y, val_x, val_y, threads=None, progress=False, on_epoch=None):
        """Train until the stopping rule fires or the loss diverges; return the stop reason.

        train_x: (n, features) float32, train_y: (n,) integer labels; likewise the validation set
        (which may be empty). ``threads``: the most BLAS threads to use (None: every core); small
        networks and batches use one (see ``blas.threads_for``).
        """
        train_y = train_y.astype(np.intp)
        val_y = val_y.astype(np.intp)
        # A diverging run overflows; that is caught below as a non-finite loss, so numpy need not warn.
        threads = threads_for(self.network.largest_product(self.batch_size), threads)
        with thread_limits(threads) as cores, np.errstate(over="ignore", invalid="ignore"):
            while self.stop_reason is None:
                cores.update()  # share the cores anew with other mnistlab processes, once per epoch
                record = self._epoch(train_x, train_y, val_x, val_y, progress)
                if record is None:
                    self.stop_reason = f"diverged at epoch {len(self.history) + 1}"
                else:
                    self.history.append(record)
                    self._remember_best(record)
                    self.stop_reason = self.stopping.should_stop(self.history)
                if self.stop_reason and self.stopping.restores_best and self.best:
                    self.network.set_parameters(self.best.tensors)
                if on_epoch:
                    on_epoch(self)
        return self.stop_reason

    def _epoch(self, train_x, train_y, val_x, val_y, progress):
        """One pass over the shuffled training set; the epoch's record, or None if it diverged."""
        start = time.perf_counter()
        epoch = len(self.history)
        learning_rate = self.schedule(epoch)
        # One shuffled contiguous copy per epoch: every batch is then a cheap view, where
        # fancy-indexing each batch would copy it anyway and touch memory in random order. The copy
        # goes into the same buffer every epoch: a new 170 MB array would be page-faulted in anew
        # (0.3 s, against 0.02 s for the gather itself).
        if self.augment is not None:
            train_x = self.augment.epoch(epoch)  # same shape, labels unchanged; made while the last epoch trained
        order = self.rng.permutation(len(train_x))
        if self._shuffled is None or self._shuffled[0].shape != train_x.shape:
            self._shuffled = np.empty_like(train_x), np.empty_like(train_y)
        xs, ys = self._shuffled
        np.take(train_x, order, axis=0, out=xs, mode="clip")  # "clip": unbuffered (order is in range)
        np.take(train_y, order, out=ys, mode="clip")
        bar = tqdm(total=len(xs), desc=f"epoch {epoch + 1}", unit="img", leave=False,
                   disable=not progress, mininterval=0.5)

        def show(seen, loss_sum, correct):
            bar.update(seen - bar.n)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False)

        loss, correct = self.network.train_epoch(xs, ys, self.batch_size, self.optimizer, learning_rate,
                                                 self.rng, show if progress else None)
        bar.close()
        if not math.isfinite(loss):
            return None
        if not all(np.isfinite(t).all() for t in self.network.tensors().values()):
            return None
        val_loss, val_accuracy = self.network.evaluate(val_x, val_y) if len(val_x) else (math.nan, math.nan)
        return {"epoch": epoch + 1, "train_loss": loss, "train_accuracy": correct / max(len(xs), 1),
                "val_loss": val_loss, "val_accuracy": val_accuracy, "learning_rate": learning_rate,
                "seconds": time.perf_counter() - start}

    def _remember_best(self, record):
        if not self.stopping.restores_best:
            return
        if self.best is None or record["val_loss"] < self.best.val_loss:
            self.best = Best(record["val_loss"], record["epoch"], self.network.copy_parameters())

    def final_record(self):
        """The history row of the weights the network ends with: the best epoch's if restored."""
        if not self.history:
            return None
        return self.history[self.best.epoch - 1] if self.best else self.history[-1]
