"""Two trainings side by side: does each run its epochs within 2.3x of one alone (ideal: 2x)?

Runs one training alone, then two started together, each in its own process, and prints the median
epoch time of each and its ratio to the solo one. A training here is what ``mnistlab train`` runs by
default: 784-800-800-10, ReLU, He init, SGD with Nesterov momentum 0.9, lr 0.05, batch 64, on the
first 54,000 bundled MNIST training images, reshuffled every epoch, BLAS threads as the trainer
picks them (``threads_for``) inside ``blas.thread_limits``, whose ``update()`` is called before
every epoch, as the trainer does. Each process loads its data first; only epochs are timed.

``--no-share`` also runs the pair with core sharing off (``MNISTLAB_SHARE_CORES=0``: every process
on every core, the old behaviour) for comparison. The other programs' load on the machine during
each phase is printed too (cores busy outside the benchmark's processes, from /proc/stat): a figure
taken beside other work is provisional.

Run:  PYTHONPATH=src python3 benchmarks/bench_busy.py [--epochs 4] [--quick] [--no-share] [--json out.json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mnistlab.nn.cores import busy_jiffies, process_jiffies  # the same /proc readings the sharing uses

ROOT = Path(__file__).resolve().parents[1]
TARGET = 2.3
TRAIN_N, QUICK_N = 54_000, 6_000


def child(epochs, images):
    """One training in this process; prints one JSON line per epoch: seconds and BLAS threads."""
    sys.path.insert(0, str(ROOT / "src"))
    import numpy as np

    from mnistlab.data import load_dataset, to_float
    from mnistlab.nn import Network, Sgd
    from mnistlab.nn.blas import thread_limits, threads_for

    ds = load_dataset()
    x, y = to_float(ds.train_images[:images]), ds.train_labels[:images].astype(np.intp)
    rng = np.random.default_rng(0)
    net = Network.initialized([784, 800, 800, 10], "he", rng)
    optimizer = Sgd(0.9, True)
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()  # wait for the go, so that both processes of a pair start their epochs together
    with thread_limits(threads_for(net.largest_product(64))) as cores:
        for epoch in range(epochs):
            threads = cores.update()
            start = time.perf_counter()
            order = rng.permutation(len(x))
            net.train_epoch(x[order], y[order], 64, optimizer, 0.05, rng)
            print(json.dumps({"epoch": epoch + 1, "seconds": time.perf_counter() - start, "threads": threads}),
                  flush=True)


def run_together(count, epochs, images, share):
    """Start ``count`` trainings, let them go at once; (per-process epoch records, other load in cores)."""
    env = dict(os.environ, MNISTLAB_SHARE_CORES="1" if share else "0")
    procs = [subprocess.Popen([sys.executable, __file__, "--child", str(epochs), str(images)], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(count)]
    for p in procs:
        json.loads(p.stdout.readline())  # ready: data loaded
    t0, busy0 = time.monotonic(), busy_jiffies()
    mine0 = sum(process_jiffies(p.pid) or 0 for p in procs)
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    records = [[json.loads(line) for line in p.stdout] for p in procs]
    t1, busy1 = time.monotonic(), busy_jiffies()
    mine1 = sum(process_jiffies(p.pid) or 0 for p in procs)  # read before they are reaped
    for p in procs:
        if p.wait():
            sys.exit(f"a training process failed (exit {p.returncode})")
    hz = os.sysconf("SC_CLK_TCK")
    other = max(0.0, (busy1 - busy0 - (mine1 - mine0)) / hz / (t1 - t0))
    return records, other


def median_epoch(records):
    return statistics.median(r["seconds"] for r in records)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=4, help="epochs per training (default 4)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_N} images and 2 epochs: checks the script runs")
    p.add_argument("--no-share", action="store_true", help="also time the pair with core sharing off")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(*args.child)
    epochs, images = (2, QUICK_N) if args.quick else (args.epochs, TRAIN_N)
    print(f"{os.cpu_count()} cores; 784-800-800-10, batch 64, {images} images, {epochs} epochs per training")
    results = {}
    phases = [("solo", 1, True), ("pair", 2, True)] + ([("pair, sharing off", 2, False)] if args.no_share else [])
    print(f"\n{'phase':<18} {'median epoch s':>20} {'x solo':>12} {'threads':>12} {'other load':>10}", flush=True)
    for name, count, share in phases:  # each line printed as soon as its phase ends
        records, other = run_together(count, epochs, images, share)
        r = results[name] = {"epoch_s": [median_epoch(p) for p in records], "other_cores": other,
                             "threads": [sorted({e["threads"] for e in p}) for p in records], "records": records}
        solo = results["solo"]["epoch_s"][0]
        r["ratio"] = [t / solo for t in r["epoch_s"]]
        times = " ".join(f"{t:.2f}" for t in r["epoch_s"])
        print(f"{name:<18} {times:>20} {' '.join(f'{x:.2f}' for x in r['ratio']):>12} "
              f"{' '.join(str(t) for t in r['threads']):>12} {other:>10.2f}", flush=True)
    worst = max(results["pair"]["ratio"])
    print(f"\npair with sharing: each within {TARGET}x of solo: {'ok' if worst <= TARGET else 'MISS'} "
          f"(worst {worst:.2f}x; ideal 2x on 2 cores)")
    busiest = max(r["other_cores"] for r in results.values())
    if busiest > 0.1:
        print(f"WARNING: other programs kept up to {busiest:.2f} cores busy meanwhile: provisional figures, "
              "rerun on a quiet machine.")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
