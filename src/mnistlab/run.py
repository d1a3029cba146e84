"""A training run on disk: data in, a run folder out, resumable from its last finished epoch.

``start_run(config, out_dir)`` loads the data, builds the network, trains, evaluates on the test set
and leaves in ``out_dir``: config.toml, history.csv, model.safetensors, metrics.json and, after every
epoch, checkpoint.safetensors. ``resume_run(out_dir)`` continues from that checkpoint.
"""

import csv
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from . import data as datasets
from .config import RunConfig, updated, validate
from .errors import InputError
from .nn import OPTIMIZERS, Network, Sgd, make_schedule
from .stopping import make_stopping
from .train import HISTORY_FIELDS, Trainer
from .files import atomic_write, write_json, write_text
from .weights import load_model, network_tensors, read_safetensors, save_model


@dataclass
class RunResult:
    out_dir: Path
    metrics: dict
    network: Network | None


def generators(seed):
    """Independent streams for the validation split, the initial weights and training (shuffle, dropout)."""
    return (np.random.default_rng([seed, k]) for k in range(3))


def load_data(config):
    """(train_x, train_y, val_x, val_y, test_x, test_y, fingerprint, source) for a config."""
    ds = datasets.load_dataset(config.data, config.test_data)
    split_rng, _, _ = generators(config.seed)
    tx, ty, vx, vy = datasets.split_validation(ds.train_images, ds.train_labels, config.val_fraction, split_rng)
    f = datasets.to_float
    return (f(tx), ty, f(vx), vy, f(ds.test_images), ds.test_labels,
            datasets.fingerprint(ds.train_images, ds.train_labels), ds.source)


def make_optimizer(config):
    if config.optimizer == "sgd":
        return Sgd(config.momentum, config.nesterov, config.weight_decay)
    return OPTIMIZERS[config.optimizer](weight_decay=config.weight_decay)


def build_trainer(config, features, classes=10):
    _, init_rng, train_rng = generators(config.seed)
    if config.init_from:
        network, _ = load_model(config.init_from)
        if network.sizes[0] != features or network.sizes[-1] != classes:
            raise InputError(f"{config.init_from}: network is {network.sizes}, "
                             f"data needs {features} inputs and {classes} classes")
        network.dropout = config.dropout
    else:
        sizes = [features, *config.hidden, classes]
        network = Network.initialized(sizes, config.init, init_rng, config.activation, config.dropout)
    schedule = make_schedule(config.schedule, config.lr, config.epochs, config.step_size, config.gamma)
    stopping = make_stopping(config.stop, config.epochs, config.stop_k, config.plateau_window,
                             config.plateau_tolerance)
    return Trainer(network, make_optimizer(config), schedule, stopping, train_rng, config.batch_size)


def config_toml(config):
    """The config as TOML that ``--config`` reads back (None values are left out)."""
    lines = []
    for name, value in config.to_dict().items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, (tuple, list)):
            text = "[" + ", ".join(str(v) for v in value) + "]"
        elif isinstance(value, str):
            text = json.dumps(value)
        else:
            text = repr(value)
        lines.append(f"{name} = {text}\n")
    return "".join(lines)


def history_csv(history):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()


def save_checkpoint(path, trainer, config, fingerprint):
    tensors = dict(network_tensors(trainer.network))
    tensors.update({f"optimizer.{k}": v for k, v in trainer.optimizer.state().items()})
    if trainer.best:
        best = Network(trainer.best[2], trainer.best[3])
        tensors.update({f"best.{k}": v for k, v in network_tensors(best).items()})
    meta = {"config": config.to_dict(), "history": trainer.history, "rng": trainer.rng.bit_generator.state,
            "stop_reason": trainer.stop_reason, "data_sha256": fingerprint,
            "best": trainer.best[:2] if trainer.best else None, "sizes": trainer.network.sizes}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"mnistlab": json.dumps(meta)}))


