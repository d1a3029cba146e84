"""Stopping criteria: small objects that read the training history and say whether to stop.

Each criterion has ``should_stop(history) -> reason | None``, where ``history`` is the list of
per-epoch records the trainer keeps (dicts with ``train_loss``, ``val_loss``, ...). ``AnyOf`` combines
them; ``make_stopping(name, ...)`` builds the one a run config names. A criterion with
``restores_best = True`` asks the trainer to put back the weights of the best validation epoch.
"""

import numpy as np


class MaxEpochs:
    restores_best = False

    def __init__(self, epochs):
        self.epochs = epochs

    def should_stop(self, history):
        if len(history) >= self.epochs:
            return f"max epochs ({self.epochs})"
        return None


class Early:
    """The study's rule as written: training loss below validation loss for ``k`` epochs in a row."""

    restores_best = False

    def __init__(self, k=5):
        self.k = k

    def should_stop(self, history):
        recent = history[-self.k:]
        if len(recent) == self.k and all(r["train_loss"] < r["val_loss"] for r in recent):
            return f"early: training loss below validation loss for {self.k} epochs"
        return None


class Overfit:
    """The common reading: validation loss rising for ``k`` epochs in a row while training loss falls."""

    restores_best = False

    def __init__(self, k=5):
        self.k = k

    def should_stop(self, history):
        recent = history[-(self.k + 1):]
        if len(recent) < self.k + 1:
            return None
        pairs = list(zip(recent, recent[1:]))
        if all(b["val_loss"] > a["val_loss"] and b["train_loss"] < a["train_loss"] for a, b in pairs):
            return f"overfit: validation loss rose for {self.k} epochs while training loss fell"
        return None


class Patience:
    """No new best validation loss for ``k`` epochs; the trainer then restores the best weights."""

    restores_best = True

    def __init__(self, k=5):
        self.k = k

    def should_stop(self, history):
        if not history:
            return None
        best = int(np.argmin([r["val_loss"] for r in history]))
        if len(history) - 1 - best >= self.k:
            return f"patience: no better validation loss for {self.k} epochs (best at epoch {best + 1})"
        return None


class Plateau:
    """The study's plateau: std of the last ``window`` training losses below ``tolerance`` x their mean."""

    restores_best = False

    def __init__(self, window=10, tolerance=0.001):
        self.window = window
        self.tolerance = tolerance

    def should_stop(self, history):
        losses = [r["train_loss"] for r in history[-self.window:]]
        if len(losses) == self.window and np.std(losses) < self.tolerance * np.mean(losses):
            return f"plateau: training loss flat over {self.window} epochs"
        return None


class AnyOf:
    """Stops when the first of its criteria does; restores the best weights if any of them asks."""

    def __init__(self, *criteria):
        self.criteria = criteria
        self.restores_best = any(c.restores_best for c in criteria)

    def should_stop(self, history):
        for criterion in self.criteria:
            reason = criterion.should_stop(history)
            if reason:
                return reason
        return None


def make_stopping(name, epochs, k=5, window=10, tolerance=0.001):
    """The run's criterion: always ``epochs`` at most, plus the named one ('none' adds nothing)."""
    extra = {"none": None, "early": Early(k), "overfit": Overfit(k), "patience": Patience(k),
             "plateau": Plateau(window, tolerance)}[name]
    return AnyOf(MaxEpochs(epochs), *([extra] if extra else []))


STOPPING = ("none", "early", "overfit", "patience", "plateau")
