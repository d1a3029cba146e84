"""A study's results, derived from its run folders: runs.csv (one row per run), table.csv and table.md
(one row per configuration: each repeat, mean ± std, epochs, how runs stopped, time, the report's number).

Nothing here is a source of truth: every file is derived from the run folders (``metrics.json``,
``failed.json``). ``Tables`` reads each run folder once and keeps the rows in memory, so a sweep
updates one row when a run ends instead of rereading the whole study; ``mnistlab sweep STUDY --table``
builds them afresh. A run whose records cannot be read is "damaged": named in the table and rerun by
the next sweep.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

from ..files import write_json, write_text
from ..runfolder import FAILED, METRICS, RUN_FIELDS, RUNS, RUNS_CSV, STUDY_JSON, TABLE_CSV, TABLE_FIELDS, TABLE_MD


def varied_column(key):
    """The column of a varied setting in runs.csv and table.csv: its name, or ``config_<name>`` when a
    result has that name (a study varying ``epochs`` keeps ``epochs``, the epochs run, beside
    ``config_epochs``, the setting)."""
    return f"config_{key}" if key in RUN_FIELDS or key in TABLE_FIELDS else key


def _columns(varied):
    return {varied_column(k): v for k, v in varied.items()}


def _read_object(path: Path):
    """(the JSON object in ``path``, None) or (None, what is wrong); (None, None) if there is no file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as e:
        return None, f"{path.name}: cannot be read ({e.__class__.__name__})"
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None, f"{path.name}: not valid JSON"
    if not isinstance(value, dict):
        return None, f"{path.name}: not a JSON object"
    return value, None


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metrics_problem(metrics: dict):
    """What makes a metrics.json object unusable as a run's result, or None when it is sound."""
    epochs = metrics.get("epochs")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        return "metrics.json: 'epochs' is not a whole number"
    if not isinstance(metrics.get("stop_reason"), str):
        return "metrics.json: no 'stop_reason' text"
    if not isinstance(metrics.get("diverged", False), bool):
        return "metrics.json: 'diverged' is not true or false"
    for key in ("test_accuracy", "val_accuracy", "seconds"):
        if metrics.get(key) is not None and not _is_number(metrics[key]):
            return f"metrics.json: {key!r} is not a number"
    if not metrics.get("diverged") and not _is_number(metrics.get("test_accuracy")):
        return "metrics.json: no 'test_accuracy'"
    return None


def read_metrics(run_dir):
    """(metrics, None) for a finished run, (None, what is wrong) for a damaged metrics.json, and
    (None, None) when the run has not written one."""
    metrics, problem = _read_object(Path(run_dir) / METRICS)
    if metrics is not None:
        problem = metrics_problem(metrics)
    return (None, problem) if problem else (metrics, None)


def read_row(run_dir, config=None) -> dict:
    """The runs.csv row of one run folder (``.../runs/<configuration folder>/seed<k>``) of configuration
    ``config`` (default: the folder's name). Status 'pending' if it has not ended, 'damaged' (with the
    reason in ``error``) if its records cannot be read: never an exception for what a file holds."""
    run_dir = Path(run_dir)
    row = dict.fromkeys(RUN_FIELDS, "")
    row.update(config=config or run_dir.parent.name, seed=int(run_dir.name.removeprefix("seed")),
               run_dir=f"{RUNS}/{run_dir.parent.name}/{run_dir.name}", status="pending")
    metrics, problem = read_metrics(run_dir)
    if metrics is not None:
        row.update(status="diverged" if metrics.get("diverged") else "finished",
                   epochs=metrics["epochs"], stop_reason=metrics["stop_reason"],
                   seconds=metrics.get("seconds") if _is_number(metrics.get("seconds")) else "")
        for key in ("test_accuracy", "val_accuracy"):
            value = metrics.get(key)
            row[key] = "" if value is None or not math.isfinite(value) else value
        return row
    if problem is None:
        failed, problem = _read_object(run_dir / FAILED)
        if failed is not None:
            row.update(status="failed", error=str(failed.get("error", "")).replace("\n", " "))
            return row
    if problem is not None:
        row.update(status="damaged", error=problem)
    return row


def _stop_kind(reason: str) -> str:
    """'early: training loss below ...' -> 'early'; 'max epochs (100)' -> 'max epochs'."""
    return re.split(r"[:(]", reason, maxsplit=1)[0].strip() if reason else ""


def _mean_std(values):
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))  # sample std


def _configuration_row(study, key, varied, runs, repeats):
    done = [r for r in runs if r["status"] in ("finished", "diverged")]
    finished = [r for r in done if r["status"] == "finished" and r["test_accuracy"] != ""]
    accuracies = [float(r["test_accuracy"]) for r in finished]
    mean, std = _mean_std(accuracies)
    report = study.report.get(key, "")
    difference = ""
    if mean is not None and isinstance(report, (int, float)) and not isinstance(report, bool):
        difference = round(100 * (mean - report), 2)
    return {
        "config": key, **_columns(varied),
        "label": study.labels.get(key) or ", ".join(f"{k} {v}" for k, v in varied.items()) or "base",
        "repeats": repeats, "finished": len(finished),
        "diverged": sum(r["status"] == "diverged" for r in done),
        "failed": sum(r["status"] == "failed" for r in runs),
        "accuracies": " ".join(f"{a:.4f}" for a in accuracies),
        # Exact: table.md and the report round once, from these (rounding a 5-digit copy again gave 0.0014 for
        # 0.001346).
        "mean": "" if mean is None else mean, "std": "" if std is None else std,
        "epochs_mean": round(sum(int(r["epochs"]) for r in done) / len(done), 1) if done else "",
        "stop_reasons": ", ".join(f"{kind} x{n}" for kind, n in
                                  Counter(_stop_kind(r["stop_reason"]) for r in done).items()),
        "seconds_mean": round(sum(float(r["seconds"]) for r in done) / len(done), 1) if done else "",
        "report": report, "difference": difference,
    }


