"""Per-layer-kind time of a CNN's training step for two source trees, alternating: did a change to
the layers pay? For a change against main, check main out in a worktree and give both trees.

    python benchmarks/ab_steps.py /path/to/old /path/to/new --net cnn-bn --pairs 5

Each side runs in its own process (its tree's ``src`` first on the path), ``bench_train.layer_times``
over ``--steps`` steps of batch 64 after 5 untimed, as Network.train_epoch drives them (two streams
on two threads). Prints each pair and the median ratio new / old of the whole step and of each kind
of layer, with its range. Run it on a quiet machine: the pairs are back to back, but the VM's noise
is +-15% between runs.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = """
import json, os, sys
tree, net_name, steps, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path[:0] = [os.path.join(tree, "src"), os.path.join(tree, "benchmarks")]
import numpy as np
import bench_train as bt
from mnistlab.nn import Network
ds = bt.load_dataset()
n = (steps + 5) * 64
x, y = ds.train_images[:n].astype(np.float32) / 255, ds.train_labels[:n].astype(np.int64)
net = Network.build(bt.resolve(bt.NETWORKS[net_name]), "he", np.random.default_rng(bt.SEED))
layers, step = bt.layer_times(net, x, y, 64, threads, steps, np.random.default_rng(bt.SEED))
kinds = {}
for kind, _, forward, backward in layers:
    kinds[kind] = kinds.get(kind, 0.0) + forward + backward
print(json.dumps({"step": step, **kinds}))
"""


def measure(tree, args):
    env = dict(os.environ, MNISTLAB_SHARE_CORES="0")
    out = subprocess.run([sys.executable, "-c", CHILD, tree, args.net, str(args.steps), str(args.threads)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="source tree of the old code (has src/ and benchmarks/)")
    parser.add_argument("new", help="source tree of the new code")
    parser.add_argument("--net", default="cnn-bn", help="cnn-bn or cnn-examples (default cnn-bn)")
    parser.add_argument("--pairs", type=int, default=5, help="back-to-back pairs (default 5)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per side (default 40)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2: two streams)")
    args = parser.parse_args(argv)
    for tree in (args.old, args.new):
        if not os.path.isfile(os.path.join(tree, "benchmarks", "bench_train.py")):
            parser.error(f"{tree}: no benchmarks/bench_train.py there")
    pairs = []
    for k in range(args.pairs):
        old, new = measure(args.old, args), measure(args.new, args)
        pairs.append((old, new))
        print(f"pair {k + 1}: step {old['step']:.1f} -> {new['step']:.1f} ms; " +
              ", ".join(f"{kind} {old[kind]:.1f} -> {new[kind]:.1f}" for kind in old if kind != "step"),
              flush=True)
    print(f"\nms per step of 64 images ({args.net}, {args.threads} threads), medians of {args.pairs} pairs:")
    for kind in pairs[0][0]:
        ratios = [new[kind] / old[kind] for old, new in pairs]
        print(f"  {kind:<6} {statistics.median(o[kind] for o, _ in pairs):7.2f} -> "
              f"{statistics.median(n[kind] for _, n in pairs):7.2f}   ratio {statistics.median(ratios):.3f} "
              f"({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
