"""Model files: a trained network as a safetensors file, no pickle, readable by other frameworks.

This module and ``checkpoint.py`` beside it are the only code that knows the files' layouts. A model
file holds each layer's tensors named ``{kind}.{position}.{name}`` (``dense.0.weight`` (fan_in,
fan_out), ``dense.0.bias``; a layer's saved state too, such as ``bn.1.mean``) and a ``mnistlab``
metadata entry: a JSON object whose ``format`` names the layout and its version, with the
activation, initializer, input normalisation, training config, seed, final metrics and the training
data's fingerprint. Two layouts, one version each:

- ``mnistlab-mlp/1``: an all-dense network, described by its layer ``sizes`` ([784, 800, 800, 10]),
  written exactly as before there were other layer types, so every model file keeps working;
- ``mnistlab-net/1``: any other network, described by its ``arch`` string (see ``arch.py``),
  ``input_shape`` and ``classes``.

Every write goes to a temporary file in the same folder and is renamed into place, so a crash never
leaves a half-written file. Loading checks the file against its own metadata.
"""

import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_bytes
from safetensors.numpy import save_file

from .arch import ArchError, hidden_arch, resolve
from .errors import InputError
from .files import atomic_write, finite_or_none

MLP_LAYOUT, NET_LAYOUT = "mnistlab-mlp", "mnistlab-net"
MODEL_LAYOUTS = (MLP_LAYOUT, NET_LAYOUT)
CHECKPOINT_LAYOUT = "mnistlab-checkpoint"
VERSIONS = {MLP_LAYOUT: 1, NET_LAYOUT: 1, CHECKPOINT_LAYOUT: 2}  # what this mnistlab writes and reads up to
NORMALISATION = "pixel / 255, float32, row-major 28x28 flattened to 784"  # of mnistlab-mlp/1 files


def normalisation(network):
    """The input normalisation a model file records."""
    if network.sizes is not None:
        return NORMALISATION
    return f"pixel / 255, float32, row-major, input shape {'x'.join(map(str, network.input_shape))}"


def check_tensors(network, tensors, path, what, prefix=""):
    """Copy ``tensors`` (names as ``network.tensors()``, behind ``prefix``) into a dict of float32
    arrays, every name and shape checked; InputError naming the file and tensor otherwise. ``what``
    says what the metadata describes (``sizes [784, 16, 10]``)."""
    out = {}
    for name, array in network.tensors().items():
        key = prefix + name
        if key not in tensors:
            raise InputError(f"{path}: tensor {key} missing (metadata says {what})")
        if tensors[key].shape != array.shape:
            raise InputError(f"{path}: tensor {key} has shape {tensors[key].shape}, "
                             f"metadata {what} need {array.shape}")
        out[name] = np.ascontiguousarray(tensors[key], dtype=np.float32)
    return out


class FileContents(NamedTuple):
    tensors: dict | None  # name -> array
    meta: dict
    layout: str  # MLP_LAYOUT, NET_LAYOUT or CHECKPOINT_LAYOUT
    version: int


def write_file(path, tensors, layout, meta):
    """Write ``tensors`` and the metadata ``meta`` (stamped with its layout and version) atomically."""
    meta = finite_or_none({"format": f"{layout}/{VERSIONS[layout]}", **meta})
    # safetensors writes an array's memory as it lies: a strided view (a conv's weight in PyTorch's
    # order is one of its packed array) would be scrambled; contiguous arrays are passed as they are.
    tensors = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"mnistlab": json.dumps(meta)}))


