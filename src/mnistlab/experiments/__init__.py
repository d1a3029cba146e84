"""Studies: a grid of run configurations, each repeated with several seeds, run side by side and
summarised beside the student report's numbers.

``run_study(path, ...)`` is what ``mnistlab sweep STUDY.toml`` calls: load the study file, run every
unfinished run (locally in worker processes, or on a Dask cluster), write runs.csv and the tables.
"""

from __future__ import annotations

from pathlib import Path

from .runner import execute, run_status, sweep
from .study import Configuration, RunSpec, Study, load_study
from .tables import read_row, write_tables

QUICK_TRAIN, QUICK_TEST = 2000, 500  # images in --quick's data subset

__all__ = ["Configuration", "RunSpec", "Study", "execute", "load_study", "quick_data", "read_row",
           "run_status", "run_study", "sweep", "write_tables"]


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


def run_study(path, out=None, jobs=None, backend="local", scheduler=None, quick=False, table_only=False,
              progress=False, log=print):
    """Run (or, with ``table_only``, only summarise) the study in ``path``; return (out folder, rows)."""
    study = load_study(path)
    out = Path(out) if out else Path("results") / (f"{study.name}-quick" if quick else study.name)
    if quick:
        study = study.quick(*quick_data(out / "quick-data"))
    if table_only:
        if not out.is_dir():
            from ..errors import InputError
            raise InputError(f"{out}: no results of study {study.name!r} yet (run it first)")
        return out, write_tables(study, out, study.runs())
    return out, sweep(study, out, jobs, backend, scheduler, progress, log=log)
