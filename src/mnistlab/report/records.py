"""Reading what training and sweeps wrote: run folders, a study's runs.csv, table.csv and study.json.

Every reader checks what it reads and raises ``InputError("file:line: what")`` on a missing, empty or
malformed file, so ``mnistlab plot`` and ``mnistlab report`` end in one line, never a traceback.
Nothing here imports matplotlib: the figures' modules take these records as plain data.
"""

import csv
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..runfolder import CONFIG, HISTORY, HISTORY_FIELDS, METRICS, RUNS_CSV, STUDY_JSON, TABLE_CSV

HISTORY_COLUMNS = HISTORY_FIELDS
RUNS_COLUMNS = ("config", "seed", "status", "test_accuracy", "run_dir")  # of runfolder.RUN_FIELDS, what a report needs
TABLE_COLUMNS = ("config", "label", "repeats", "finished", "diverged", "failed", "accuracies", "mean", "std",
                 "report")  # likewise of runfolder.TABLE_FIELDS


@dataclass
class Run:
    """One run folder: its config (dict, {} if config.toml is absent), history columns and metrics."""

    path: Path
    config: dict
    history: dict  # column name -> list of floats (nan where empty), one entry per epoch
    metrics: dict

    @property
    def epochs(self):
        return [int(e) for e in self.history["epoch"]]

    @property
    def stop_epoch(self):
        """The epoch training stopped in: the last recorded one, or the one after it for a diverged run
        (a diverged epoch is not recorded)."""
        return len(self.history["epoch"]) + (1 if self.diverged else 0)

    @property
    def stop_reason(self):
        if not self.metrics:
            return f"training (epoch {len(self.history['epoch'])})"
        return self.metrics.get("stop_reason") or "unfinished"

    @property
    def diverged(self):
        return bool(self.metrics.get("diverged")) or self.stop_reason.startswith("diverged")


@dataclass
class Study:
    """A sweep's folder: study.json, the per-run rows of runs.csv and the per-configuration rows of table.csv."""

    path: Path
    name: str
    title: str
    varied: list
    base: dict
    runs: list  # dicts, one per row of runs.csv, text values
    table: list  # dicts, one per row of table.csv, text values
    histories: dict = field(default_factory=dict)  # run_dir text -> Run, filled by load_histories

    def runs_of(self, config):
        return [r for r in self.runs if r["config"] == config]


def number(text, where, allow_empty=True):
    """A float from a CSV cell; '' (and 'nan') -> nan when allowed, anything else not a number -> InputError."""
    text = (text or "").strip()
    if text == "" and allow_empty:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number") from None


def read_csv_rows(path, required):
    """The rows of a CSV file with a header as dicts; InputError if missing, empty or lacking a column."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: not a readable CSV file ({e})") from None
    if not header:
        raise InputError(f"{path}: empty file (expected a header with {', '.join(required)})")
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
    for line, row in enumerate(rows, start=2):
        if None in row or any(v is None for v in row.values()):
            raise InputError(f"{path}:{line}: expected {len(header)} columns, got a different number")
    return rows


def read_history_columns(path, allow_no_epochs=False):
    """history.csv as column -> list of floats; InputError if missing, empty or malformed.

    A header with no rows is allowed only when ``allow_no_epochs`` (a run that diverged in epoch 1).
    """
    path = Path(path)
    rows = read_csv_rows(path, HISTORY_COLUMNS)
    if not rows and not allow_no_epochs:
        raise InputError(f"{path}: no epochs recorded")
    columns = {c: [] for c in HISTORY_COLUMNS}
    for line, row in enumerate(rows, start=2):
        for c in HISTORY_COLUMNS:
            columns[c].append(number(row[c], f"{path}:{line}: {c}", allow_empty=c.startswith("val_")))
    epochs = columns["epoch"]
    if epochs != [float(i) for i in range(1, len(epochs) + 1)]:
        raise InputError(f"{path}: epochs are not numbered 1, 2, 3, ...")
    return columns


def read_json_object(path):
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object")
    return obj


def read_metrics(path):
    """metrics.json as a dict; InputError if missing, malformed or lacking stop_reason/epochs."""
    metrics = read_json_object(path)
    for key in ("stop_reason", "epochs"):
        if key not in metrics:
            raise InputError(f"{path}: no {key!r} key")
    return metrics


def read_run(run_dir, need_metrics=True):
    """A run folder. Without metrics.json (a run still training) and ``need_metrics=False``, metrics are {}."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run folder")
    config = {}
    if (run_dir / CONFIG).is_file():
        try:
            config = tomllib.loads((run_dir / CONFIG).read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"{run_dir / 'config.toml'}: not valid TOML ({e})") from None
    metrics_path = run_dir / METRICS
    metrics = read_metrics(metrics_path) if need_metrics or metrics_path.exists() else {}
    history = read_history_columns(run_dir / HISTORY, allow_no_epochs=bool(metrics.get("diverged")))
    return Run(run_dir, config, history, metrics)


