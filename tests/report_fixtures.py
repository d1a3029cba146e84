"""Builders for the report tests: a study folder as the sweep runner writes it, from real tiny runs.

``make_study(folder, train)`` trains two configurations x two seeds with ``train(argv)`` (the
``mnistlab`` command in-process), adds one diverged and one failed repeat of a third configuration by
hand, and writes runs.csv, table.csv and study.json in the sweep runner's layout.
"""

import csv
import json
import shutil
from pathlib import Path

import numpy as np

RUNS_HEADER = ["config", "hidden", "lr", "seed", "status", "test_accuracy", "val_accuracy", "epochs",
               "stop_reason", "seconds", "error", "run_dir"]
TABLE_HEADER = ["config", "hidden", "lr", "label", "repeats", "finished", "diverged", "failed", "accuracies",
                "mean", "std", "epochs_mean", "stop_reasons", "seconds_mean", "report", "difference"]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def make_diverged(run_dir, epochs_kept=1):
    """Turn a finished run folder into one that diverged in epoch ``epochs_kept + 1``."""
    run_dir = Path(run_dir)
    lines = (run_dir / "history.csv").read_text().splitlines()
    (run_dir / "history.csv").write_text("\n".join(lines[:1 + epochs_kept]) + "\n")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics.update(stop_reason=f"diverged at epoch {epochs_kept + 1}", diverged=True, epochs=epochs_kept,
                   test_accuracy=None, test_loss=None)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    (run_dir / "model.safetensors").unlink(missing_ok=True)


def make_study(folder, train, data_flags, epochs=3):
    """A study folder with configurations 16/lr 0.05 and 32/lr 0.05 (2 finished seeds each) and
    16/lr 50 (one diverged, one failed). Returns the folder."""
    folder = Path(folder)
    configs = [("hidden=16+lr=0.05", "16", "0.05", "0.9748"), ("hidden=32+lr=0.05", "32", "0.05", "overflow"),
               ("hidden=16+lr=50", "16", "50", "")]
    runs, table = [], []
    for config, hidden, lr, report in configs:
        accuracies, statuses = [], []
        for seed in (0, 1):
            run_dir = f"runs/{config}/seed{seed}"
            out = folder / run_dir
            status, error, accuracy = "finished", "", ""
            if lr == "50" and seed == 1:
                status, error, run_dir = "failed", "MemoryError: out of memory", ""
            else:
                code = train(["train", *data_flags, "--hidden", hidden, "--lr", "0.05", "--epochs", str(epochs),
                              "--seed", str(seed), "--out", str(out), "--no-progress"])
                assert code == 0
                if lr == "50":
                    make_diverged(out)
                    status = "diverged"
                else:
                    accuracy = json.loads((out / "metrics.json").read_text())["test_accuracy"]
                    accuracies.append(accuracy)
            statuses.append(status)
            metrics = json.loads((out / "metrics.json").read_text()) if run_dir else {}
            runs.append([config, hidden, lr, seed, status, accuracy, metrics.get("val_accuracy", ""),
                         metrics.get("epochs", ""), metrics.get("stop_reason", ""), metrics.get("seconds", ""),
                         error, run_dir])
        mean = f"{np.mean(accuracies):.4f}" if accuracies else ""
        std = f"{np.std(accuracies):.4f}" if accuracies else ""
        difference = f"{100 * (float(mean) - float(report)):.2f}" if accuracies and report[:1].isdigit() else ""
        table.append([config, hidden, lr, f"{hidden} hidden units, learning rate {lr}", 2,
                      statuses.count("finished"), statuses.count("diverged"), statuses.count("failed"),
                      " ".join(f"{a:.4f}" for a in accuracies), mean, std, epochs, "max epochs", "0.1", report,
                      difference])
    write_csv(folder / "runs.csv", RUNS_HEADER, runs)
    write_csv(folder / "table.csv", TABLE_HEADER, table)
    (folder / "study.json").write_text(json.dumps({"name": folder.name, "title": "Hidden units and learning rate",
                                                   "varied": ["hidden", "lr"], "base": {"epochs": epochs}}))
    return folder


def copy_study(source, folder):
    shutil.copytree(source, folder)
    return Path(folder)