def read_file(path, tensors=True):
    """The FileContents of a file mnistlab wrote, or InputError naming the file.

    ``layout`` and ``version`` are read from the metadata's ``format``; older files without one are
    told apart by their content. ``tensors=False`` reads the metadata only (tensors is then None).
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
        layout, version = (CHECKPOINT_LAYOUT if "rng" in meta and "history" in meta else MLP_LAYOUT), 1
    else:
        layout, _, version = str(fmt).partition("/")
        if layout not in VERSIONS or not version.isdigit():
            raise InputError(f"{path}: unknown file format {fmt!r}")
        if int(version) > VERSIONS[layout]:
            raise InputError(f"{path}: format {fmt!r} is newer than this mnistlab reads "
                             f"({layout}/{VERSIONS[layout]}); upgrade mnistlab")
        version = int(version)
    return FileContents(arrays, meta, layout, version)


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
    return read_file(path, tensors=False).meta


def model_meta(network):
    """What a model file's metadata says of the network itself (the layout's description of it)."""
    common = {"activation": network.activation_name, "dropout": network.dropout,
              "normalisation": normalisation(network)}
    if network.sizes is not None:
        return MLP_LAYOUT, {"sizes": network.sizes, **common}
    return NET_LAYOUT, {"arch": network.arch.text, "input_shape": list(network.input_shape),
                        "classes": network.classes, **common}


def save_model(path, network, **info):
    """Write ``network`` and ``info`` (config, seed, metrics, data fingerprint, ...) to ``path``."""
    layout, meta = model_meta(network)
    write_file(path, network.tensors(), layout, {**meta, **info})


def file_arch(meta, layout, path):
    """(arch.Arch, what the metadata describes, for messages) of a model or checkpoint's metadata;
    InputError naming the file if it is damaged."""
    try:
        activation = meta["activation"]
        if layout == NET_LAYOUT or "arch" in meta:
            shape = [int(s) for s in meta["input_shape"]]
            arch = resolve(meta["arch"], math.prod(shape), int(meta["classes"]), activation)
            if list(arch.input_shape) != shape:
                raise InputError(f"{path}: metadata input shape {shape} does not fit its arch {meta['arch']!r}")
            return arch, f"arch {meta['arch']!r}"
        sizes = [int(s) for s in meta["sizes"]]
        if len(sizes) < 2:
            raise InputError(f"{path}: metadata sizes {sizes} describe no layer")
        return resolve(hidden_arch(sizes[1:-1]), sizes[0], sizes[-1], activation), f"sizes {sizes}"
    except ArchError as e:
        raise InputError(f"{path}: metadata is damaged ({e})") from None
    except InputError:
        raise
    except KeyError as e:
        raise InputError(f"{path}: metadata is damaged (no {e.args[0]!r})") from None
    except (ValueError, TypeError) as e:
        raise InputError(f"{path}: metadata is damaged ({e})") from None


def load_model(path):
    """(Network, metadata) from a file written by ``save_model``; InputError if it is damaged."""
    from .nn import ACTIVATIONS, Network  # here, so reading metadata needs no network code

    tensors, meta, layout, _ = read_file(path)
    if layout == CHECKPOINT_LAYOUT:
        folder = Path(path).parent
        if Path(path).name == "model.safetensors":  # pointing at the file itself would help no one
            raise InputError(f"{path}: is a training checkpoint, not a model, though named as one "
                             "(a finished run writes its model.safetensors; a checkpoint resumes training)")
        raise InputError(f"{path}: is a training checkpoint, not a model: use {folder / 'model.safetensors'} "
                         f"(written when the run finishes; mnistlab train --resume {folder} finishes it)")
    activation = meta.get("activation")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        if "activation" in meta:
            raise InputError(f"{path}: unknown activation {activation!r} in metadata")
    arch, what = file_arch(meta, layout, path)
    network = Network(arch)
    values = check_tensors(network, tensors, path, what)
    extra = set(tensors) - set(values)
    if extra:
        raise InputError(f"{path}: tensors {sorted(extra)} not described by its metadata")
    if not all(np.isfinite(a).all() for a in values.values()):
        raise InputError(f"{path}: weights contain NaN or infinity")
    network.set_parameters(values)
    return network, meta
