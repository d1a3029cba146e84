"""Running a study: every run in its own folder, several at once, resumable after any interruption.

``sweep(study, out_dir, jobs=..., backend="local"|"dask")`` starts each run that has not finished
(fresh, or resumed from its checkpoint), rewrites runs.csv and the tables after every run that ends,
and returns the rows. A run that raises is recorded as failed (``failed.json`` in its folder, with the
error) and the others go on; rerunning the sweep tries it again. Each run uses one BLAS thread:
on a small machine runs side by side use the cores better than threads inside one run.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

from ..errors import InputError
from ..files import remove_stale_temporaries, write_json
from ..runfolder import CHECKPOINT, FAILED, METRICS, TRAIN_LOG
from .tables import read_row, write_tables


def run_status(run_dir: Path) -> str:
    """'finished' (metrics.json written), 'partial' (a checkpoint to resume) or 'new'."""
    if (run_dir / METRICS).is_file():
        return "finished"
    if (run_dir / CHECKPOINT).is_file():
        return "partial"
    return "new"


def execute(config, run_dir: str) -> dict:
    """Run one configuration into ``run_dir`` (start or resume); return its runs.csv row.

    Called in a worker process or on a Dask worker: it never raises, a failure is its row.
    """
    from ..data import cache_datasets
    from ..run import resume_run, start_run  # imported in the worker, not at sweep start

    cache_datasets()  # a worker's runs share their data set: loaded once per worker, not once per run
    run_dir = Path(run_dir)
    log_path = run_dir / TRAIN_LOG
    try:
        status = run_status(run_dir)
        if status == "new" and run_dir.exists():  # a run killed before its first checkpoint
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / FAILED).unlink(missing_ok=True)
        with open(log_path, "a") as log_file:
            def log(message):
                print(message, file=log_file, flush=True)
            if status == "partial":
                resume_run(run_dir, False, log)
            elif status == "new":
                start_run(config, run_dir, False, log)
    except Exception as e:  # noqa: BLE001 -- a failed run is a result; the sweep goes on
        error = str(e) if isinstance(e, InputError) else f"{type(e).__name__}: {e}"
        write_json(run_dir / FAILED, {"error": error, "traceback": traceback.format_exc()})
    return read_row(run_dir)


def _local(pending, jobs):
    """(spec, row) as runs end, from a pool of ``jobs`` fresh worker processes."""
    # spawn, not fork: a forked child would inherit OpenBLAS's thread pool in an unknown state.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(execute, spec.config, spec.path): spec for spec in pending}
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                yield futures.pop(future), future.result()


def _dask(pending, scheduler, jobs):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InputError("--backend dask needs dask.distributed: pip install 'mnistlab[cluster]'") from None
    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="30s")
    else:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        # pure=False: identical-looking calls (they differ only inside the config) must all run.
        futures = {client.submit(execute, spec.config, spec.path, pure=False): spec for spec in pending}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        client.close()
        if cluster:
            cluster.close()


# One SGD step's fixed cost (NumPy calls and Python around them, ~18 us), in multiply-adds of BLAS time.
_STEP_OVERHEAD_MACS = 450_000


def _cost(config) -> float:
    """A run's rough cost, for ordering only: epochs x (multiply-adds per image + per-step overhead)."""
    return config.epochs * (config.resolved().macs + _STEP_OVERHEAD_MACS / config.batch_size)


@dataclasses.dataclass(frozen=True)
class _Pending:
    """A run still to do, as a worker gets it: its config (one BLAS thread) and its absolute folder."""

    config: object
    path: str


def sweep(study, out_dir, jobs: int | None = None, backend: str = "local", scheduler: str | None = None,
          progress: bool = False, repeats: int | None = None, log=print):
    """Run every unfinished run of ``study`` into ``out_dir``; return runs.csv's rows."""
    out_dir = Path(out_dir).resolve()
    specs = study.runs(repeats)
    jobs = max(1, jobs or os.cpu_count() or 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)  # a sweep killed while rewriting its tables
    pending = [_Pending(dataclasses.replace(s.config, threads=1), str(out_dir / s.run_dir))
               for s in specs if run_status(out_dir / s.run_dir) != "finished"]
    pending.sort(key=lambda p: _cost(p.config), reverse=True)  # longest first: no lone long run at the end
    rows = write_tables(study, out_dir, specs)
    log(f"{study.name}: {len(specs)} runs, {len(specs) - len(pending)} finished already, "
        f"{len(pending)} to run with {jobs if backend == 'local' else 'dask'} worker(s); results in {out_dir}")
    if not pending:
        return rows
    from tqdm import tqdm

    bar = tqdm(total=len(specs), initial=len(specs) - len(pending), unit="run", disable=not progress,
               desc=study.name, smoothing=0)
    failed = 0
    started = time.perf_counter()
    runs = _local(pending, jobs) if backend == "local" else _dask(pending, scheduler, jobs)
    for finished, (_, row) in enumerate(runs, 1):
        failed += row["status"] == "failed"
        rows = write_tables(study, out_dir, specs)  # after every run: a kill loses nothing finished
        bar.update(1)
        bar.set_postfix(failed=failed, running=min(jobs, len(pending) - finished), refresh=False)
        if not progress:
            acc = row["test_accuracy"]
            log(f"[{finished}/{len(pending)}] {row['config']} seed {row['seed']}: {row['status']}"
                + (f", test accuracy {float(acc):.4f}" if acc not in ("", None) else "")
                + (f" ({row['error']})" if row["error"] else "")
                + f"  [{time.perf_counter() - started:.0f} s]")
    bar.close()
    return rows

