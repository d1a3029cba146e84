"""Running a study: every run in its own folder, several at once, resumable after any interruption.

``sweep(study, out_dir, jobs=..., backend="local"|"dask")`` starts each run that has not finished
(fresh, or resumed from its checkpoint), rewrites runs.csv and the tables after every run that ends,
and returns the rows. A run that raises is recorded as failed (``failed.json`` in its folder, with the
error) and the others go on; rerunning the sweep tries it again. The cores are shared out: each of
``jobs`` local runs gets ``cores // jobs`` BLAS threads (on a small machine runs side by side use the cores
better than threads inside one run, so the default, a run per core, gives each one thread); a Dask worker's
run gets one, as the cluster's workers are sized by their own machines. ``threads`` sets it.
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
from .lock import StudyLock
from .tables import Tables, read_metrics, read_row


def run_status(run_dir: Path) -> str:
    """'finished' (a sound metrics.json), 'partial' (a checkpoint to resume) or 'new'. A run whose
    metrics.json cannot be read is not finished: it is resumed (or run again)."""
    if read_metrics(run_dir)[0] is not None:
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
        problem = read_metrics(run_dir)[1]
        if status == "new" and run_dir.exists():  # a run killed before its first checkpoint
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / FAILED).unlink(missing_ok=True)
        if problem:  # damaged: resuming from the checkpoint (it holds the last epoch) writes it anew
            (run_dir / METRICS).unlink(missing_ok=True)
        with open(log_path, "a") as log_file:
            def log(message):
                print(message, file=log_file, flush=True)
            if problem:
                log(f"{problem}; finishing the run again from its checkpoint")
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
        futures = {pool.submit(execute, p.config, p.path): p for p in pending}
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                yield futures.pop(future), future.result()


DASK_CONNECT_TIMEOUT = "30s"


def _dask(pending, scheduler, jobs):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InputError("--backend dask needs dask.distributed: pip install 'mnistlab[cluster]'") from None
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=DASK_CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as e:  # refused, timed out, a malformed address
            raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({str(e).splitlines()[0][:200]})") \
                from None
    else:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        # pure=False: identical-looking calls (they differ only inside the config) must all run.
        futures = {client.submit(execute, p.config, p.path, pure=False): p for p in pending}
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
    """A run still to do: its config (its BLAS threads set) and absolute folder, as a worker gets them, and
    its RunSpec."""

    config: object
    path: str
    spec: object


def sweep(study, out_dir, jobs: int | None = None, backend: str = "local", scheduler: str | None = None,
          progress: bool = False, repeats: int | None = None, log=print, threads: int | None = None):
    """Run every unfinished run of ``study`` into ``out_dir``; return runs.csv's rows. ``threads``: BLAS
    threads per run (default: the cores shared out among the ``jobs`` local runs; one on Dask).

    The study folder is locked while the sweep runs: a second sweep into it is refused (InputError
    naming the holder), so two never run, and half-write, the same runs.
    """
    out_dir = Path(out_dir).resolve()
    specs = study.runs(repeats)
    out_dir.mkdir(parents=True, exist_ok=True)
    with StudyLock(out_dir):
        return _sweep_locked(study, out_dir, specs, jobs, backend, scheduler, progress, log, threads)


# The tables are rewritten after every run that ends, unless writing them takes more than this share of
# the time since the last write (a study of thousands of runs): then after the next runs, and at the end.
MAX_TABLE_SHARE = 0.05


def threads_per_run(jobs, backend="local", threads=None, cores=None):
    """BLAS threads for each run: ``threads`` if given, else the local cores shared out among ``jobs``
    runs at once (at least one), or one on a Dask cluster."""
    if threads is not None:
        return threads
    if backend != "local":
        return 1
    return max(1, (cores or os.cpu_count() or 1) // max(1, jobs or 1))


def _sweep_locked(study, out_dir, specs, jobs, backend, scheduler, progress, log, threads=None):
    remove_stale_temporaries(out_dir)  # a sweep killed while rewriting its tables
    tables = Tables(study, out_dir, specs)
    for row in tables.damaged():
        log(f"warning: {out_dir / row['run_dir']}: {row['error']}; running it again")
    todo = [s for s in specs if tables.rows[s.run_dir]["status"] not in ("finished", "diverged")]
    rows = tables.write()
    given, jobs = jobs, max(1, min(jobs or os.cpu_count() or 1, len(todo)))  # no worker without a run
    # Shared out among the workers asked for, not those left after the cap: --jobs 2 with one run left to do
    # gives it the one thread it would have had beside another.
    per_run = threads_per_run(given or (os.cpu_count() or 1), backend, threads)
    pending = [_Pending(dataclasses.replace(s.config, threads=per_run), str(out_dir / s.run_dir), s) for s in todo]
    pending.sort(key=lambda p: _cost(p.config), reverse=True)  # longest first: no lone long run at the end
    workers = "dask workers" if backend != "local" else f"{jobs} worker(s)"
    if backend == "local" and given and given > jobs and pending:
        workers += f" (--jobs {given} capped at the runs to do)"
    workers += f", {per_run} BLAS thread{'s' if per_run > 1 else ''} each"
    log(f"{study.name}: {len(specs)} runs, {len(specs) - len(pending)} finished already, "
        f"{len(pending)} to run with {workers}; results in {out_dir}")
    if not pending:
        return rows
    from tqdm import tqdm

    bar = tqdm(total=len(specs), initial=len(specs) - len(pending), unit="run", disable=not progress,
               desc=study.name, smoothing=0)
    failed = 0
    started = last_write = time.perf_counter()
    write_cost = 0.0
    runs = _local(pending, jobs) if backend == "local" else _dask(pending, scheduler, jobs)
    for finished, (done, _) in enumerate(runs, 1):
        row = tables.update(done.spec)  # one run folder read, not the whole study's
        failed += row["status"] in ("failed", "damaged")
        now = time.perf_counter()
        if finished == len(pending) or write_cost <= MAX_TABLE_SHARE * (now - last_write):
            rows = tables.write()  # a kill loses nothing finished: the run folders are the record
            last_write = time.perf_counter()
            write_cost = last_write - now
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
