"""How much faster a sweep runs with --jobs 2 than with --jobs 1 (target on a 2-core machine: >= 1.8x).

A 5-repeat study of two small networks (batch 32 and 64: 10 runs, so two workers can share them
evenly) on the bundled MNIST is swept into a fresh folder with each job count in turn, alternating (1, 2, 1, 2, ...), and the script prints each sweep's wall time and the
median of the paired ratios. Run it on a quiet machine:

    python benchmarks/bench_sweep.py            # 3 pairs, 100-100 at batch 32 for 3 epochs
    python benchmarks/bench_sweep.py --quick    # 1 pair, 1 epoch
"""

import argparse
import statistics
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
    _, rows = run_study(study, out, jobs=jobs, log=lambda message: None)
    assert len(rows) == 10 and all(r["status"] == "finished" for r in rows), rows
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="(jobs 1, jobs 2) pairs to time")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run")
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


if __name__ == "__main__":
    main()
