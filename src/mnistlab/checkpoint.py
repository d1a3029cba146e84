"""Checkpoint files: a training run's whole state after an epoch, so an interrupted run resumes exactly.

The layout (owned here and in ``weights.py``, nowhere else), ``mnistlab-checkpoint/2``: the network's
tensors as a model file names them (``dense.0.weight``...); the optimizer's arrays as
``optimizer.{kind}.{tensor}`` (``optimizer.v.dense.0.weight``, Adam's ``optimizer.step.dense.0``);
the best epoch's tensors as ``best.{tensor}`` when the stopping rule restores them; and a
``mnistlab`` metadata entry with ``format``, the run's config, history, random generator state, stop
reason, ``best`` ({"val_loss", "epoch"}), the network's ``arch`` and ``input_shape``, and the training
data's fingerprint. Version 1 (before layers had names) stored the optimizer's arrays as ``vW.0``/
``vb.0``, ``best`` as [val_loss, epoch] and only ``sizes``: it is read and resumed all the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .trainer import Best
from .weights import CHECKPOINT_LAYOUT, check_tensors, read_file, write_file

OPTIMIZER_PREFIX = "optimizer."
BEST_PREFIX = "best."
PART = {"W": "weight", "b": "bias"}  # version 1's optimizer array names: vW.0 -> v.dense.0.weight


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
    version: int  # of the checkpoint layout


def save_checkpoint(path, trainer, config, data_sha256):
    """Write ``trainer``'s state (see trainer.Trainer) with the run's ``config`` and data fingerprint."""
    network = trainer.network
    tensors = dict(network.tensors())
    tensors.update({OPTIMIZER_PREFIX + k: v for k, v in trainer.optimizer.state().items()})
    best = trainer.best
    if best:
        tensors.update({BEST_PREFIX + k: v for k, v in best.tensors.items()})
    meta = {"config": config.to_dict(), "history": trainer.history, "rng": trainer.rng.bit_generator.state,
            "stop_reason": trainer.stop_reason, "data_sha256": data_sha256,
            "best": {"val_loss": best.val_loss, "epoch": best.epoch} if best else None,
            "arch": network.arch.text, "input_shape": list(network.input_shape)}
    write_file(path, tensors, CHECKPOINT_LAYOUT, meta)


def read_checkpoint(path, tensors=True):
    """The Checkpoint in ``path``; InputError naming it if it is missing, damaged or a model file."""
    path = Path(path)
    arrays, meta, layout, version = read_file(path, tensors)
    if layout != CHECKPOINT_LAYOUT:
        raise InputError(f"{path}: is a model file, not a training checkpoint")
    try:
        return Checkpoint(path, dict(meta["config"]), meta.get("data_sha256"), meta.get("stop_reason"),
                          list(meta["history"]), meta, arrays, version)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: checkpoint is damaged ({e})") from None


def _optimizer_arrays(checkpoint):
    """The optimizer's arrays by their version-2 names."""
    arrays = {k[len(OPTIMIZER_PREFIX):]: v for k, v in checkpoint.tensors.items() if k.startswith(OPTIMIZER_PREFIX)}
    if checkpoint.version >= 2:
        return arrays
    renamed = {}
    for name, array in arrays.items():  # vW.0, vb.0, mW.0, step.0 (layer 0 of an all-dense network)
        kind, i = name.split(".")
        renamed[f"step.dense.{i}" if kind == "step" else f"{kind[:-1]}.dense.{i}.{PART[kind[-1]]}"] = array
    return renamed


def _best(checkpoint):
    best = checkpoint.meta["best"]
    if not best:
        return None
    return (best["val_loss"], best["epoch"]) if isinstance(best, dict) else tuple(best)


def restore(checkpoint, trainer):
    """Put the checkpoint's network, optimizer, best weights, history and generator into ``trainer``,
    whose network must be the checkpoint's architecture."""
    path, tensors, meta = checkpoint.path, checkpoint.tensors, checkpoint.meta
    network = trainer.network
    what = f"arch {network.arch.text!r}"
    try:
        network.set_parameters(check_tensors(network, tensors, path, what))
        trainer.optimizer.load_state(_optimizer_arrays(checkpoint))
        best = _best(checkpoint)
        if best:
            trainer.best = Best(*best, check_tensors(network, tensors, path, what, BEST_PREFIX))
        trainer.history = checkpoint.history
        trainer.rng.bit_generator.state = meta["rng"]
        trainer.stop_reason = checkpoint.stop_reason
    except (KeyError, ValueError, TypeError) as e:
        raise InputError(f"{path}: checkpoint is damaged or from another run ({e})") from None
