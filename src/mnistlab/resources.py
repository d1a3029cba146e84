"""What a run will need, in memory and on disk, before anything is allocated; and a check that it fits.

``estimate(config, n_train, n_val, n_test)`` adds up the arrays a training run holds (see ``Estimate``
for each part and where it comes from); ``check_fits(estimate, out_dir)`` raises ``InputError`` when
this machine's available memory, or the free space of ``out_dir``'s file system, is short of it;
``describe(estimate)`` says it in a line. A ``--hidden 100000000`` network then gets one line instead
of a NumPy MemoryError for 292 GiB, and ``--hidden 50000,50000`` says up front that it will write 30 GB.
"""

import math
import os
import shutil
from dataclasses import dataclass, fields
from pathlib import Path

from .arch import INFERENCE_IM2COL_ROWS
from .errors import InputError

FLOAT = 4  # float32: weights, optimizer state, activations, data
INDEX = 8  # np.intp: labels as the trainer holds them, the shuffle order
HEADER = 64 * 1024  # a safetensors file's JSON header: config, history, generator state (generous)
OPTIMIZER_COPIES = {"sgd": 1, "adam": 2}  # parameter-sized arrays: velocity; first and second moments
RESTORES_BEST = {"patience"}  # stopping rules that keep a copy of the best epoch's weights


@dataclass(frozen=True)
class Estimate:
    """Bytes a run needs. Memory parts, each the arrays' own sizes:

    - ``weights``: every layer's parameters and saved state, float32 (a dense layer's ``[W; b]``).
    - ``build``: extra while the network is built or loaded: a second copy (the initializer's
      temporary for one layer, or a file's tensors as they are read).
    - ``optimizer``: SGD's velocity (none without momentum), or Adam's two moments plus the gradient
      and update temporaries of its largest layer.
    - ``best``: the copy of the best epoch's weights kept by a stopping rule that restores them.
    - ``checkpoint``: when resuming, the checkpoint's tensors, read back whole beside the network
      (writing one copies nothing: safetensors writes straight from the arrays).
    - ``batch``: one training step's buffers (each layer's input and input gradient, dropout masks,
      the wide layers' scratch: ``arch.Arch.training_memory``), for the full batch size and for the
      epoch's last, shorter batch.
    - ``epoch``: per-sample records of an epoch (shifted logits, one-hot labels, row sums) and the
      labels as integers; ``evaluation``: the activations of one evaluation chunk.
    - ``data``: training, validation and test images as float32.
    - ``shuffle``: the shuffled copy of the training set made every epoch, with its order.

    Disk: ``model`` (model.safetensors) and ``checkpoint_file`` (checkpoint.safetensors: weights,
    optimizer state, best weights); while a checkpoint is rewritten, old and new exist together.
    """

    weights: int
    build: int
    optimizer: int
    best: int
    checkpoint: int
    batch: int
    epoch: int
    evaluation: int
    data: int
    shuffle: int
    model: int
    checkpoint_file: int

    @property
    def training(self):
        """Memory held while training, the data not included."""
        return (self.weights + self.optimizer + self.best + self.checkpoint + self.batch + self.epoch
                + self.evaluation + self.shuffle)

    @property
    def memory(self):
        """The most memory the run holds at once, the data included."""
        return self.data + max(self.weights + self.build, self.training)

    @property
    def disk(self):
        """What the run folder holds at the end."""
        return self.model + self.checkpoint_file

    @property
    def disk_peak(self):
        """The most disk the run needs at once: a checkpoint and its replacement, or a checkpoint and the model."""
        return self.checkpoint_file + max(self.checkpoint_file, self.model)

    def parts(self):
        return {f.name: getattr(self, f.name) for f in fields(self)}


def estimate(config, n_train, n_val, n_test, features=784, classes=10, resuming=False):
    """The Estimate for a run of ``config`` (a RunConfig: its network, optimizer, momentum, stop and
    batch_size) on that many images of ``features`` pixels; ``resuming``: continuing from a checkpoint,
    which is read whole first. The network's sizes come from its architecture spec (arch.py)."""
    arch = config.resolved(features, classes)
    layers = [layer.parameter_count + sum(math.prod(s) for s in layer.state.values()) for layer in arch.layers]
    weights = FLOAT * sum(layers)
    largest = FLOAT * max(layers)
    if config.optimizer == "adam":
        state, temporaries = OPTIMIZER_COPIES["adam"] * weights, 3 * largest  # m, v; g, a temporary, the update
    else:
        state, temporaries = (weights * OPTIMIZER_COPIES["sgd"] if config.momentum else 0), 0
    best = weights if config.stop in RESTORES_BEST else 0
    checkpoint = weights + state + best  # its tensors

    def step(rows):  # every layer's step buffers (nn/layer.py), and the logits
        return arch.training_memory(rows) if rows > 0 else 0

    batch = step(min(config.batch_size, n_train)) + step(n_train % config.batch_size)
    epoch = FLOAT * n_train * (2 * classes + 1) + INDEX * (n_train + n_val)
    # Network.logits: arch.inference_rows images at a time, two layers' outputs alive at once (and a
    # conv's im2col block of INFERENCE_IM2COL_ROWS rows).
    widest = max(math.prod(layer.out_shape) for layer in arch.layers)
    im2col = max([INFERENCE_IM2COL_ROWS * (layer.options["kernel"] ** 2 * layer.in_shape[0] + 1)
                  for layer in arch.layers if layer.kind == "conv"], default=0)
    evaluation = FLOAT * (2 * min(max(n_train, n_val, n_test), arch.inference_rows) * widest + im2col)
    return Estimate(
        weights=weights, build=weights, optimizer=state + temporaries, best=best,
        checkpoint=checkpoint if resuming else 0,
        batch=batch, epoch=epoch, evaluation=evaluation, data=FLOAT * features * (n_train + n_val + n_test),
        shuffle=(FLOAT * features + 2 * INDEX) * n_train, model=weights + HEADER,
        checkpoint_file=checkpoint + HEADER)


def size_text(n):
    """Bytes as a person reads them: '292.4 GiB', '30.5 MiB'."""
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def describe(est):
    """One line for the log: what the run will need."""
    return (f"needs about {size_text(est.memory)} of memory and {size_text(est.disk)} of disk "
            f"({size_text(est.disk_peak)} while a checkpoint is rewritten)")


def available_memory():
    """Bytes this process can still allocate without swapping: MemAvailable, within a cgroup's limit
    if the process runs in one; None if the system does not say."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    try:  # cgroup v2: the limit less what the group already uses
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            found.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def free_disk(path):
    """Free bytes on the file system that holds ``path`` (or would hold it, if it does not exist yet)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def check_fits(est, out_dir, data_in_memory=True):
    """Raise InputError if the run cannot fit in this machine's memory or on ``out_dir``'s disk.

    ``data_in_memory``: the data is loaded already (the usual order, since its size is known only
    then), so it is no longer part of what must still be available.
    """
    needed = est.memory - (est.data if data_in_memory else 0)
    available = available_memory()
    if available is not None and needed > available:
        raise InputError(f"this run needs {size_text(needed)} of memory"
                         f"{' beyond its data' if data_in_memory else ''}, this machine has "
                         f"{size_text(available)} available (smaller --hidden or --batch-size?)")
    free = free_disk(out_dir)
    if est.disk_peak > free:
        raise InputError(f"{out_dir}: this run needs {size_text(est.disk_peak)} of disk, its file system has "
                         f"{size_text(free)} free")
    return est
