"""Model files: a trained network as a safetensors file, no pickle, readable by other frameworks.

This module and ``checkpoint.py`` beside it are the only code that knows the files' layouts. A
model file holds ``dense.{i}.weight`` (fan_in, fan_out) and ``dense.{i}.bias`` for each layer, plus
a ``mnistlab`` metadata entry: a JSON object whose ``format`` names the layout and its version
(``mnistlab-mlp/1``), with the layer sizes, activation, initializer, input normalisation, training
config, seed, final metrics and the training data's fingerprint. A future model type (a CNN) is one
more layout name here. Every write goes to a temporary file in the same folder and is renamed into
place, so a crash never leaves a half-written file. Loading checks the file against its own metadata.
"""

import json
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_bytes
from safetensors.numpy import save_file

from .errors import InputError
from .files import atomic_write, finite_or_none

MODEL_LAYOUT = "mnistlab-mlp"
CHECKPOINT_LAYOUT = "mnistlab-checkpoint"
VERSION = 1  # of both layouts; files written before checkpoints named theirs are read as version 1
FORMAT = f"{MODEL_LAYOUT}/{VERSION}"
NORMALISATION = "pixel / 255, float32, row-major 28x28 flattened to 784"


def layer_names(i, prefix=""):
    """The names of layer ``i``'s weight and bias tensors, as every mnistlab file names them."""
    return f"{prefix}dense.{i}.weight", f"{prefix}dense.{i}.bias"


def parameter_tensors(weights, biases, prefix=""):
    """{name: array} for lists of layer weights (fan_in, fan_out) and biases (fan_out,)."""
    tensors = {}
    for i, (W, b) in enumerate(zip(weights, biases)):
        w_name, b_name = layer_names(i, prefix)
        tensors[w_name], tensors[b_name] = np.ascontiguousarray(W), np.ascontiguousarray(b)
    return tensors


def network_tensors(network, prefix=""):
    return parameter_tensors(network.weights, network.biases, prefix)


def layer_tensors(tensors, sizes, path, prefix=""):
    """(weights, biases) lists for layer sizes like [784, 800, 10] out of a file's tensors, each shape
    checked; InputError naming the file and tensor if one is missing or misshapen."""
    weights, biases = [], []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w_name, b_name = layer_names(i, prefix)
        for name, shape, into in ((w_name, (fan_in, fan_out), weights), (b_name, (fan_out,), biases)):
            if name not in tensors:
                raise InputError(f"{path}: tensor {name} missing (metadata says sizes {sizes})")
            if tensors[name].shape != shape:
                raise InputError(f"{path}: tensor {name} has shape {tensors[name].shape}, "
                                 f"metadata sizes {sizes} need {shape}")
            into.append(np.ascontiguousarray(tensors[name], dtype=np.float32))
    return weights, biases


def write_file(path, tensors, layout, meta):
    """Write ``tensors`` and the metadata ``meta`` (stamped with its layout and version) atomically."""
    meta = finite_or_none({"format": f"{layout}/{VERSION}", **meta})
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"mnistlab": json.dumps(meta)}))


