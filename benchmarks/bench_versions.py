"""Training speed of two versions of mnistlab, side by side: is a change as fast as what it replaces?

Each pair runs one case (hidden sizes / batch size) in a fresh process per version, first the
--before source tree then this one, and takes the fastest of --epochs epochs over the first 6,000
(--quick: 2,000) bundled MNIST training images, SGD with Nesterov momentum. It prints every pair,
whether the two versions' losses are bit-identical, and the median ratio after/before.

Run:  python benchmarks/bench_versions.py --before /path/to/old/src [--cases 100-100/8,800-800/64]
          [--pairs 7] [--epochs 5] [--quick]
      (old source: e.g. `git worktree add /tmp/old <commit>`, then --before /tmp/old/src)
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from timing import PAUSE_S, paired_ratio

HERE = Path(__file__).resolve()
CHILD = """
import sys, time
import numpy as np
from mnistlab.data import load_dataset
from mnistlab.nn import Network, Sgd
from mnistlab.nn.blas import thread_limits, threads_for
case, n, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hidden, batch = case.split("/")
sizes, batch = [784, *map(int, hidden.split("-")), 10], int(batch)
ds = load_dataset()
x, y = ds.train_images[:n].astype(np.float32) / 255, ds.train_labels[:n].astype(np.intp)
net, opt, rng = Network.initialized(sizes, "he", np.random.default_rng(0)), Sgd(0.9, True, 0.0), np.random.default_rng(1)
with thread_limits(threads_for(net.largest_product(batch), None)):
    net.train_epoch(x[:batch], y[:batch], batch, opt, 0.01, rng)  # warm-up
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        loss, _ = net.train_epoch(x, y, batch, opt, 0.01, rng)
        times.append(time.perf_counter() - t0)
print(min(times), repr(loss))
"""


def one(src, case, n, epochs):
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", CHILD, case, str(n), str(epochs)], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    return float(out[0]), out[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", required=True, help="the src/ folder of the version to compare against")
    p.add_argument("--cases", default="100-100/8,800-800/64", help="comma-separated hidden/batch")
    p.add_argument("--pairs", type=int, default=7, help="before/after pairs per case (default 7)")
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per process; the fastest counts (default 5)")
    p.add_argument("--quick", action="store_true", help="2,000 images and 2 pairs instead of 6,000 and --pairs")
    args = p.parse_args(argv)
    after = HERE.parents[1] / "src"
    n, pairs = (2000, 2) if args.quick else (6000, args.pairs)
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        before_s, after_s = [], []
        for i in range(pairs):
            b, loss_b = one(args.before, case, n, args.epochs)
            time.sleep(PAUSE_S)
            a, loss_a = one(after, case, n, args.epochs)
            time.sleep(PAUSE_S)
            before_s.append(b)
            after_s.append(a)
            print(f"{case} pair {i + 1}: before {b:.3f} s, after {a:.3f} s, ratio {a / b:.3f}, "
                  f"bit-identical loss: {loss_a == loss_b}", flush=True)
        print(f"{case}: median after/before {paired_ratio(after_s, before_s):.3f} over {pairs} pairs\n")


if __name__ == "__main__":
    main()
