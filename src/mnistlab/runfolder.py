"""The run folder's layout, owned here: its file names and the columns of history.csv and a study's runs.csv.

``run.py`` writes run folders, ``experiments/`` sweeps them into runs.csv and tables, ``report/`` and
``web/`` read them: each takes the names from here. Pure constants and two small CSV helpers, no
NumPy, so any layer may import it. (The files' contents: ``config.toml`` is ``config.to_toml``,
``model.safetensors`` and ``checkpoint.safetensors`` belong to ``weights.py`` and ``checkpoint.py``.)
"""

import csv
import io

CONFIG, HISTORY, CHECKPOINT, MODEL, METRICS = \
    "config.toml", "history.csv", "checkpoint.safetensors", "model.safetensors", "metrics.json"
FAILED, TRAIN_LOG = "failed.json", "train.log"  # a sweep's record of a run that raised; its log
RUN_FILES = (CONFIG, HISTORY, CHECKPOINT, MODEL, METRICS)  # a folder holding any of them holds a run

SCORE_FIELDS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")  # how well an epoch did
HISTORY_FIELDS = ("epoch", *SCORE_FIELDS, "learning_rate", "seconds")  # one history.csv row

# A study's folder: runs/<config key>/seed<k>/ run folders, and the tables derived from them.
RUNS, RUNS_CSV, TABLE_CSV, TABLE_MD, STUDY_JSON = "runs", "runs.csv", "table.csv", "table.md", "study.json"
RUN_FIELDS = ("config", "seed", "status", "test_accuracy", "val_accuracy", "epochs", "stop_reason",
              "seconds", "error", "run_dir")  # runs.csv (after "config": a column per varied setting)
TABLE_FIELDS = ("config", "label", "repeats", "finished", "diverged", "failed", "accuracies", "mean", "std",
                "epochs_mean", "stop_reasons", "seconds_mean", "report", "difference")  # table.csv, likewise


def history_csv(history):
    """history.csv's text for a list of per-epoch records (dicts with HISTORY_FIELDS)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()


def read_history(path):
    """history.csv as a list of per-epoch dicts of numbers (epoch as int, an empty cell as NaN)."""
    with open(path, newline="") as f:
        return [{k: int(v) if k == "epoch" else float(v or "nan") for k, v in row.items()}
                for row in csv.DictReader(f)]