def restore_checkpoint(path, trainer):
    tensors, raw = read_safetensors(path)
    try:
        meta = json.loads(raw["mnistlab"])
        trainer.network.set_parameters(
            [tensors[f"dense.{i}.weight"] for i in range(len(trainer.network.weights))],
            [tensors[f"dense.{i}.bias"] for i in range(len(trainer.network.weights))])
        trainer.optimizer.load_state({k[len("optimizer."):]: v for k, v in tensors.items()
                                      if k.startswith("optimizer.")})
        if meta["best"]:
            n = len(trainer.network.weights)
            trainer.best = (*meta["best"], [tensors[f"best.dense.{i}.weight"] for i in range(n)],
                            [tensors[f"best.dense.{i}.bias"] for i in range(n)])
        trainer.history = meta["history"]
        trainer.rng.bit_generator.state = meta["rng"]
    except (KeyError, ValueError, TypeError) as e:
        raise InputError(f"{path}: checkpoint is damaged or from another run ({e})") from None
    return meta


def start_run(config, out_dir, progress=False, log=print):
    """Train a fresh run into ``out_dir`` (which must not hold a run already)."""
    out_dir = Path(out_dir)
    if (out_dir / "checkpoint.safetensors").exists() or (out_dir / "metrics.json").exists():
        raise InputError(f"{out_dir}: already holds a run (use --resume {out_dir}, or another --out)")
    validate(config)
    return _train(config, out_dir, None, progress, log)


def resume_run(out_dir, progress=False, log=print):
    """Continue the run in ``out_dir`` from its last finished epoch."""
    out_dir = Path(out_dir)
    checkpoint = out_dir / "checkpoint.safetensors"
    if not checkpoint.exists():
        raise InputError(f"{out_dir}: no checkpoint.safetensors to resume from")
    _, raw = read_safetensors(checkpoint)
    try:
        config = updated(RunConfig(), json.loads(raw["mnistlab"])["config"], str(checkpoint))
    except (KeyError, ValueError) as e:
        raise InputError(f"{checkpoint}: checkpoint is damaged ({e})") from None
    return _train(validate(config, str(checkpoint)), out_dir, checkpoint, progress, log)


def _train(config, out_dir, checkpoint, progress, log):
    started = time.perf_counter()
    tx, ty, vx, vy, test_x, test_y, fingerprint, source = load_data(config)
    trainer = build_trainer(config, tx.shape[1])
    if checkpoint:
        meta = restore_checkpoint(checkpoint, trainer)
        if meta.get("data_sha256") != fingerprint:
            raise InputError(f"{checkpoint}: was trained on other data than {source}")
        if meta.get("stop_reason"):
            log(f"{out_dir}: run already finished ({meta['stop_reason']})")
        log(f"resuming {out_dir} after epoch {len(trainer.history)}")
        trainer.stop_reason = meta.get("stop_reason")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "config.toml", config_toml(config))
    log(f"training {trainer.network.sizes} on {source}: {len(tx)} train, {len(vx)} validation images")

    def on_epoch(t):
        write_text(out_dir / "history.csv", history_csv(t.history))
        save_checkpoint(out_dir / "checkpoint.safetensors", t, config, fingerprint)
        if t.history and not (t.stop_reason or "").startswith("diverged"):  # else no new epoch to log
            r = t.history[-1]
            log(f"epoch {r['epoch']:3d}  loss {r['train_loss']:.4f}  acc {r['train_accuracy']:.4f}  "
                f"val_loss {r['val_loss']:.4f}  val_acc {r['val_accuracy']:.4f}  {r['seconds']:.1f}s")

    if trainer.stop_reason is None:
        trainer.fit(tx, ty, vx, vy, config.threads, progress, on_epoch)
    seconds = sum(r["seconds"] for r in trainer.history)
    metrics = {"stop_reason": trainer.stop_reason, "epochs": len(trainer.history),
               "seconds": round(seconds, 3), "wall_seconds": round(time.perf_counter() - started, 3),
               "diverged": trainer.stop_reason.startswith("diverged"), "data": source,
               "data_sha256": fingerprint, "test_accuracy": None, "test_loss": None}
    if trainer.history:
        final = trainer.history[trainer.best[1] - 1] if trainer.best else trainer.history[-1]  # the saved weights'
        metrics.update({k: final[k] for k in HISTORY_FIELDS[1:5]})
    if trainer.best:
        metrics["best_epoch"] = trainer.best[1]
    if not metrics["diverged"]:
        metrics["test_loss"], metrics["test_accuracy"] = trainer.network.evaluate(test_x, test_y)
        save_model(out_dir / "model.safetensors", trainer.network, init=config.init,
                   config=config.to_dict(), seed=config.seed, metrics=metrics)
    write_json(out_dir / "metrics.json", metrics)
    return RunResult(out_dir, metrics, None if metrics["diverged"] else trainer.network)
