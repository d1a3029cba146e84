"""A study file: a base run config, grids of keys to vary, repeats, and the student report's numbers.

``load_study(path)`` reads and checks a study TOML file; ``Study.runs()`` lists every run it asks for
(each configuration once per seed), each with its own folder under the study's output folder::

    name = "batch_size"                  # results/<name>/ by default
    title = "Mini-batch size"
    repeats = 5                          # seeds 0..repeats-1
    [base]                               # any RunConfig keys
    hidden = [100, 100]
    [[grid]]                             # one or more grids; each is a Cartesian product
    batch_size = [8, 16, 32]
    [report]                             # the report's mean per configuration key, or a text
    "batch_size=8" = 0.973
    [labels]                             # optional: a configuration's name in the tables
    "batch_size=8" = "batch 8"
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..config import FIELDS, RunConfig, read_toml, updated, validate
from ..runfolder import RUNS
from ..errors import InputError

QUICK_EPOCHS = 2
QUICK_REPEATS = 2
# Each repeat is one more training run per configuration and one more column of table.md; past a
# hundred seeds a mean moves by little and the table can no longer be read.
MAX_REPEATS = 100
MAX_CONFIGURATIONS = 10_000  # a grid is listed before anything runs: keep that listing small
MAX_RUNS = 20_000  # every run's row is kept in memory while a sweep runs (and 20,000 runs are weeks here)
# Folder names: the characters of today's names (hidden=100-100+batch_size=8, augment=zoom,rotate), kept
# as they are; a value with other characters (a path's '/') or longer than MAX_VALUE_CHARS is shown
# shortened, with a hash of the whole value, and a name is at most MAX_FOLDER_CHARS (file systems: 255).
SAFE_NAME = re.compile(r"[A-Za-z0-9_.,=+-]+")
PLAIN_NAME = re.compile(r"[^./\\\x00-\x1f][^/\\\x00-\x1f]{0,99}")  # a study's name: results/<name>/
MAX_VALUE_CHARS = 40
MAX_FOLDER_CHARS = 120


def format_value(value) -> str:
    """A config value as it appears in keys, folder names and tables: (100, 100) -> '100-100'."""
    if isinstance(value, (tuple, list)):
        return "-".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _short_hash(text):
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _folder_value(value: str) -> str:
    """A varied value as a folder name shows it: as it is when safe and short, else its readable tail
    (a path's file name), made safe, and ``~`` and a short hash of the whole value."""
    if SAFE_NAME.fullmatch(value) and len(value) <= MAX_VALUE_CHARS:
        return value
    readable = re.sub(r"[^A-Za-z0-9_.,=+-]+", "_", value.rstrip("/").rsplit("/", 1)[-1])[:24].strip("._")
    return f"{readable}~{_short_hash(value)}" if readable else _short_hash(value)


def folder_name(key: str, varied: dict) -> str:
    """The flat folder name of a configuration under ``runs/``: unique for its key, safe on any file
    system, readable, and at most MAX_FOLDER_CHARS characters. A key that is already safe and short
    (every shipped study's) is its own folder name, so committed results keep theirs."""
    if SAFE_NAME.fullmatch(key) and len(key) <= MAX_FOLDER_CHARS and key not in (".", ".."):
        return key
    name = "+".join(f"{k}={_folder_value(v)}" for k, v in varied.items()) if varied else _folder_value(key)
    if len(name) > MAX_FOLDER_CHARS:  # many long values: cut, and a hash of the whole key
        name = f"{name[:MAX_FOLDER_CHARS - 9]}~{_short_hash(key)}"
    return name


@dataclass(frozen=True)
class Configuration:
    """One point of a study's grid: its key (``hidden=100-100+batch_size=8``), its folder name under
    ``runs/`` (the key itself unless that is unsafe or long: see ``folder_name``) and full run config."""

    key: str
    varied: dict  # varied key -> value as text
    config: RunConfig

    @property
    def folder(self) -> str:
        return folder_name(self.key, self.varied)


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: a configuration, a seed and the run folder (relative to the study folder)."""

    configuration: str
    seed: int
    config: RunConfig
    run_dir: str


@dataclass
class Study:
    name: str
    title: str
    description: str
    repeats: int
    base: dict
    grids: list
    report: dict = field(default_factory=dict)  # configuration key -> fraction or text
    labels: dict = field(default_factory=dict)  # configuration key -> its name in the tables
    path: str = ""
    quick_data: tuple[str, str] | None = None  # set by quick(): (train CSV, test CSV) of a small subset

    @property
    def varied(self) -> list[str]:
        """Every key that some grid varies, in the order they first appear."""
        keys = []
        for grid in self.grids:
            keys += [k for k in grid if k not in keys]
        return keys

    def configurations(self) -> list[Configuration]:
        base = updated(RunConfig(), self.base, f"{self.path}: [base]")
        seen, out = set(), []
        for i, grid in enumerate(self.grids):
            names = list(grid)
            for values in itertools.product(*(grid[n] for n in names)):
                config = validate(updated(base, dict(zip(names, values)), f"{self.path}: [[grid]] {i + 1}"),
                                  f"{self.path}: [[grid]] {i + 1}")
                varied = {k: format_value(getattr(config, k)) for k in self.varied}
                key = "+".join(f"{k}={v}" for k, v in varied.items()) or "base"  # a study of one configuration
                if self.quick_data:  # after the key: a quick run keeps its configuration's name
                    config = dataclasses.replace(config, data=self.quick_data[0], test_data=self.quick_data[1],
                                                 epochs=min(config.epochs, QUICK_EPOCHS))
                if key not in seen:
                    seen.add(key)
                    out.append(Configuration(key, varied, config))
        return out

    def runs(self, repeats: int | None = None) -> list[RunSpec]:
        """Every run, configuration by configuration, seeds 0..repeats-1."""
        repeats = self.repeats if repeats is None else repeats
        return [RunSpec(c.key, seed, dataclasses.replace(c.config, seed=seed), f"{RUNS}/{c.folder}/seed{seed}")
                for c in self.configurations() for seed in range(repeats)]

    def quick(self, data: str, test_data: str, train_images: int, test_images: int) -> Study:
        """The same study, small: a data subset, at most QUICK_EPOCHS epochs, QUICK_REPEATS repeats. Its
        tables say it is a smoke test and leave the report's numbers out: they are not comparable."""
        repeats = min(self.repeats, QUICK_REPEATS)
        return dataclasses.replace(
            self, repeats=repeats, quick_data=(data, test_data), report={},
            title=f"{self.name}: quick smoke test, not results",
            description=f"`mnistlab sweep {self.name} --quick`: every configuration of \"{self.title}\" on the "
                        f"first {train_images:,} training and {test_images:,} test images, at most "
                        f"{QUICK_EPOCHS} epochs, seeds 0-{repeats - 1}. It checks that the study runs; its "
                        "accuracies say nothing about the study's question, so the report's numbers are left out.")


def shipped_studies() -> dict[str, Path]:
    """The studies that come with mnistlab (experiments/*.toml), by name: in the installed package,
    else in the repository."""
    import importlib.resources

    folders = [Path(__file__).resolve().parents[3] / "experiments"]
    try:
        folders.insert(0, Path(str(importlib.resources.files("mnistlab") / "_data" / "experiments")))
    except (ModuleNotFoundError, TypeError, ValueError, OSError):
        pass
    for folder in folders:
        if folder.is_dir() and any(folder.glob("*.toml")):
            return {p.stem: p for p in sorted(folder.glob("*.toml"))}
    return {}


def load_study(path) -> Study:
    """A Study from a TOML file, or a shipped study by name (``batch_size``); InputError naming the
    file and the key at fault."""
    path = Path(path)
    if not path.exists() and path.suffix == "" and len(path.parts) == 1:
        shipped = shipped_studies()
        if str(path) not in shipped:
            raise InputError(f"{path}: no such study file, nor a shipped study "
                             f"(shipped: {', '.join(shipped) or 'none found'})")
        path = shipped[str(path)]
    values = read_toml(path)
    known = {"name", "title", "description", "repeats", "base", "grid", "report", "labels"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    name = values.get("name", path.stem)
    if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name):
        raise InputError(f"{path}: name = {str(name)[:100]!r}: must be a plain folder name (no '/' or '\\', "
                         "not starting with '.', at most 100 characters)")
    repeats = values.get("repeats", 5)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
        raise InputError(f"{path}: repeats = {repeats!r}: must be an integer from 1 to {MAX_REPEATS} (each "
                         "repeat is one more training run per configuration and one more column of table.md)")
    base = values.get("base", {})
    grids = values.get("grid", [{}])
    if isinstance(grids, dict):
        grids = [grids]
    if not isinstance(base, dict) or not isinstance(grids, list) or not all(isinstance(g, dict) for g in grids):
        raise InputError(f"{path}: [base] must be a table and [[grid]] tables of lists")
    if "seed" in base:
        raise InputError(f"{path}: [base]: seeds come from repeats (0..repeats-1), do not set 'seed'")
    for i, grid in enumerate(grids):
        for key, options in grid.items():
            if key not in FIELDS:
                raise InputError(f"{path}: [[grid]] {i + 1}: unknown key {key!r}")
            if key == "seed":
                raise InputError(f"{path}: [[grid]] {i + 1}: seeds come from repeats (0..repeats-1), "
                                 "do not vary 'seed'")
            if not isinstance(options, list) or not options:
                raise InputError(f"{path}: [[grid]] {i + 1}: {key} must be a non-empty list of values")
    count = sum(math.prod(len(options) for options in grid.values()) for grid in grids)
    if count > MAX_CONFIGURATIONS or count * repeats > MAX_RUNS:
        raise InputError(f"{path}: the grids make {count} configurations, {count * repeats} runs with the "
                         f"repeats; at most {MAX_CONFIGURATIONS} configurations and {MAX_RUNS} runs")
    report = values.get("report", {})
    if not isinstance(report, dict) or not all(isinstance(v, (int, float, str)) for v in report.values()):
        raise InputError(f"{path}: [report] must map configuration keys to numbers or text")
    labels = values.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) and v.strip() for v in labels.values()):
        raise InputError(f"{path}: [labels] must map configuration keys to non-empty text")
    study = Study(name, str(values.get("title", name)), str(values.get("description", "")), repeats,
                  base, grids, report, labels, str(path))
    keys = {c.key for c in study.configurations()}  # also validates every configuration
    for table, named in (("report", report), ("labels", labels)):
        stray = sorted(set(named) - keys)
        if stray:
            raise InputError(f"{path}: [{table}] names {stray[0]!r}, which is no configuration of the study "
                             f"(they are: {', '.join(sorted(keys))})")
    return study
