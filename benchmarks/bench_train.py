"""Training speed of mnistlab against PyTorch (CPU) on MNIST, with the same network, data and threads.

What it measures, for each case (hidden layer sizes / batch size):
  * seconds for one training epoch over the first 54,000 MNIST training images (in file order;
    the epoch visits them in a seeded shuffled order, the same order for both libraries),
    ReLU, He init (torch gets a copy of mnistlab's initial weights), float32, plain SGD lr 0.01;
  * the median over --repeats epochs, mnistlab and torch alternating A B A B, and the ratio
    mnistlab/torch (below 1: mnistlab is faster);
  * for batch >= 64, the achieved GFLOP/s, also as a share of this machine's matrix-multiply peak
    (the best of a few 4096x4096 float32 numpy matmuls, timed in the same run);
  * seconds to run inference (logits + argmax) over the 10,000 test images with the 800-800 network.
The clock (time.perf_counter) covers only the epoch's loop: loading the files and the per-epoch
shuffle (one gather into a contiguous array, shared by both libraries) happen before it starts. Each
library does one warm-up step per case before it is timed. Both are capped at --threads N threads
(torch.set_num_threads; threadpoolctl.threadpool_limits around mnistlab's work and the peak matmul).

Run:  PYTHONPATH=src python3 benchmarks/bench_train.py [--threads N] [--repeats R] [--quick]
        [--cases 100-100/8,800-800/64] [--json results.json]        (`make bench` runs it plainly)
"""

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from mnistlab.nn import Network, Sgd  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # still measure mnistlab; every ratio becomes "n/a"
    torch = None

CASES = ["100-100/8", "100-100/16", "100-100/64", "800-800/8", "800-800/64", "1600-400-200/64"]
# case -> (largest ratio mnistlab/torch, smallest share of matmul peak or None)
TARGETS = {"100-100/8": (0.15, None), "100-100/64": (0.5, None), "800-800/8": (0.6, None),
           "800-800/64": (0.8, 0.40), "1600-400-200/64": (0.8, 0.40)}
EVAL_TARGET_S = 0.050
LR, TRAIN_N, QUICK_N, SEED = 0.01, 54_000, 6_000, 0


def load_mnist():
    """uint8 train/test images (n, 784) and labels, via mnistlab.data if it works, else the gz IDX files."""
    try:
        from mnistlab.data import load_dataset
        ds = load_dataset()
        return ds.train_images, ds.train_labels, ds.test_images, ds.test_labels
    except Exception as e:  # the loader is optional here: fall back to reading IDX directly
        print(f"(mnistlab.data not usable: {e!r}; reading data/mnist/*.gz directly)")
        def idx(name, offset):
            return np.frombuffer(gzip.open(ROOT / "data" / "mnist" / name).read(), np.uint8, offset=offset)
        return (idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 784), idx("train-labels-idx1-ubyte.gz", 8),
                idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784), idx("t10k-labels-idx1-ubyte.gz", 8))


def machine_info(threads):
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor() or "?") if os.path.exists("/proc/cpuinfo") else platform.processor()
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__ if torch else None,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}


def matmul_peak_gflops(threads, n=4096, tries=3):
    a = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(2).standard_normal((n, n), dtype=np.float32)
    with threadpool_limits(threads):
        a @ b  # warm-up
        best = min(_timed(lambda: a @ b) for _ in range(tries))
    return 2 * n ** 3 / best / 1e9


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def train_flops_per_sample(sizes):
    # Forward: one (fan_in x fan_out) multiply-add per weight, i.e. 2*fan_in*fan_out flops per sample
    # per layer. Training = forward + two backward products (dW = x.T @ delta and delta @ W.T), so 3x.
    # (Neither library computes the first layer's delta @ W.T, so this slightly overstates the work.)
    return 3 * 2 * sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))


def torch_copy(net):
    """A torch nn.Sequential (Linear+ReLU ..., Linear) holding the same weights as mnistlab's net."""
    layers = []
    for W, b in zip(net.weights, net.biases):
        lin = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))  # torch stores (fan_out, fan_in)
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def mnistlab_epoch(net, opt, x, y, batch, threads, rng):
    with threadpool_limits(threads):
        t0 = time.perf_counter()
        for i in range(0, len(x), batch):
            net.train_step(x[i:i + batch], y[i:i + batch], opt, LR, rng)
        return time.perf_counter() - t0


def torch_epoch(model, opt, x, y, batch):
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[i:i + batch]), y[i:i + batch]).backward()
        opt.step()
    return time.perf_counter() - t0


