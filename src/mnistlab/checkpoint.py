"""Checkpoint files: a training run's whole state after an epoch, so an interrupted run resumes exactly.

The layout (owned here and in ``weights.py``, nowhere else): the network's ``dense.{i}.weight`` and
``dense.{i}.bias``; the optimizer's arrays as ``optimizer.{name}``; the best epoch's weights as
``best.dense.{i}.*`` when the stopping rule restores them; and a ``mnistlab`` metadata entry with
``format`` (``mnistlab-checkpoint/1``), the run's config, history, random generator state, stop
reason, best (validation loss, epoch), layer sizes and the training data's fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .trainer import Best
from .weights import (CHECKPOINT_LAYOUT, MODEL_LAYOUT, layer_tensors, network_tensors, parameter_tensors, read_file,
                      write_file)

OPTIMIZER_PREFIX = "optimizer."
BEST_PREFIX = "best."


@dataclass
class Checkpoint:
    """What a checkpoint file holds; ``tensors`` is None when only the metadata was read."""

    path: Path
    config: dict  # RunConfig.to_dict() of the run
    data_sha256: str | None
    stop_reason: str | None  # set once the run has finished
    history: list  # one dict per finished epoch
    meta: dict
    tensors: dict | None


def save_checkpoint(path, trainer, config, data_sha256):
    """Write ``trainer``'s state (see train.Trainer) with the run's ``config`` and data fingerprint."""
    tensors = network_tensors(trainer.network)
    tensors.update({OPTIMIZER_PREFIX + k: v for k, v in trainer.optimizer.state().items()})
    best = trainer.best
    if best:
        tensors.update(parameter_tensors(best.weights, best.biases, BEST_PREFIX))
    meta = {"config": config.to_dict(), "history": trainer.history, "rng": trainer.rng.bit_generator.state,
            "stop_reason": trainer.stop_reason, "data_sha256": data_sha256,
            "best": [best.val_loss, best.epoch] if best else None, "sizes": trainer.network.sizes}
    write_file(path, tensors, CHECKPOINT_LAYOUT, meta)


def read_checkpoint(path, tensors=True):
    """The Checkpoint in ``path``; InputError naming it if it is missing, damaged or a model file."""
    path = Path(path)
    arrays, meta, layout = read_file(path, tensors)
    if layout == MODEL_LAYOUT:
        raise InputError(f"{path}: is a model file, not a training checkpoint")
    try:
        return Checkpoint(path, dict(meta["config"]), meta.get("data_sha256"), meta.get("stop_reason"),
                          list(meta["history"]), meta, arrays)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: checkpoint is damaged ({e})") from None


def restore(checkpoint, trainer):
    """Put the checkpoint's network, optimizer, best weights, history and generator into ``trainer``,
    whose network must have the checkpoint's layer sizes."""
    path, tensors, meta = checkpoint.path, checkpoint.tensors, checkpoint.meta
    sizes = trainer.network.sizes
    try:
        trainer.network.set_parameters(*layer_tensors(tensors, sizes, path))
        trainer.optimizer.load_state({k[len(OPTIMIZER_PREFIX):]: v for k, v in tensors.items()
                                      if k.startswith(OPTIMIZER_PREFIX)})
        if meta["best"]:
            val_loss, epoch = meta["best"]
            trainer.best = Best(val_loss, epoch, *layer_tensors(tensors, sizes, path, BEST_PREFIX))
        trainer.history = checkpoint.history
        trainer.rng.bit_generator.state = meta["rng"]
        trainer.stop_reason = checkpoint.stop_reason
    except (KeyError, ValueError, TypeError) as e:
        raise InputError(f"{path}: checkpoint is damaged or from another run ({e})") from None