def _cell(run):
    """One repeat as the markdown table shows it."""
    if run["status"] == "finished":
        return f"{float(run['test_accuracy']):.4f}"
    if run["status"] == "diverged":
        epoch = re.search(r"epoch (\d+)", run["stop_reason"])
        measured = f", val {float(run['val_accuracy']):.3f} before" if run["val_accuracy"] != "" else ""
        return f"diverged (epoch {epoch.group(1) if epoch else '?'}{measured})"
    return run["status"]  # failed / pending


def _markdown(study, table, runs_by_config):
    repeats = max((int(t["repeats"]) for t in table), default=0)
    quick = study.quick_data is not None  # a smoke test: no comparison with the report
    head = (["configuration"] + [f"seed {i}" for i in range(repeats)]
            + ["mean ± std", "epochs", "stopped by", "s / run"]
            + ([] if quick else ["report", "ours − report (points)"]))
    lines = [f"# {study.title}", ""]
    if study.description:
        lines += [study.description.strip(), ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in table:
        runs = sorted(runs_by_config[t["config"]], key=lambda r: r["seed"])
        cells = [_cell(r) for r in runs] + [""] * (repeats - len(runs))
        if t["mean"] == "":
            summary = "-"
        else:
            summary = f"{t['mean']:.4f}" + ("" if t["std"] == "" else f" ± {t['std']:.4f}")
            if t["finished"] < t["repeats"]:
                summary += f" (n={t['finished']})"
        report = t["report"]
        report_text = f"{report:.4f}" if isinstance(report, (int, float)) else str(report or "")
        difference = "" if t["difference"] == "" else f"{t['difference']:+.2f}"
        lines.append("| " + " | ".join([t["label"], *cells, summary, str(t["epochs_mean"]), t["stop_reasons"],
                                        str(t["seconds_mean"])] + ([] if quick else [report_text, difference]))
                     + " |")
    total = sum(float(r["seconds"]) for rs in runs_by_config.values() for r in rs if r["seconds"] != "")
    lines += ["", f"{sum(t['finished'] + t['diverged'] for t in table)} runs ended, "
                  f"{total / 3600:.2f} h of training in all (sum over runs; runs went side by side)."]
    damaged = [r for rs in runs_by_config.values() for r in rs if r["status"] == "damaged"]
    if damaged:
        lines += ["", f"{len(damaged)} run(s) with damaged records, counted as not ended (the next sweep "
                      "redoes them): " + "; ".join(f"{r['run_dir']} ({r['error']})" for r in damaged) + "."]
    return "\n".join(lines) + "\n"


def _csv(rows, fields):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


class Tables:
    """A study folder's rows, read from its run folders once and kept: ``update(spec)`` rereads the one
    run that ended, ``write()`` rewrites runs.csv, table.csv, table.md and study.json from memory."""

    def __init__(self, study, out_dir, specs):
        self.study, self.out_dir, self.specs = study, Path(out_dir), list(specs)
        self.configurations = {c.key: c.varied for c in study.configurations()}
        self.rows = {s.run_dir: read_row(self.out_dir / s.run_dir, s.configuration) for s in self.specs}

    def update(self, spec) -> dict:
        """Reread the run folder of ``spec`` (a run just ended); return its row."""
        row = self.rows[spec.run_dir] = read_row(self.out_dir / spec.run_dir, spec.configuration)
        return row

    def damaged(self) -> list[dict]:
        return [r for r in self.rows.values() if r["status"] == "damaged"]

    def write(self) -> list[dict]:
        """Write the four files; return the rows of the runs that ended (or whose records are damaged)."""
        study, out_dir = self.study, self.out_dir
        rows = list(self.rows.values())
        ended = [r for r in rows if r["status"] != "pending"]
        for r in ended:
            r.update(_columns(self.configurations.get(r["config"], {})))
        runs_by_config = defaultdict(list)
        for r in rows:
            runs_by_config[r["config"]].append(r)
        runs_by_config = {key: runs_by_config[key] for key in self.configurations}
        repeats = Counter(s.configuration for s in self.specs)
        table = [_configuration_row(study, key, varied, runs_by_config[key], repeats[key])
                 for key, varied in self.configurations.items()]
        varied = list(study.varied)
        columns = [varied_column(k) for k in varied]
        write_text(out_dir / RUNS_CSV, _csv(ended, ["config", *columns, *RUN_FIELDS[1:]]))
        write_text(out_dir / TABLE_CSV, _csv(table, ["config", *columns, *TABLE_FIELDS[1:]]))
        write_text(out_dir / TABLE_MD, _markdown(study, table, runs_by_config))
        write_json(out_dir / STUDY_JSON, {"name": study.name, "title": study.title, "varied": varied,
                                            "repeats": study.repeats if not self.specs else max(repeats.values()),
                                            "base": study.base, "report": study.report,
                                            **({"quick": True} if study.quick_data else {})})
        return ended


def write_tables(study, out_dir, specs) -> list[dict]:
    """Rebuild runs.csv, table.csv, table.md and study.json in ``out_dir`` from the run folders of
    ``specs``; return the rows of the runs that ended."""
    return Tables(study, out_dir, specs).write()
