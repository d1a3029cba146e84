"""A run folder: start a run, resume it from its last finished epoch, finish it.

``start_run(config, out_dir)`` claims ``out_dir`` (a folder that holds nothing of a run yet; with
``unique=True`` the first free name of ``out_dir``, ``out_dir-2``, ...), trains, evaluates on the test
set and leaves there: config.toml, history.csv, model.safetensors, metrics.json and, after every
epoch, checkpoint.safetensors. ``resume_run(out_dir)`` continues from that checkpoint; a finished run
is left untouched. ``replace_run(config, out_dir)`` trains a new run beside ``out_dir`` and swaps it in
only once it has finished (``make run``, ``train --replace``). The objects come from ``build.py``, the file layouts from ``checkpoint.py``,
``weights.py`` and ``config.to_toml``.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .build import as_trained, build_trainer, load_data, online_augmentation  # noqa: F401  (load_data: for callers and tests)
from .checkpoint import read_checkpoint, restore, save_checkpoint
from .config import from_values, to_toml, validate
from .data import class_spread_warning
from .errors import InputError
from .files import _alive, remove_stale_temporaries, write_json, write_text
from .resources import check_fits, describe, estimate
from .trainer import HISTORY_FIELDS, SCORE_FIELDS
from .weights import load_model, save_model

CONFIG, HISTORY, CHECKPOINT, MODEL, METRICS = \
    "config.toml", "history.csv", "checkpoint.safetensors", "model.safetensors", "metrics.json"
RUN_FILES = (CONFIG, HISTORY, CHECKPOINT, MODEL, METRICS)


@dataclass
class RunResult:
    out_dir: Path
    metrics: dict
    network: object | None  # the trained nn.Network, None if the run diverged


def start_run(config, out_dir, progress=False, log=print, unique=False, after_epoch=None):
    """Train a fresh run into ``out_dir``, which must hold nothing of a run (see ``claim_folder``)."""
    started = time.perf_counter()
    validate(config)
    config = as_trained(config)
    data, trainer = _prepare(config, Path(out_dir), log)
    out_dir = claim_folder(Path(out_dir), to_toml(config), unique)
    return _train(config, out_dir, trainer, data, progress, log, started, after_epoch)


def replace_run(config, out_dir, progress=False, log=print, after_epoch=None):
    """Train a fresh run and make it ``out_dir``'s, replacing the run there only once the new one has finished.

    The new run trains in a hidden sibling folder (``.NAME.PID.HEX.new``); the run in ``out_dir`` stays
    intact until then, so a run stopped mid-way leaves it as it was (the folder of one killed outright is
    removed by the next replace). A run that diverges replaces nothing. ``out_dir`` must be a run folder, empty or absent.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not (out_dir / CONFIG).is_file() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"{out_dir}: not a run folder; --replace only replaces a run")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}.*.new"):  # left by a replace that was killed
        pid = stale.name.split(".")[-3]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    new = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
    if (out_dir / CONFIG).is_file():
        log(f"training into {new}; {out_dir} is replaced once this run has finished (kept as it is if not)")
    try:
        result = start_run(config, new, progress, log, after_epoch=after_epoch)
    except BaseException:  # bad input, Ctrl-C: nothing of the new run stays, the old one was never touched
        shutil.rmtree(new, ignore_errors=True)
        raise
    if result.metrics["diverged"]:
        shutil.rmtree(new)
        log(f"{out_dir}: left as it was (the new run diverged)")
        return RunResult(out_dir, result.metrics, None)
    old = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.{secrets.token_hex(4)}.old")
    replacing = out_dir.exists()
    if replacing:
        os.rename(out_dir, old)  # two renames: out_dir is missing only between them, for microseconds
    os.rename(new, out_dir)
    if replacing:
        shutil.rmtree(old)
        log(f"replaced the run in {out_dir} with this one")
    return RunResult(out_dir, result.metrics, result.network)


