"""The run configuration: one dataclass whose defaults are the defaults, everywhere.

``RunConfig`` describes a training run. ``load_toml`` reads a config file and ``validate`` checks
every value; both raise ``InputError`` naming the file or flag at fault. The command line maps its
flags onto the same fields (see ``cli.py``), so each default is written once, here.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass

from .errors import InputError
from .nn import ACTIVATIONS, INITIALIZERS, OPTIMIZERS, SCHEDULES
from .stopping import STOPPING


@dataclass
class RunConfig:
    # Data: a folder of MNIST-format IDX files (gzipped or not) or a training CSV; None = bundled MNIST.
    data: str | None = None
    test_data: str | None = None  # a test CSV/IDX file, required with a CSV --data
    val_fraction: float = 0.1  # held out of the training set, as in the study
    # Network
    hidden: tuple[int, ...] = (800, 800)
    activation: str = "relu"
    init: str = "he"
    dropout: float = 0.0
    # Optimisation
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9  # sgd only; 0 gives plain mini-batch gradient descent
    nesterov: bool = True
    weight_decay: float = 0.0
    batch_size: int = 64
    schedule: str = "cosine"
    step_size: int = 10  # step schedule: epochs between rate drops
    gamma: float = 0.1  # step schedule: factor per drop
    # Stopping
    epochs: int = 15
    stop: str = "none"
    stop_k: int = 5  # early / overfit / patience: consecutive epochs
    plateau_window: int = 10
    plateau_tolerance: float = 0.001
    # Bookkeeping
    seed: int = 0
    init_from: str | None = None  # fine-tune from saved weights
    threads: int | None = None  # most BLAS threads; None = every core (small networks use one)

    def to_dict(self):
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
CHOICES = {"activation": ACTIVATIONS, "init": INITIALIZERS, "optimizer": OPTIMIZERS,
           "schedule": SCHEDULES, "stop": STOPPING}


def _label(name, where):
    """A setting as the user wrote it: ``--batch-size`` on the command line, ``batch_size`` in a file."""
    return "--" + name.replace("_", "-") if where == "flag" else name


def validate(config, where="config"):
    """Raise InputError on the first bad value; ``where`` names the file or 'flag' for the message."""
    def bad(name, why):
        raise InputError(f"{where}: {_label(name, where)} = {getattr(config, name)!r}: {why}")

    for name, choices in CHOICES.items():
        if getattr(config, name) not in choices:
            bad(name, f"expected one of {', '.join(choices)}")
    for name in ("lr", "batch_size", "epochs", "stop_k", "plateau_window", "step_size", "gamma",
                 "plateau_tolerance"):
        value = getattr(config, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            bad(name, "must be a positive number")
    if not config.hidden or any(not isinstance(h, int) or h <= 0 for h in config.hidden):
        bad("hidden", "hidden layer sizes must be positive integers")
    for name, low, high in (("dropout", 0, 1), ("val_fraction", 0, 1), ("momentum", 0, 1)):
        value = getattr(config, name)
        if not (isinstance(value, (int, float)) and low <= value < high):
            bad(name, f"must be in [{low}, {high})")
    if not (math.isfinite(config.weight_decay) and config.weight_decay >= 0):
        bad("weight_decay", "must be >= 0")
    if config.seed < 0:
        bad("seed", "must be >= 0")
    if config.stop in ("early", "overfit", "patience") and config.val_fraction == 0:
        bad("stop", "needs a validation set (val_fraction > 0)")
    if config.threads is not None and config.threads <= 0:
        bad("threads", "must be a positive integer")
    return config


def _coerce(name, value, where):
    """Turn a TOML or flag value into the field's type; reject what does not fit."""
    kind = FIELDS[name].type
    try:
        if name == "hidden":
            if isinstance(value, str):
                value = [v for v in value.replace(" ", "").split(",") if v != ""]
            return tuple(int(v) for v in value)
        if isinstance(value, bool) and kind not in ("bool",):
            raise ValueError
        if kind == "int" or kind == "int | None" and value is not None:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if isinstance(value, str):
                return {"true": True, "false": False}[value.lower()]
            if not isinstance(value, bool):
                raise ValueError
            return value
        return None if value is None else str(value)
    except (ValueError, TypeError, KeyError):
        raise InputError(f"{where}: {_label(name, where)} = {value!r}: not a valid {kind}") from None


def updated(config, values, where):
    """A copy of ``config`` with ``values`` (name -> value) applied; unknown names are an error."""
    changes = {}
    for name, value in values.items():
        if name not in FIELDS:
            raise InputError(f"{where}: unknown key {name!r} (known: {', '.join(FIELDS)})")
        changes[name] = _coerce(name, value, where)
    return dataclasses.replace(config, **changes)


def load_toml(path):
    """A RunConfig from a TOML file of ``name = value`` lines (a [train] table is also accepted)."""
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML: {e}") from None
    if set(values) == {"train"} and isinstance(values["train"], dict):
        values = values["train"]
    return validate(updated(RunConfig(), values, str(path)), str(path))
