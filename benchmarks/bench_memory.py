"""Peak memory of a training run against the resource estimate (issue 18: the BN CNN at batch 64,
goal at most 2 GiB).

It runs ``mnistlab train`` as a child process, exactly as a user would (``python -m mnistlab train
--arch A --batch-size B --epochs E --out <tmp>``, other training options passed through; the run's
defaults otherwise: online shift + elastic augmentation, SGD), and prints the child's peak resident
memory (max RSS, from ``os.wait4``) beside the estimate the run printed before it started
(``mnistlab.resources.estimate``, recomputed here from the run folder's config: every array the run
holds, the data included, but not the interpreter, the libraries' code or BLAS's own buffers). For
scale it also prints the max RSS of a child that only imports the trainer and loads the same data:
what any run holds before its first network array.

Run:  PYTHONPATH=src python3 benchmarks/bench_memory.py [--arch SPEC] [--batch-size 64] [--epochs 1]
          [--threads N] [-- other mnistlab train options]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from mnistlab.build import load_data  # noqa: E402
from mnistlab.config import load_toml  # noqa: E402
from mnistlab.resources import estimate, size_text  # noqa: E402
from mnistlab.runfolder import CONFIG  # noqa: E402

BN_CNN = ("conv32k3valid-bn-conv32k3valid-bn-conv32k5s2same-bn-drop0.4-conv64k3valid-bn-conv64k3valid-bn-"
          "conv64k5s2same-bn-drop0.4-conv128k4valid-bn-drop0.4")
GOAL = 2 * 2 ** 30
# A child that holds what every run holds before its network: the interpreter, the trainer's modules,
# NumPy/SciPy/OpenBLAS, and the run's data.
BASELINE = """
import sys
from mnistlab.build import load_data
from mnistlab.config import load_toml
import mnistlab.run
data = load_data(load_toml(sys.argv[1]))
"""


def child_max_rss(command, env):
    """(exit status, max RSS in bytes, seconds) of a child process run to its end."""
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, usage.ru_maxrss * 1024, time.perf_counter() - started  # ru_maxrss: KiB on Linux


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default=BN_CNN, help="architecture spec (default: the BN CNN)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1, help="epochs to train (default 1: 844 steps at batch 64)")
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: every core)")
    parser.add_argument("train_options", nargs="*", help="further `mnistlab train` options, after --")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MNISTLAB_SHARE_CORES": "0"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        command = [sys.executable, "-m", "mnistlab", "train", "--arch", args.arch, "--batch-size",
                   str(args.batch_size), "--epochs", str(args.epochs), "--out", str(out), "--no-progress",
                   *(["--threads", str(args.threads)] if args.threads else []), *args.train_options]
        print("running:", " ".join(command[1:]), flush=True)
        status, peak, seconds = child_max_rss(command, env)
        if status != 0:
            sys.exit(f"bench_memory: the training run failed (exit status {status})")
        config = load_toml(out / CONFIG)
        data = load_data(config)
        needs = estimate(config, len(data.train_x), len(data.val_x), len(data.test_x), data.train_x.shape[1])
        _, base, _ = child_max_rss([sys.executable, "-c", BASELINE, str(out / CONFIG)], env)
    print(f"arch {args.arch}, batch {args.batch_size}, {args.epochs} epoch(s) of {len(data.train_x):,} images "
          f"({seconds:.0f} s)")
    print(f"{'estimate (resources.estimate)':<44}{size_text(needs.memory):>12}   "
          f"of which data {size_text(needs.data)}, step buffers {size_text(needs.batch)}")
    print(f"{'max RSS of the training run':<44}{size_text(peak):>12}   "
          f"({peak / needs.memory:.2f}x the estimate)")
    print(f"{'max RSS of imports + data alone':<44}{size_text(base):>12}   "
          f"(so the run added {size_text(max(peak - base, 0))}; estimate without data: "
          f"{size_text(needs.memory - needs.data)})")
    print(f"goal: at most {size_text(GOAL)}: {'met' if peak <= GOAL else 'MISSED'}")


if __name__ == "__main__":
    main()