def read_file(path, tensors=True):
    """(tensors, metadata dict, layout) of a file mnistlab wrote, or InputError naming the file.

    ``layout`` is read from the metadata's ``format``; older files without one are told apart by their
    content. ``tensors=False`` reads the metadata only (tensors is then None).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such weights file")
    try:
        # One open, one read: metadata and tensors come from the same file even when it is replaced
        # (renamed over) meanwhile; two opens once mixed an old file's metadata with a new one's tensors.
        with open(path, "rb") as f:
            data = f.read() if tensors else _header_bytes(f)
        raw = _metadata(data)
        arrays = load_bytes(data) if tensors else None
    except (SafetensorError, OSError, ValueError, RecursionError) as e:
        raise InputError(f"{path}: not a readable safetensors file ({e})") from None
    if "mnistlab" not in raw:
        raise InputError(f"{path}: no mnistlab metadata (not written by mnistlab?)")
    try:
        meta = json.loads(raw["mnistlab"])
    except ValueError as e:
        raise InputError(f"{path}: metadata is damaged ({e})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: metadata is damaged (not a JSON object)")
    fmt = meta.get("format")
    if fmt is None:  # checkpoints written before they carried a format
        layout, version = (CHECKPOINT_LAYOUT if "rng" in meta and "history" in meta else MODEL_LAYOUT), 1
    else:
        layout, _, version = str(fmt).partition("/")
        if layout not in (MODEL_LAYOUT, CHECKPOINT_LAYOUT) or not version.isdigit():
            raise InputError(f"{path}: unknown file format {fmt!r}")
        if int(version) > VERSION:
            raise InputError(f"{path}: format {fmt!r} is newer than this mnistlab reads "
                             f"({layout}/{VERSION}); upgrade mnistlab")
    return arrays, meta, layout


MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header


def _header_bytes(f):
    """The length prefix and JSON header of an open safetensors file (not its tensors)."""
    prefix = f.read(8)
    if len(prefix) < 8:
        raise ValueError("shorter than a safetensors header")
    n = int.from_bytes(prefix, "little")
    if n > MAX_HEADER_BYTES:
        raise ValueError(f"header of {n} bytes")
    header = f.read(n)
    if len(header) < n:
        raise ValueError("the header is cut short")
    return prefix + header


def _metadata(data):
    """The ``__metadata__`` dict (text to text) in the header at the start of ``data``."""
    n = int.from_bytes(data[:8], "little")
    if len(data) < 8 or n > MAX_HEADER_BYTES or len(data) < 8 + n:
        raise ValueError("the header is cut short")
    header = json.loads(data[8:8 + n])
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError("__metadata__ is not a map of texts")
    return meta


def read_metadata(path):
    """The metadata dict of a file mnistlab wrote, without reading its tensors."""
    return read_file(path, tensors=False)[1]


def save_model(path, network, **info):
    """Write ``network`` and ``info`` (config, seed, metrics, data fingerprint, ...) to ``path``."""
    meta = {"sizes": network.sizes, "activation": network.activation_name, "dropout": network.dropout,
            "normalisation": NORMALISATION, **info}
    write_file(path, network_tensors(network), MODEL_LAYOUT, meta)


def load_model(path):
    """(Network, metadata) from a file written by ``save_model``; InputError if it is damaged."""
    from .nn import ACTIVATIONS, Network  # here, so reading metadata needs no network code

    tensors, meta, layout = read_file(path)
    if layout == CHECKPOINT_LAYOUT:
        folder = Path(path).parent
        if Path(path).name == "model.safetensors":  # pointing at the file itself would help no one
            raise InputError(f"{path}: is a training checkpoint, not a model, though named as one "
                             "(a finished run writes its model.safetensors; a checkpoint resumes training)")
        raise InputError(f"{path}: is a training checkpoint, not a model: use {folder / 'model.safetensors'} "
                         f"(written when the run finishes; mnistlab train --resume {folder} finishes it)")
    try:
        sizes = [int(s) for s in meta["sizes"]]
        activation = meta["activation"]
    except KeyError as e:
        raise InputError(f"{path}: metadata is damaged (no {e.args[0]!r})") from None
    except (ValueError, TypeError) as e:
        raise InputError(f"{path}: metadata is damaged ({e})") from None
    if len(sizes) < 2:
        raise InputError(f"{path}: metadata sizes {sizes} describe no layer")
    weights, biases = layer_tensors(tensors, sizes, path)
    extra = set(tensors) - set(parameter_tensors(weights, biases))
    if extra:
        raise InputError(f"{path}: tensors {sorted(extra)} not described by its metadata")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise InputError(f"{path}: unknown activation {activation!r} in metadata")
    if not all(np.isfinite(a).all() for a in weights + biases):
        raise InputError(f"{path}: weights contain NaN or infinity")
    return Network(weights, biases, activation), meta
