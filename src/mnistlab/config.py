"""The run configuration: one dataclass, the one source of every setting.

Each ``RunConfig`` field carries its default, its help text, the placeholder ``--help`` shows
(``N``, ``RATE``, ``SIZES``, ``PATH``, ``NAME``...), its choices and its check, as field metadata.
The command line's flags (``cli.py``), the TOML keys (``load_toml``/``to_toml``), ``--help`` and
validation are all derived from it: a new setting is one field here. Bad values raise ``InputError``
naming the file or flag and the key.

This module imports no part of the network, so ``mnistlab --help`` stays fast: the choices are
name tuples, and ``tests/test_config.py`` checks them against the registries in ``nn`` and ``stopping``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from dataclasses import dataclass, field

from . import arch as archspec
from .errors import InputError

# The registries' names (nn.ACTIVATIONS, nn.INITIALIZERS, nn.OPTIMIZERS, nn.SCHEDULES, stopping.STOPPING).
ACTIVATION_NAMES = ("relu", "leaky_relu", "sigmoid", "tanh")
INITIALIZER_NAMES = ("zero", "random", "he", "xavier", "he_report", "xavier_report")
OPTIMIZER_NAMES = ("sgd", "adam")
SCHEDULE_NAMES = ("constant", "step", "cosine")
STOPPING_NAMES = ("none", "early", "overfit", "patience", "plateau")
AUGMENT_NAMES = ("thickness", "zoom", "rotate", "shear", "shift", "elastic", "resample", "blur", "squares",
                 "noise")  # data.augment
# "all": the nine transforms of the augmentation study, as when it ran; resample came later and is named alone
ALL_AUGMENTS = tuple(name for name in AUGMENT_NAMES if name != "resample")
AUGMENT_MODES = ("online", "offline")
AUGMENT_COPY_KINDS = ("composed", "one_each")
AUGMENT_STRENGTHS = ("rotate", "zoom", "shear", "shift", "elastic_alpha", "elastic_sigma", "thickness", "resample",
                     "blur", "squares", "square_size", "noise")


# ---------------------------------------------------------------- checks: value -> complaint or None

def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def positive(value):
    return None if _number(value) and value > 0 else "must be a positive number"


def at_least_zero(value):
    return None if _number(value) and value >= 0 else "must be >= 0"


def fraction(value):
    return None if _number(value) and 0 <= value < 1 else "must be in [0, 1)"


def positive_sizes(value):
    ok = value and all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in value)
    return None if ok else "hidden layer sizes must be positive integers"


def valid_arch(value):
    if value is None:
        return None
    try:
        archspec.parse(value)
    except archspec.ArchError as e:
        return str(e).removeprefix("arch: ")
    return None


def positive_or_none(value):
    return None if value is None or (_number(value) and value > 0) else "must be a positive integer"


def augment_names(value):
    """'rotate, elastic' -> ('rotate', 'elastic'); 'all' -> every transform but resample; 'none' -> ()."""
    if value in ("none", "all"):
        return () if value == "none" else ALL_AUGMENTS
    return tuple(name.strip() for name in str(value).split(",") if name.strip())


def known_augmentations(value):
    unknown = [name for name in augment_names(value) if name not in AUGMENT_NAMES]
    if unknown or not augment_names(value) and value != "none":
        return f"unknown transform {(unknown or [value])[0]!r} (known: {', '.join(AUGMENT_NAMES)}; or all, none)"
    return None


def setting(default, help, metavar, *, choices=None, check=None, shown=None):
    """A RunConfig field: its default and everything the CLI, the TOML files and validation need.

    ``shown`` replaces "(default: ...)" in --help where the default is None and means something.
    """
    return field(default=default, metadata={"help": help, "metavar": metavar, "choices": choices,
                                            "check": check, "shown": shown})


@dataclass
class RunConfig:
    # Data
    data: str | None = setting(
        None, "a folder of MNIST-format IDX files (gzipped or not), or a training file (CSV or IDX images)", "PATH",
        shown="bundled MNIST")
    test_data: str | None = setting(None, "test set: a CSV file, an IDX images file or a folder; required with a "
                                    "training file", "PATH",
                                    shown="the test set of --data")
    val_fraction: float = setting(0.1, "fraction of the training set held out for validation", "FRACTION",
                                  check=fraction)
    # Network
    hidden: tuple[int, ...] = setting((800, 800), "hidden layer sizes, comma-separated: short for --arch "
                                      "fc800-fc800", "SIZES", check=positive_sizes)
    arch: str | None = setting(None, "the network as layer tokens: fcN, convNkK[sS][same|valid], poolK, bn, "
                               "dropP, gap, flatten, joined by '-' (e.g. conv32k5-pool2-fc128; the final fc10 is "
                               "implied)", "SPEC", check=valid_arch, shown="the fc layers of hidden")
    activation: str = setting("relu", "hidden activation", "NAME", choices=ACTIVATION_NAMES)
    init: str = setting("he", "weight initializer", "NAME", choices=INITIALIZER_NAMES)
    dropout: float = setting(0.0, "dropout probability on hidden units", "P", check=fraction)
    # Augmentation (data/augment.py): which transforms, how, and each one's strength
    augment: str = setting("shift,elastic", f"augmentations, comma-separated: {', '.join(AUGMENT_NAMES)}; or all (all but resample), none",
                           "NAMES", check=known_augmentations)
    augment_mode: str = setting("online", "online: fresh variants every epoch; offline: the set plus "
                                "--augment-copies fixed variants per image", "MODE", choices=AUGMENT_MODES)
    augment_copies: int = setting(4, "offline augmentation: variants per training image", "K", check=at_least_zero)
    augment_copy: str = setting("composed", "offline augmentation: composed (each variant applies every named "
                                "transform) or one_each (variant k applies only the k-th named transform, "
                                "in the order named, cycling)", "KIND", choices=AUGMENT_COPY_KINDS)
    rotate: float = setting(10.0, "augment: rotation, degrees (+-)", "DEGREES", check=at_least_zero)
    zoom: float = setting(0.1, "augment: scale in [1 - zoom, 1 + zoom]", "FRACTION", check=fraction)
    shear: float = setting(10.0, "augment: horizontal shear, degrees (+-)", "DEGREES", check=at_least_zero)
    shift: float = setting(2.0, "augment: shift per axis, pixels (+-)", "PIXELS", check=at_least_zero)
    elastic_alpha: float = setting(34.0, "augment: elastic displacement scale, pixels (Simard et al. 2003)",
                                   "ALPHA", check=at_least_zero)
    elastic_sigma: float = setting(4.0, "augment: smoothness of the elastic field (Gaussian sigma), pixels",
                                   "SIGMA", check=positive)
    thickness: int = setting(1, "augment: stroke width change, pixels (+-)", "PIXELS", check=at_least_zero)
    resample: float = setting(0.5, "augment: digits shrunk to a side from 28 (1 - resample) to 28 px and enlarged "
                                   "back, as the drawing page's preprocessing treats a digit drawn small", "FRACTION",
                              check=fraction)
    blur: float = setting(1.0, "augment: Gaussian blur sigma, pixels", "SIGMA", check=at_least_zero)
    squares: int = setting(2, "augment: black squares per image (cutout)", "N", check=at_least_zero)
    square_size: int = setting(6, "augment: black squares' side, pixels", "PIXELS", check=positive)
    noise: float = setting(0.1, "augment: pixel noise std, fraction of full scale", "STD", check=at_least_zero)
    # Optimisation
    optimizer: str = setting("sgd", "optimizer", "NAME", choices=OPTIMIZER_NAMES)
    lr: float = setting(0.05, "learning rate", "RATE", check=positive)
    momentum: float = setting(0.9, "SGD momentum (0: plain mini-batch gradient descent)", "M", check=fraction)
    nesterov: bool = setting(True, "Nesterov momentum (true/false)", "BOOL")
    weight_decay: float = setting(0.0, "L2 weight decay", "RATE", check=at_least_zero)
    batch_size: int = setting(64, "mini-batch size", "N", check=positive)
    schedule: str = setting("cosine", "learning-rate schedule", "NAME", choices=SCHEDULE_NAMES)
    step_size: int = setting(10, "step schedule: epochs between drops", "N", check=positive)
    gamma: float = setting(0.1, "step schedule: factor per drop", "FACTOR", check=positive)
    # Stopping
    epochs: int = setting(15, "maximum number of epochs", "N", check=positive)
    stop: str = setting("none", "extra stopping rule", "NAME", choices=STOPPING_NAMES)
    stop_k: int = setting(5, "epochs in a row for early/overfit/patience", "K", check=positive)
    plateau_window: int = setting(10, "plateau: epochs whose training-loss spread is measured", "N",
                                  check=positive)
    plateau_tolerance: float = setting(0.001, "plateau: stop when std < tolerance x mean", "TOL",
                                       check=positive)
    # Bookkeeping
    seed: int = setting(0, "seed for the split, the initial weights, shuffling and dropout", "N",
                        check=at_least_zero)
    init_from: str | None = setting(
        None, "fine-tune from a saved model.safetensors (its architecture is used; --hidden and "
        "--activation must agree with it or be left out)", "PATH", shown="none")
    mix: float = setting(0.8, "fine-tuning on a drawings folder (--data DIR with --init-from): the fraction of "
                         "each batch taken from MNIST's training set", "FRACTION", check=fraction)
    threads: int | None = setting(
        None, "most BLAS threads to use; small networks and batches use one", "N", check=positive_or_none,
        shown="every core")

    def to_dict(self):
        return dataclasses.asdict(self)

    @property
    def spec(self):
        """The network's architecture string: ``arch``, or the fc layers of ``hidden``."""
        return self.arch if self.arch is not None else archspec.hidden_arch(self.hidden)

    def resolved(self, features=784, classes=archspec.CLASSES):
        """The arch.Arch this config trains on data of ``features`` values per image."""
        return archspec.resolve(self.spec, features, classes, self.activation, self.dropout)


FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


def label(name, where):
    """A setting as the user wrote it: ``--batch-size`` on the command line, ``batch_size`` in a file."""
    return "--" + name.replace("_", "-") if where == "flag" else name


def flag_text(value):
    """A value as a flag takes it: 800,800 for a tuple, true/false for a bool."""
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def help_text(name):
    """One field's --help line: its text, its choices and its default."""
    meta = FIELDS[name].metadata
    text = meta["help"]
    if meta["choices"]:
        text += ": " + ", ".join(meta["choices"])
    default = meta["shown"] or flag_text(FIELDS[name].default)
    return f"{text} (default: {default})"


def validate(config, where="config"):
    """Raise InputError on the first bad value; ``where`` names the file or 'flag' for the message."""
    def bad(name, why):
        raise InputError(f"{where}: {label(name, where)} = {getattr(config, name)!r}: {why}", field=name)

    for name, f in FIELDS.items():
        value = getattr(config, name)
        choices, check = f.metadata["choices"], f.metadata["check"]
        if choices and value not in choices:
            bad(name, f"expected one of {', '.join(choices)}")
        if check and (why := check(value)):
            bad(name, why)
    if config.arch is not None and config.hidden != FIELDS["hidden"].default:
        bad("arch", "give the network as arch or as hidden, not both")
    if config.augment_copy != "composed" and config.augment_mode != "offline":
        bad("augment_copy", "applies to offline augmentation only (augment_mode = offline)")
    if config.stop in ("early", "overfit", "patience") and config.val_fraction == 0:
        bad("stop", "needs a validation set (val_fraction > 0)")
    return config


