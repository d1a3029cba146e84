"""How much faster a sweep runs with --jobs 2 than with --jobs 1 (target on a 2-core machine: >= 1.8x).

A 5-repeat study of two small networks (batch 32 and 64: 10 runs, so two workers can share them
evenly) on the bundled MNIST is swept into a fresh folder with each job count in turn, alternating (1, 2, 1, 2, ...), and the script prints each sweep's wall time and the
median of the paired ratios. It then measures what the machine itself allows: one training of the
same network (one BLAS thread, core sharing off) alone, then two at once, alternating; if two at once
each take k times as long as one alone, a two-job sweep can expect about 2/k (an estimate from
separate processes, not a bound: 10-epoch sweeps measured 1.90x against an estimate of 1.84x).
Each worker's start (a process, its imports, the data set: about 1 s) is paid once per sweep, so
short runs lower the speed-up. Run it on a quiet machine:

    python benchmarks/bench_sweep.py               # 3 pairs, 100-100 at batch 32 for 10 epochs
    python benchmarks/bench_sweep.py --epochs 3    # shorter runs: the workers' start weighs more
    python benchmarks/bench_sweep.py --quick       # 1 pair, 1 epoch
"""

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mnistlab.experiments import run_study

STUDY = """name = "bench"
repeats = 5
[base]
hidden = [100, 100]
epochs = {epochs}
[[grid]]
batch_size = [32, 64]
"""


def timed_sweep(study, out, jobs):
    start = time.perf_counter()
    # one BLAS thread a run either way, as when the target was set: the speed-up of runs side by side
    # (a lone run now gets every core by default; 100-100 at batch 32 uses one whatever it is given)
    _, rows = run_study(study, out, jobs=jobs, log=lambda message: None, threads=1)
    assert len(rows) == 10 and all(r["status"] == "finished" for r in rows), rows
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="(jobs 1, jobs 2) pairs to time")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run (default 10)")
    parser.add_argument("--quick", action="store_true", help="one pair of one-epoch sweeps")
    args = parser.parse_args()
    pairs, epochs = (1, 1) if args.quick else (args.pairs, args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "bench.toml"
        study.write_text(STUDY.format(epochs=epochs))
        ratios = []
        print(f"10 runs of 784-100-100-10 (batch 32 and 64, 5 seeds each), {epochs} epochs each, on the bundled MNIST")
        print("pair  jobs=1 s  jobs=2 s  speed-up")
        for pair in range(pairs):
            one = timed_sweep(study, Path(tmp) / f"one{pair}", 1)
            two = timed_sweep(study, Path(tmp) / f"two{pair}", 2)
            ratios.append(one / two)
            print(f"{pair + 1:4d}  {one:8.1f}  {two:8.1f}  {one / two:8.2f}")
    print(f"median speed-up of --jobs 2 over --jobs 1: {statistics.median(ratios):.2f}x (target >= 1.8x)")
    ceiling(pairs, epochs)


def training_seconds(out, epochs):
    """Start ``mnistlab train`` of the benchmark's network into ``out``; a function that waits for it
    and returns its training time (the sum of history.csv's epoch seconds)."""
    command = [sys.executable, "-m", "mnistlab.cli", "train", "--hidden", "100,100", "--batch-size", "32",
               "--epochs", str(epochs), "--threads", "1", "--no-progress", "--out", str(out)]
    process = subprocess.Popen(command, env=dict(os.environ, MNISTLAB_SHARE_CORES="0"), stdout=subprocess.DEVNULL)

    def wait():
        assert process.wait() == 0, command
        with open(Path(out) / "history.csv", newline="") as f:
            return sum(float(row["seconds"]) for row in csv.DictReader(f))
    return wait


def ceiling(rounds, epochs):
    """Print how much slower two single-thread trainings run side by side than one alone, and the
    speed-up that leaves a two-job sweep to expect."""
    solo, side_by_side = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            solo.append(training_seconds(Path(tmp) / f"solo{r}", epochs)())
            waits = [training_seconds(Path(tmp) / f"{name}{r}", epochs) for name in "ab"]
            side_by_side += [wait() for wait in waits]
    slowdown = statistics.mean(side_by_side) / statistics.mean(solo)
    print(f"what the machine allows: one 784-100-100-10 training ({epochs} epochs, batch 32, one thread) trains in "
          f"{statistics.mean(solo):.2f} s alone and {statistics.mean(side_by_side):.2f} s beside another "
          f"({slowdown:.2f}x, {rounds} rounds): a two-job sweep of such runs can expect about {2 / slowdown:.2f}x")


if __name__ == "__main__":
    main()