def test_accuracy(net, model, x_test, y_test, threads):
    with threadpool_limits(threads):
        acc_m = net.evaluate(x_test, y_test)[1]
    if model is None:
        return acc_m, None
    with torch.inference_mode():
        acc_t = (model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
    return acc_m, float(acc_t)


def run_case(case, x, y, x_test, y_test, args):
    hidden, batch = case.split("/")
    sizes, batch = [784, *map(int, hidden.split("-")), 10], int(batch)
    net = Network.initialized(sizes, "he", np.random.default_rng(SEED))
    opt, rng = Sgd(), np.random.default_rng(SEED)
    model = torch_copy(net) if torch else None
    topt = torch.optim.SGD(model.parameters(), lr=LR) if torch else None
    mnistlab_epoch(net, opt, x[:batch], y[:batch], batch, args.threads, rng)  # warm-up: one step each
    if torch:
        torch_epoch(model, topt, torch.from_numpy(x[:batch]), torch.from_numpy(y[:batch]), batch)
    times_m, times_t = [], []
    for r in range(args.repeats):
        order = np.random.default_rng(SEED + 1 + r).permutation(len(x))  # the same shuffle for both
        xe, ye = np.ascontiguousarray(x[order]), np.ascontiguousarray(y[order])
        times_m.append(mnistlab_epoch(net, opt, xe, ye, batch, args.threads, rng))
        if torch:
            times_t.append(torch_epoch(model, topt, torch.from_numpy(xe), torch.from_numpy(ye), batch))
    m = statistics.median(times_m)
    t = statistics.median(times_t) if torch else None
    flops = train_flops_per_sample(sizes) * len(x)
    acc_m, acc_t = test_accuracy(net, model, x_test, y_test, args.threads)
    return {"case": case, "sizes": sizes, "batch": batch, "mnistlab_s": m, "torch_s": t,
            "mnistlab_all_s": times_m, "torch_all_s": times_t, "ratio": m / t if t else None,
            "mnistlab_gflops": flops / m / 1e9, "torch_gflops": flops / t / 1e9 if t else None,
            "test_acc_mnistlab": acc_m, "test_acc_torch": acc_t}


def run_eval(x_test, y_test, args, tries=7):
    """Median seconds for logits + argmax over the test set, 800-800 network, alternating libraries."""
    net = Network.initialized([784, 800, 800, 10], "he", np.random.default_rng(SEED))
    model = torch_copy(net) if torch else None
    xt = torch.from_numpy(x_test) if torch else None

    def m():
        with threadpool_limits(args.threads):
            return _timed(lambda: net.logits(x_test).argmax(axis=1))

    def t():
        with torch.inference_mode():
            return _timed(lambda: model(xt).argmax(1))
    m()  # warm-up
    if torch:
        t()
    tm, tt = [], []
    for _ in range(tries):
        tm.append(m())
        if torch:
            tt.append(t())
    return {"mnistlab_s": statistics.median(tm), "torch_s": statistics.median(tt) if torch else None}


def verdict(ok):
    return "n/a" if ok is None else ("ok" if ok else "MISS")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated hidden/batch, e.g. 100-100/8")
    p.add_argument("--quick", action="store_true", help=f"train on {QUICK_N} images instead of {TRAIN_N}")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]

    info = machine_info(args.threads)
    print(f"CPU: {info['cpu']}, {info['cores']} cores; threads: {args.threads}; Python {info['python']}, "
          f"numpy {info['numpy']}, torch {info['torch'] or 'not installed'}")
    if torch:
        torch.set_num_threads(args.threads)
    else:
        print("NOTE: torch is not importable (pip install torch==2.13.0); timing mnistlab only, ratios n/a.")
    x_tr, y_tr, x_te, y_te = load_mnist()
    n = QUICK_N if args.quick else TRAIN_N
    x = (x_tr[:n].astype(np.float32) / 255).copy()  # the first n training images, float32 in [0, 1]
    y = y_tr[:n].astype(np.int64)
    x_test, y_test = np.ascontiguousarray(x_te, np.float32) / 255, y_te.astype(np.int64)
    peak = matmul_peak_gflops(args.threads)
    print(f"matmul peak (numpy float32 4096x4096, best of 3): {peak:.1f} GFLOP/s")
    print(f"one epoch = first {n} training images, shuffled per epoch; median of {args.repeats} epochs\n")

    head = (f"{'case':<16} {'mnistlab s':>10} {'torch s':>9} {'ratio':>6}  {'GFLOP/s m (%pk)':>15}"
            f"  {'GFLOP/s t (%pk)':>15}  {'acc m/t':>11}  target")
    print(head)
    print("-" * len(head))
    results = []
    for case in cases:
        r = run_case(case, x, y, x_test, y_test, args)
        results.append(r)
        ratio_max, peak_min = TARGETS.get(case, (None, None))
        gm = gt = ""
        if r["batch"] >= 64:
            r["mnistlab_peak_share"] = r["mnistlab_gflops"] / peak
            gm = f"{r['mnistlab_gflops']:.1f} ({100 * r['mnistlab_peak_share']:.0f}%)"
            if r["torch_gflops"]:
                gt = f"{r['torch_gflops']:.1f} ({100 * r['torch_gflops'] / peak:.0f}%)"
        target = ""
        if ratio_max is not None:
            target = f"ratio <= {ratio_max}: {verdict(None if r['ratio'] is None else r['ratio'] <= ratio_max)}"
        if peak_min is not None:
            target += f"; >= {100 * peak_min:.0f}% peak: {verdict(r['mnistlab_peak_share'] >= peak_min)}"
        acc = f"{r['test_acc_mnistlab']:.3f}/" + (f"{r['test_acc_torch']:.3f}" if torch else "-")
        print(f"{case:<16} {r['mnistlab_s']:>10.3f} {r['torch_s'] or float('nan'):>9.3f} "
              f"{r['ratio'] or float('nan'):>6.2f}  {gm:>15}  {gt:>15}  {acc:>11}  {target}", flush=True)

    ev = run_eval(x_test, y_test, args)
    ratio = ev["mnistlab_s"] / ev["torch_s"] if ev["torch_s"] else None
    print(f"{'eval 800-800':<16} {ev['mnistlab_s']:>10.4f} {ev['torch_s'] or float('nan'):>9.4f} "
          f"{ratio or float('nan'):>6.2f}  {'':>15}  {'':>15}  {'':>11}  "
          f"mnistlab < {1000 * EVAL_TARGET_S:.0f} ms: {verdict(ev['mnistlab_s'] < EVAL_TARGET_S)}")
    print("\nratio = mnistlab seconds / torch seconds (below 1: mnistlab faster); acc m/t = test accuracy "
          "of each after its epochs (a check that both trained alike); eval = logits + argmax of 10,000 images.")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "images": n, "repeats": args.repeats,
                                               "matmul_peak_gflops": peak, "cases": results,
                                               "eval_800_800": ev}, indent=2))


if __name__ == "__main__":
    main()