def config_differences(runs):
    """For each run, a short text naming the config keys in which the runs differ ('' when only one run)."""
    keys = sorted({k for r in runs for k in r.config})
    differing = [k for k in keys if len({_text(r.config.get(k)) for r in runs}) > 1]
    labels = [" ".join(f"{k}={_text(r.config.get(k))}" for k in differing) for r in runs]
    if len(runs) > 1 and len(set(labels)) < len(runs):  # same config (or none): tell them apart by folder
        labels = [f"{r.path.name} {label}".strip() if r.path.name else str(r.path) for r, label in zip(runs, labels)]
        if len(set(labels)) < len(runs):
            labels = [str(r.path) for r in runs]
    return labels


def _text(value):
    if isinstance(value, list):
        return "-".join(map(str, value))
    return "-" if value is None else str(value)


def is_study(folder):
    folder = Path(folder)
    return (folder / RUNS_CSV).is_file() or (folder / TABLE_CSV).is_file() or (folder / STUDY_JSON).is_file()


def has_no_runs(folder):
    """True for a study folder whose runs.csv is sound but lists no run yet (a sweep still on its first
    runs); a damaged runs.csv is for ``read_study`` to report."""
    try:
        return not read_csv_rows(Path(folder) / RUNS_CSV, RUNS_COLUMNS)
    except InputError:
        return False


def read_study(folder):
    """A study folder (study.json optional; runs.csv and table.csv required)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such study folder")
    info = read_json_object(folder / STUDY_JSON) if (folder / STUDY_JSON).exists() else {}
    runs = read_csv_rows(folder / RUNS_CSV, RUNS_COLUMNS)
    table = read_csv_rows(folder / TABLE_CSV, TABLE_COLUMNS)
    if not runs:
        raise InputError(f"{folder / 'runs.csv'}: no runs listed")
    if not table:
        raise InputError(f"{folder / TABLE_CSV}: no configurations listed")
    for line, row in enumerate(runs, start=2):
        where = f"{folder / 'runs.csv'}:{line}"
        if row["status"] not in ("finished", "diverged", "failed"):
            raise InputError(f"{where}: status {row['status']!r}: expected finished, diverged or failed")
        row["test_accuracy"] = number(row["test_accuracy"], f"{where}: test_accuracy")
        if row["status"] == "finished" and not math.isfinite(row["test_accuracy"]):
            raise InputError(f"{where}: a finished run with no test_accuracy")
    configs = {row["config"] for row in table}
    for line, row in enumerate(table, start=2):
        where = f"{folder / 'table.csv'}:{line}"
        for key in ("mean", "std"):
            row[key] = number(row[key], f"{where}: {key}")
        row["report_value"] = report_number(row.get("report", ""))
        row["difference"] = number(row.get("difference", ""), f"{where}: difference")
    unknown = sorted({r["config"] for r in runs} - configs)
    if unknown:
        raise InputError(f"{folder / 'runs.csv'}: config {unknown[0]!r} is not in table.csv")
    varied = info.get("varied") or [c for c in table[0] if c not in TABLE_COLUMNS and c not in (
        "epochs_mean", "stop_reasons", "seconds_mean", "difference", "report_value")]
    return Study(folder, str(info.get("name") or folder.name), str(info.get("title") or info.get("name")
                 or folder.name), list(varied), dict(info.get("base") or {}), runs, table)


def report_number(text):
    """The student report's number as a fraction, or None when the cell is empty or text ('overflow')."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def load_histories(study):
    """Read the run folder of every finished or diverged run listed in runs.csv (failed runs have none)."""
    for row in study.runs:
        if row["status"] == "failed" or not row["run_dir"]:
            continue
        study.histories[row["run_dir"]] = read_run(study.path / row["run_dir"], need_metrics=False)
    return study


def find_studies(results_dir):
    """The study folders directly inside ``results_dir`` (or ``results_dir`` itself if it is one), sorted."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise InputError(f"{results_dir}: no such folder")
    if is_study(results_dir):
        return [results_dir]
    return sorted(p for p in results_dir.iterdir() if p.is_dir() and is_study(p))