def resume_run(out_dir, progress=False, log=print, after_epoch=None):
    """Continue the run in ``out_dir`` from its last finished epoch; a finished run is left as it is.

    A folder whose run was stopped before its first checkpoint starts again from its config.toml.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    checkpoint_path = out_dir / CHECKPOINT
    if not checkpoint_path.exists():
        if (out_dir / CONFIG).is_file() and not (out_dir / METRICS).exists():
            from .config import load_toml
            config = load_toml(out_dir / CONFIG)
            log(f"{out_dir}: no checkpoint yet; starting again from its {CONFIG}")
            remove_stale_temporaries(out_dir)
            data, trainer = _prepare(config, out_dir, log)
            return _train(config, out_dir, trainer, data, progress, log, started, after_epoch)
        raise InputError(f"{out_dir}: no {CHECKPOINT} to resume from")
    state = read_checkpoint(checkpoint_path, tensors=False)
    if state.stop_reason and (out_dir / METRICS).is_file():
        log(f"{out_dir}: run already finished ({state.stop_reason}); nothing to do")
        return finished_result(out_dir)
    config = from_values(state.config, str(checkpoint_path))
    remove_stale_temporaries(out_dir)
    data, trainer = _prepare(config, out_dir, log, resuming=True)
    state = read_checkpoint(checkpoint_path)
    if state.data_sha256 != data.fingerprint:
        raise InputError(f"{checkpoint_path}: was trained on other data than {data.source}")
    restore(state, trainer)
    if trainer.stop_reason:
        log(f"{out_dir}: training finished ({trainer.stop_reason}); saving its results")
    else:
        log(f"resuming {out_dir} after epoch {len(trainer.history)}")
    return _train(config, out_dir, trainer, data, progress, log, started, after_epoch)


def _prepare(config, out_dir, log, resuming=False):
    """The run's data and trainer, once the run is known to fit this machine's memory and disk (the
    estimate comes before any network array is allocated)."""
    data = load_data(config)
    needs = estimate(config, len(data.train_x), len(data.val_x), len(data.test_x), data.train_x.shape[1],
                     resuming=resuming)
    check_fits(needs, out_dir)
    log(f"this run {describe(needs)}")
    warning = class_spread_warning(data.train_y)
    if warning:
        log(f"warning: {warning}")
    return data, build_trainer(config, data.train_x.shape[1])


def finished_result(out_dir):
    """The RunResult of a finished run folder, read back from its files."""
    out_dir = Path(out_dir)
    try:
        metrics = json.loads((out_dir / METRICS).read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{out_dir / METRICS}: cannot read ({e})") from None
    model = out_dir / MODEL
    network = load_model(model)[0] if model.exists() and not metrics.get("diverged") else None
    return RunResult(out_dir, metrics, network)


def claim_folder(out_dir, config_text, unique=False):
    """Make ``out_dir`` this run's own, atomically, and write its config.toml there.

    The claim is config.toml itself, hard-linked into place from a temp file: creating a link fails if
    the name exists, so of two runs started at once exactly one gets the folder. A folder that holds
    any file of a run is refused. With ``unique``, a taken name moves on to ``out_dir-2``, ``-3``, ...
    """
    base = out_dir
    for n in range(1, 10_000):
        candidate = base if n == 1 else base.with_name(f"{base.name}-{n}")
        made = False
        if unique:
            try:
                candidate.mkdir(parents=True)
                made = True
            except FileExistsError:
                continue
        else:
            try:
                candidate.mkdir(parents=True, exist_ok=True)
            except OSError as e:  # a file of that name, a folder that cannot be written
                raise InputError(f"{e.filename or candidate}: cannot create the run folder: {e.strerror}") from None
        if _link_config(candidate, config_text):
            if not any((candidate / name).exists() for name in RUN_FILES if name != CONFIG):
                remove_stale_temporaries(candidate)
                return candidate
            (candidate / CONFIG).unlink()
        if made:
            candidate.rmdir()
        if not unique:
            raise InputError(f"{candidate}: already holds a run (use --resume {candidate}, or another --out)")
    raise InputError(f"{base}: no free run folder name")


def _link_config(folder, text):
    tmp = folder / f".{CONFIG}.{os.getpid()}.{secrets.token_hex(4)}.tmp"  # named as files.atomic_write names them
    tmp.write_text(text)
    try:
        os.link(tmp, folder / CONFIG)
        return True
    except FileExistsError:
        return False
    except OSError as e:  # a file system without hard links: fall back to exclusive creation
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        try:
            with open(folder / CONFIG, "x") as f:
                f.write(text)
            return True
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)


def history_csv(history):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()


def _duration(seconds):
    seconds = round(seconds)
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}m{seconds % 60:02d}s"


def epoch_line(record, epochs, history):
    """The per-epoch log line: ``epoch k/N``, the scores, the epoch's time and an estimate of the rest
    (at most: a stopping rule may end the run sooner)."""
    left = (epochs - record["epoch"]) * sum(r["seconds"] for r in history) / len(history)
    return (f"epoch {record['epoch']:>{len(str(epochs))}}/{epochs}  loss {record['train_loss']:.4f}  "
            f"acc {record['train_accuracy']:.4f}  val_loss {record['val_loss']:.4f}  "
            f"val_acc {record['val_accuracy']:.4f}  {record['seconds']:.1f}s"
            + (f"  ~{_duration(left)} left" if record["epoch"] < epochs else ""))


def _train(config, out_dir, trainer, data, progress, log, started, after_epoch=None):
    checkpoint = out_dir / CHECKPOINT
    log(f"training {trainer.network.sizes} on {data.source}: {len(data.train_x)} train, "
        f"{len(data.val_x)} validation images")

    def on_epoch(t):
        write_text(out_dir / HISTORY, history_csv(t.history))
        save_checkpoint(checkpoint, t, config, data.fingerprint)
        if t.history and not (t.stop_reason or "").startswith("diverged"):  # else no new epoch to log
            log(epoch_line(t.history[-1], config.epochs, t.history))
        if after_epoch:  # e.g. `train --plot` redrawing the curves from history.csv
            after_epoch(out_dir)

    if trainer.stop_reason is None:
        trainer.augment = online_augmentation(config, data.train_x)
        if trainer.augment:
            log(f"augmenting (online): {', '.join(trainer.augment.augmentation.transforms)}")
        try:
            trainer.fit(data.train_x, data.train_y, data.val_x, data.val_y, config.threads, progress, on_epoch)
        finally:
            if trainer.augment:
                trainer.augment.close()
    return finish(config, out_dir, trainer, data, time.perf_counter() - started)


def finish(config, out_dir, trainer, data, wall_seconds):
    """Evaluate the trained network on the test set; write model.safetensors (unless it diverged)
    and metrics.json."""
    seconds = sum(r["seconds"] for r in trainer.history)
    metrics = {"stop_reason": trainer.stop_reason, "epochs": len(trainer.history),
               "seconds": round(seconds, 3), "wall_seconds": round(wall_seconds, 3),
               "diverged": trainer.stop_reason.startswith("diverged"), "data": data.source,
               "data_sha256": data.fingerprint, "test_accuracy": None, "test_loss": None}
    final = trainer.final_record()  # the history row of the weights that are saved
    if final:
        metrics.update({k: final[k] for k in SCORE_FIELDS})
    if trainer.best:
        metrics["best_epoch"] = trainer.best.epoch
    if not metrics["diverged"]:
        metrics["test_loss"], metrics["test_accuracy"] = trainer.network.evaluate(data.test_x, data.test_y)
        save_model(out_dir / MODEL, trainer.network, init=config.init,
                   config=config.to_dict(), seed=config.seed, metrics=metrics)
    write_json(out_dir / METRICS, metrics)
    return RunResult(out_dir, metrics, None if metrics["diverged"] else trainer.network)
