"""The model shipped with mnistlab, so ``mnistlab draw`` and ``mnistlab.load("pretrained")`` work before any
training: ``model.safetensors`` in this folder (package data, in a wheel too), a run's model file with a
``pretrained`` entry added to its metadata saying where it came from.

    shipped_model()                        # its path; InputError if this installation has none
    ship(run_dir, out, robustness=0.991)   # write it from a finished run folder (benchmarks/ship_pretrained.py)

The ``pretrained`` entry: the study, configuration key and seed of the run, the git commit that trained it
(when known), the command that trains it, the SHA-256 of its training data, its metrics (validation and
test accuracy, epochs, seconds of training) and, when measured, its accuracy on redrawn test digits
(``benchmarks/bench_draw.py --only robustness``).
"""

import json
from pathlib import Path

from ..errors import InputError

FILE = Path(__file__).resolve().parent / "model.safetensors"
METRICS = ("val_accuracy", "test_accuracy", "epochs", "seconds")  # copied from the run's metrics.json
PROVENANCE = ("study", "configuration", "seed", "commit", "command", "source", "data_sha256", "metrics",
              "robustness")  # the keys of the ``pretrained`` entry, every one present (None where unknown)
ROBUSTNESS_COMMAND = "python benchmarks/bench_draw.py --only robustness --weights pretrained"


def shipped_model(path=None):
    """The shipped model file (``path`` for another location); InputError if there is none."""
    path = Path(path) if path is not None else FILE
    if not path.is_file():
        raise InputError(f"pretrained: no model shipped with this installation ({path} is missing); "
                         "train one with `make run` and give its run folder instead")
    return path


def available(path=None):
    """The shipped model file, or None if this installation has none."""
    path = Path(path) if path is not None else FILE
    return path if path.is_file() else None


def study_of(run_dir):
    """(study name, configuration key, the run folder's path from the results folder) of a run folder laid out
    as a sweep lays it out (``<study>/runs/<configuration>/seed<k>``); (None, None, its name) for any other."""
    from ..runfolder import RUNS, STUDY_JSON

    run_dir = Path(run_dir).resolve()
    study = run_dir.parents[2] if len(run_dir.parents) > 2 else None
    if study is None or run_dir.parents[1].name != RUNS or not run_dir.name.startswith("seed"):
        return None, None, run_dir.name
    name = study.name
    if (study / STUDY_JSON).is_file():
        name = json.loads((study / STUDY_JSON).read_text()).get("name", name)
    return name, run_dir.parent.name, run_dir.relative_to(study.parent).as_posix()


def provenance(run_dir, commit=None, command=None, robustness=None):
    """The ``pretrained`` metadata entry for the finished run in ``run_dir`` (see the module's docstring).
    ``robustness``: the model's accuracy (0..1) on the redrawn test digits, if measured."""
    from ..runfolder import METRICS as METRICS_FILE
    from ..runfolder import MODEL
    from ..weights import read_metadata

    run_dir = Path(run_dir)
    meta = read_metadata(run_dir / MODEL)
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
    except OSError as e:
        raise InputError(f"{run_dir / METRICS_FILE}: cannot be read ({e.strerror}); not a finished run?") from None
    except ValueError as e:
        raise InputError(f"{run_dir / METRICS_FILE}: not JSON ({e})") from None
    if not isinstance(metrics, dict):
        raise InputError(f"{run_dir / METRICS_FILE}: not a JSON object")
    missing = [key for key in (*METRICS, "data_sha256") if metrics.get(key) is None]
    if missing:
        raise InputError(f"{run_dir / METRICS_FILE}: no {', '.join(missing)} (not a finished run?)")
    if robustness is not None and not 0 <= robustness <= 1:
        raise InputError(f"robustness {robustness}: expected an accuracy from 0 to 1")
    study, configuration, source = study_of(run_dir)
    if command is None:
        command = f"mnistlab sweep {study}" if study else f"mnistlab train --config {run_dir.name}/config.toml"
    return {
        "study": study, "configuration": configuration, "seed": meta.get("seed"),
        "commit": commit or metrics.get("commit") or meta.get("commit"), "command": command,
        "source": f"results/{source}" if study else source,
        "data_sha256": metrics["data_sha256"],
        "metrics": {key: metrics[key] for key in METRICS},
        "robustness": None if robustness is None else {"drawn_accuracy": robustness, "command": ROBUSTNESS_COMMAND},
    }


def ship(run_dir, out=FILE, commit=None, command=None, robustness=None):
    """Write the finished run's model to ``out`` (atomically) with the ``pretrained`` entry in its metadata;
    the file is loaded back before this returns. Returns the entry."""
    from ..runfolder import MODEL
    from ..weights import MODEL_LAYOUTS, load_model, read_file, write_file

    entry = provenance(run_dir, commit, command, robustness)
    tensors, meta, layout, _ = read_file(Path(run_dir) / MODEL)
    if layout not in MODEL_LAYOUTS:
        raise InputError(f"{Path(run_dir) / MODEL}: not a model file")
    meta = {key: value for key, value in meta.items() if key != "format"}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_file(out, tensors, layout, {**meta, "pretrained": entry})
    load_model(out)  # what was written loads, tensors and metadata checked
    return entry


def summary(entry):
    """One line for model cards: 'study cnn, configuration ..., seed 0'."""
    if not entry:
        return None
    parts = [f"study {entry['study']}" if entry.get("study") else None,
             f"configuration {entry['configuration']}" if entry.get("configuration") else None,
             f"seed {entry['seed']}" if entry.get("seed") is not None else None]
    return ", ".join(p for p in parts if p) or entry.get("source")