def _integer(value):
    """An int from an int, a whole float or a numeric string; ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError
        return int(value)
    return int(value)


def _coerce(name, value, where):
    """Turn a TOML or flag value into the field's type; reject what does not fit."""
    kind = FIELDS[name].type
    try:
        if name == "hidden":
            if isinstance(value, str):
                value = [v for v in value.replace(" ", "").split(",") if v != ""]
            elif isinstance(value, int) and not isinstance(value, bool):
                value = [value]  # one hidden layer
            if not isinstance(value, (list, tuple)):
                raise ValueError
            return tuple(_integer(v) for v in value)  # 16.5 is refused in a file as on the command line
        if value is None and "None" in kind:
            return None
        if isinstance(value, bool) and kind != "bool":
            raise ValueError
        if kind.startswith("int"):
            return _integer(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if isinstance(value, str):
                return {"true": True, "false": False}[value.lower()]
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if not isinstance(value, str):
            raise ValueError
        if name == "arch" and (why := valid_arch(value)):
            raise InputError(f"{where}: {label(name, where)} = {value!r}: {why}", field=name)
        return value
    except InputError:
        raise
    except (ValueError, TypeError, KeyError, OverflowError):
        kind = "list of int" if name == "hidden" else kind.replace(" | None", "")
        raise InputError(f"{where}: {label(name, where)} = {value!r}: not a valid {kind}", field=name) from None


def updated(config, values, where):
    """A copy of ``config`` with ``values`` (name -> value) applied; unknown names are an error."""
    changes = {}
    for name, value in values.items():
        if name not in FIELDS:
            raise InputError(f"{where}: unknown key {name!r} (known: {', '.join(FIELDS)})", field=name)
        changes[name] = _coerce(name, value, where)
    if changes.get("arch") is not None:  # one form for one network: an all-fc spec becomes hidden
        if changes.get("hidden", FIELDS["hidden"].default) != FIELDS["hidden"].default:
            raise InputError(f"{where}: {label('arch', where)} and {label('hidden', where)} both given: "
                             "give the network one way", field="arch")
        hidden = archspec.dense_hidden(changes["arch"])
        changes["hidden"] = hidden or FIELDS["hidden"].default
        changes["arch"] = None if hidden else archspec.format_arch(archspec.parse(changes["arch"]))
    elif "hidden" in changes:
        changes["arch"] = None
    return dataclasses.replace(config, **changes)


def from_values(values, where):
    """A validated RunConfig from name -> value pairs (defaults for the rest)."""
    return validate(updated(RunConfig(), values, where), where)


def read_toml(path):
    """A TOML file as a dict; InputError naming the file if it cannot be read or parsed."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid TOML: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML: {e}") from None


def load_toml(path):
    """A RunConfig from a TOML file of ``name = value`` lines (a [train] table is also accepted)."""
    values = read_toml(path)
    if set(values) == {"train"} and isinstance(values["train"], dict):
        values = values["train"]
    return from_values(values, str(path))


def _toml_value(value):
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    return repr(value)


def to_toml(config, comments=False):
    """The config as TOML that ``load_toml`` reads back. None values are left out, or with
    ``comments`` written as commented-out lines, each key under its help text."""
    lines = []
    for name, value in config.to_dict().items():
        if name == "hidden" and config.arch is not None:
            continue  # the network is the arch; hidden would contradict it
        if comments:
            lines.append(f"\n# {help_text(name)}\n")
        if value is None:
            if comments:
                lines.append(f"# {name} = {json.dumps(FIELDS[name].metadata['metavar'])}\n")
            continue
        lines.append(f"{name} = {_toml_value(value)}\n")
    if comments:
        lines.insert(0, "# mnistlab run configuration: every setting with its default.\n"
                        "# mnistlab train --config FILE reads it; flags override it.\n")
    return "".join(lines)
