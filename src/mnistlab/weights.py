"""Saving and loading networks as safetensors files: no pickle, readable by other frameworks.

A file holds ``dense.{i}.weight`` (fan_in, fan_out) and ``dense.{i}.bias`` for each layer, plus a
``mnistlab`` metadata entry: a JSON object with the layer sizes, activation, initializer, input
normalisation, training config, seed, final metrics and the training data's fingerprint.
Every write goes to a temporary file in the same folder and is renamed into place, so a crash never
leaves a half-written file. Loading checks the file against its own metadata.
"""

import json
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from .errors import InputError
from .files import atomic_write, finite_or_none
from .nn import ACTIVATIONS, Network

FORMAT = "mnistlab-mlp/1"
NORMALISATION = "pixel / 255, float32, row-major 28x28 flattened to 784"


def network_tensors(network):
    tensors = {}
    for i, (W, b) in enumerate(zip(network.weights, network.biases)):
        tensors[f"dense.{i}.weight"] = np.ascontiguousarray(W)
        tensors[f"dense.{i}.bias"] = np.ascontiguousarray(b)
    return tensors


def save_model(path, network, **info):
    """Write ``network`` and ``info`` (config, seed, metrics, data fingerprint, ...) to ``path``."""
    meta = finite_or_none({"format": FORMAT, "sizes": network.sizes,
                           "activation": network.activation_name, "dropout": network.dropout,
                           "normalisation": NORMALISATION, **info})
    tensors = network_tensors(network)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"mnistlab": json.dumps(meta)}))


def read_safetensors(path):
    """(tensors, metadata dict) of a safetensors file, or InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such weights file")
    try:
        tensors = load_file(path)
        with safe_open(path, "numpy") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable safetensors file ({e})") from None
    return tensors, raw


def load_model(path):
    """(Network, metadata) from a file written by ``save_model``; InputError if it is damaged."""
    tensors, raw = read_safetensors(path)
    if "mnistlab" not in raw:
        raise InputError(f"{path}: no mnistlab metadata (not written by mnistlab?)")
    try:
        meta = json.loads(raw["mnistlab"])
        sizes = [int(s) for s in meta["sizes"]]
        activation = meta["activation"]
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: metadata is damaged ({e})") from None
    if len(sizes) < 2:
        raise InputError(f"{path}: metadata sizes {sizes} describe no layer")
    weights, biases = [], []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        for name, shape, into in ((f"dense.{i}.weight", (fan_in, fan_out), weights),
                                  (f"dense.{i}.bias", (fan_out,), biases)):
            if name not in tensors:
                raise InputError(f"{path}: tensor {name} missing (metadata says sizes {sizes})")
            if tensors[name].shape != shape:
                raise InputError(f"{path}: tensor {name} has shape {tensors[name].shape}, "
                                 f"metadata sizes {sizes} need {shape}")
            into.append(np.ascontiguousarray(tensors[name], dtype=np.float32))
    extra = set(tensors) - {f"dense.{i}.{k}" for i in range(len(weights)) for k in ("weight", "bias")}
    if extra:
        raise InputError(f"{path}: tensors {sorted(extra)} not described by its metadata")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise InputError(f"{path}: unknown activation {activation!r} in metadata")
    if not all(np.isfinite(a).all() for a in weights + biases):
        raise InputError(f"{path}: weights contain NaN or infinity")
    return Network(weights, biases, activation), meta
