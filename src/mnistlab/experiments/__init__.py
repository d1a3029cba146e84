"""Studies: a grid of run configurations, each repeated with several seeds, run side by side and
summarised beside the student report's numbers.

``run_study(path, ...)`` is what ``mnistlab sweep STUDY.toml`` calls: load the study file, run every
unfinished run (locally in worker processes, or on a Dask cluster), write runs.csv and the tables.
"""

from __future__ import annotations

from pathlib import Path

from .runner import execute, run_status, sweep
from .study import Configuration, RunSpec, Study, load_study
from ..errors import InputError
from .tables import Tables, read_row, write_tables

QUICK_TRAIN, QUICK_TEST = 2000, 500  # images in --quick's data subset

__all__ = ["Configuration", "RunSpec", "Study", "execute", "load_study", "quick_data", "read_row",
           "run_status", "run_study", "sweep", "Tables", "write_tables"]


def quick_data(folder) -> tuple[str, str]:
    """The first QUICK_TRAIN / QUICK_TEST images of the bundled MNIST as CSV files in ``folder``."""
    from ..data import Dataset, export_csv, load_dataset

    folder = Path(folder)
    paths = folder / "mnist_train.csv", folder / "mnist_test.csv"
    if not all(p.is_file() for p in paths):
        mnist = load_dataset()
        export_csv(Dataset(mnist.train_images[:QUICK_TRAIN], mnist.train_labels[:QUICK_TRAIN],
                           mnist.test_images[:QUICK_TEST], mnist.test_labels[:QUICK_TEST]), folder)
    return str(paths[0]), str(paths[1])


def _check_kind(out: Path, quick: bool):
    """InputError when ``out`` holds a full study's results and this is --quick, or the other way round:
    a smoke test never overwrites a study's tables (nor a study a smoke test's)."""
    import json

    try:
        recorded = json.loads((out / "study.json").read_text())
    except (OSError, ValueError):
        return
    # quick-data/: a quick sweep's folder from before study.json said "quick"
    was_quick = (isinstance(recorded, dict) and recorded.get("quick") is True) or (out / "quick-data").is_dir()
    if was_quick != quick:
        held = "a --quick smoke test's" if was_quick else "a full study's"
        raise InputError(f"{out}: holds {held} results; "
                         + ("--quick goes to its own folder (the default: results/NAME-quick)" if quick
                            else "run the full study into another --out (the default: results/NAME)"))


def run_study(path, out=None, jobs=None, backend="local", scheduler=None, quick=False, table_only=False,
              progress=False, log=print, threads=None):
    """Run (or, with ``table_only``, only summarise) the study in ``path``; return (out folder, rows)."""
    study = load_study(path)
    out = Path(out) if out else Path("results") / (f"{study.name}-quick" if quick else study.name)
    if table_only and not out.is_dir():
        raise InputError(f"{out}: no results of study {study.name!r} yet (run it first)")
    _check_kind(out, quick)
    if quick:  # --table needs only the subset's names, not its files
        data = out / "quick-data"
        paths = ((str(data / "mnist_train.csv"), str(data / "mnist_test.csv")) if table_only
                 else quick_data(data))
        study = study.quick(*paths, QUICK_TRAIN, QUICK_TEST)
    if table_only:
        tables = Tables(study, out, study.runs())
        for row in tables.damaged():
            log(f"warning: {out / row['run_dir']}: {row['error']}; counted as not ended (the next sweep redoes it)")
        return out, tables.write()
    return out, sweep(study, out, jobs, backend, scheduler, progress, log=log, threads=threads)
