"""From a RunConfig to the objects a run needs: random streams, data, network, optimizer, trainer.

The one place where settings become library objects, so ``run.py`` (the run folder) and the Python
API build a run alike. Every random step draws from its own stream of the config's seed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import data as datasets
from .errors import InputError
from .nn import OPTIMIZERS, Network, Sgd, make_schedule
from .stopping import make_stopping
from .trainer import Trainer
from .weights import load_model

CLASSES = 10
AUGMENT_STREAM = 3  # the augmentation's generators: [seed, 3] (offline), [seed, 3, epoch] (online)


class Streams(NamedTuple):
    """Independent random generators of one seed: the validation split, the initial weights, and
    training (shuffles and dropout masks)."""

    split: np.random.Generator
    init: np.random.Generator
    train: np.random.Generator


def random_streams(seed):
    return Streams(*(np.random.default_rng([seed, k]) for k in range(3)))


class RunData(NamedTuple):
    """A config's data: float32 images (n, 784) in [0, 1] and integer labels, split three ways."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    fingerprint: str  # of the whole training set, before the split
    source: str  # where it came from, for logs and metadata


def augmentation(config):
    """The data.augment.Augmentation a config asks for, or None for ``augment = "none"``."""
    from .config import AUGMENT_STRENGTHS, augment_names

    names = augment_names(config.augment)
    if not names:
        return None
    from .data.augment import Augmentation

    return Augmentation(names, **{name: getattr(config, name) for name in AUGMENT_STRENGTHS})


def load_data(config):
    """The RunData a config names (the bundled MNIST when ``config.data`` is None); with offline
    augmentation the training part holds each image and ``augment_copies`` variants of it."""
    ds = datasets.load_dataset(config.data, config.test_data)
    tx, ty, vx, vy = datasets.split_validation(ds.train_images, ds.train_labels, config.val_fraction,
                                               random_streams(config.seed).split)
    augment = augmentation(config)
    if augment and config.augment_mode == "offline":
        from .data.augment import expand

        tx, ty = expand(tx, ty, augment, config.augment_copies, np.random.default_rng([config.seed, AUGMENT_STREAM]),
                        one_each=config.augment_copy == "one_each")
    f = datasets.to_float
    return RunData(f(tx), ty, f(vx), vy, f(ds.test_images), ds.test_labels,
                   datasets.fingerprint(ds.train_images, ds.train_labels), ds.source)


def online_augmentation(config, train_x):
    """With online augmentation, the data.prefetch.EpochImages that makes each epoch's images while
    the one before trains; else None. Close it when training ends."""
    augment = augmentation(config)
    if not augment or config.augment_mode != "online":
        return None
    from .data.prefetch import EpochImages

    return EpochImages(train_x, augment, [config.seed, AUGMENT_STREAM])


def make_optimizer(config):
    if config.optimizer == "sgd":
        return Sgd(config.momentum, config.nesterov, config.weight_decay)
    return OPTIMIZERS[config.optimizer](weight_decay=config.weight_decay)


def loaded_network(config):
    """The network ``config.init_from`` names, refusing flags that contradict it: a run folder must
    describe exactly what was trained. (The config's defaults are not contradictions.)"""
    from .config import FIELDS, flag_text

    network, _ = load_model(config.init_from)
    for name, theirs in (("hidden", tuple(network.sizes[1:-1])), ("activation", network.activation_name)):
        ours = getattr(config, name)
        if ours != theirs and ours != FIELDS[name].default:
            raise InputError(f"{config.init_from}: the network's {name} is {flag_text(theirs)}, not "
                             f"{flag_text(ours)}: leave {name} out when fine-tuning", field=name)
    return network


def as_trained(config):
    """The config as the run will really train it: with ``init_from``, the loaded network's hidden
    sizes and activation, so config.toml and the model's metadata record the truth."""
    if not config.init_from:
        return config
    from dataclasses import replace

    network = loaded_network(config)
    return replace(config, hidden=tuple(network.sizes[1:-1]), activation=network.activation_name)


def build_trainer(config, features, classes=CLASSES):
    """A Trainer for ``config`` on data of ``features`` inputs: a new network, or the ``init_from`` one."""
    streams = random_streams(config.seed)
    if config.init_from:
        network = loaded_network(config)
        if network.sizes[0] != features or network.sizes[-1] != classes:
            raise InputError(f"{config.init_from}: network is {network.sizes}, "
                             f"data needs {features} inputs and {classes} classes")
        network.dropout = config.dropout
    else:
        sizes = [features, *config.hidden, classes]
        network = Network.initialized(sizes, config.init, streams.init, config.activation, config.dropout)
    schedule = make_schedule(config.schedule, config.lr, config.epochs, config.step_size, config.gamma)
    stopping = make_stopping(config.stop, config.epochs, config.stop_k, config.plateau_window,
                             config.plateau_tolerance)
    return Trainer(network, make_optimizer(config), schedule, stopping, streams.train, config.batch_size)
