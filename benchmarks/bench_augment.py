"""Augmentation speed: throughput of each transform, and what online augmentation costs a training epoch.

Part 1 prints images/s for every transform alone at its default strength, for affine + elastic (the
online mode's usual set, one interpolation) and, for comparison, for the same affine + elastic warp
done with scipy.ndimage.map_coordinates (order 1) instead of mnistlab's own bilinear pass. Each figure
is the best of --repeats passes over the images (uint8 in and out, as on disk; the trainer's float32
is the same work without two conversions).

Part 2 times epochs of the 784-800-800-10 network (ReLU, He init, SGD with Nesterov momentum 0.9,
lr 0.01, batch 64, float32, the trainer's BLAS threads) on the first 54,000 MNIST training images:
without augmentation, and with online affine + elastic augmentation from ``EpochImages``, whose
worker thread makes epoch e + 1's images while epoch e trains. Epochs run in blocks (plain, online,
plain, online, ...; a pause between blocks): an online block starts with one untimed epoch, so every
timed online epoch includes the wait, if any, for its images from the worker, as in a long run. The
target (issue 10): the online epoch's median at most 1.25 x the plain one's.

Run:  PYTHONPATH=src python3 benchmarks/bench_augment.py [--quick] [--repeats R] [--threads N] [--json FILE]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from mnistlab.data import load_dataset, to_float  # noqa: E402
from mnistlab.data.augment import GEOMETRIC, TRANSFORMS, Augmentation, affine_parameters, elastic_fields  # noqa: E402
from mnistlab.data.prefetch import EpochImages  # noqa: E402
from mnistlab.nn import Network, Sgd  # noqa: E402
from mnistlab.nn.blas import thread_limits, threads_for  # noqa: E402

TRAIN_N, QUICK_N, BATCH, LR, SEED, PAUSE_S = 54_000, 6_000, 64, 0.01, 0, 0.5
TARGET_RATIO = 1.25


def best_seconds(f, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def scipy_warp(images, rng, aug):
    """The affine + elastic warp done by map_coordinates over one tall stack of bordered images."""
    from scipy.ndimage import map_coordinates
    out = np.empty(images.shape, np.float32)
    for start in range(0, len(images), 256):
        x = images[start:start + 256].reshape(-1, 28, 28).astype(np.float32) / 255
        n = len(x)
        m, o = affine_parameters(n, rng, aug.rotate, aug.zoom, aug.shear, aug.shift)
        f = elastic_fields(n, rng, aug.elastic_alpha, aug.elastic_sigma)
        rows, cols = np.mgrid[0:28, 0:28] - 13.5
        coords = m[:, :, 0, None, None] * rows + m[:, :, 1, None, None] * cols + (o + 14.5)[:, :, None, None] + f
        coords = np.clip(coords.transpose(1, 0, 2, 3), 0, 29)
        coords[0] += (np.arange(n) * 30)[:, None, None]
        padded = np.zeros((n, 30, 30), np.float32)
        padded[:, 1:-1, 1:-1] = x
        map_coordinates(padded.reshape(n * 30, 30), coords, output=out[start:start + n].reshape(n, 28, 28),
                        order=1, prefilter=False)
    return out


def throughput(images, repeats):
    aug = Augmentation()
    cases = [(name, aug.only(name)) for name in TRANSFORMS] + [("affine + elastic", aug.only(*GEOMETRIC))]
    results = {}
    for name, chosen in cases:
        rng = np.random.default_rng(SEED)
        chosen.apply(images[:256], rng)  # warm-up: imports, cached factors
        results[name] = len(images) / best_seconds(lambda: chosen.apply(images, rng), repeats)
        print(f"  {name:34s} {results[name]:10,.0f} images/s", flush=True)
    rng = np.random.default_rng(SEED)
    name = "affine + elastic, map_coordinates"
    results[name] = len(images) / best_seconds(lambda: scipy_warp(images, rng, aug), repeats)
    print(f"  {name:34s} {results[name]:10,.0f} images/s", flush=True)
    return results


def epoch_times(train_x, train_y, blocks, per_block, threads):
    network = Network.initialized([784, 800, 800, 10], "he", np.random.default_rng(SEED))
    optimizer = Sgd(0.9, True, 0.0)
    rng = np.random.default_rng(SEED)
    shuffled_x, shuffled_y = np.empty_like(train_x), np.empty_like(train_y)
    aug = Augmentation(GEOMETRIC)
    times = {"plain": [], "online": []}

    def epoch(images):
        order = rng.permutation(len(images))
        np.take(images, order, axis=0, out=shuffled_x, mode="clip")
        np.take(train_y, order, out=shuffled_y, mode="clip")
        network.train_epoch(shuffled_x, shuffled_y, BATCH, optimizer, LR, rng)

    threads = threads_for(network.largest_product(BATCH), threads)
    with thread_limits(threads), np.errstate(over="ignore", invalid="ignore"):
        network.train_epoch(train_x[:BATCH * 4], train_y[:BATCH * 4], BATCH, optimizer, LR, rng)  # warm-up
        for block in range(blocks):
            time.sleep(PAUSE_S)
            for _ in range(per_block):
                start = time.perf_counter()
                epoch(train_x)
                times["plain"].append(time.perf_counter() - start)
            time.sleep(PAUSE_S)
            with EpochImages(train_x, aug, seed=[SEED, block]) as online:
                epoch(online.epoch(0))  # untimed: made in this thread; the worker now makes epoch 1
                for e in range(1, per_block + 1):
                    start = time.perf_counter()
                    epoch(online.epoch(e))
                    times["online"].append(time.perf_counter() - start)
    return times, threads


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_N:,} images, one block of 2 epochs each")
    parser.add_argument("--repeats", type=int, default=3, help="blocks of epochs (and throughput passes)")
    parser.add_argument("--threads", type=int, default=None, help="most BLAS threads (default: every core)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    n = QUICK_N if args.quick else TRAIN_N
    ds = load_dataset(None)
    images, labels = ds.train_images[:n], ds.train_labels[:n].astype(np.intp)

    print(f"augmentation throughput, {n:,} uint8 images, best of {args.repeats}:")
    results = {"images": n, "throughput": throughput(images, 1 if args.quick else args.repeats)}

    blocks, per_block = (1, 2) if args.quick else (args.repeats, 3)
    print(f"epochs of 784-800-800-10 at batch {BATCH} on {n:,} images ({blocks} blocks of {per_block}):")
    times, threads = epoch_times(to_float(images), labels, blocks, per_block, args.threads)
    plain, online = statistics.median(times["plain"]), statistics.median(times["online"])
    ratio = online / plain
    verdict = "met" if ratio <= TARGET_RATIO else "missed"
    print(f"  without augmentation           {plain:7.3f} s  (median of {len(times['plain'])}, {threads} BLAS threads)")
    print(f"  online affine + elastic        {online:7.3f} s  (median of {len(times['online'])})")
    print(f"  ratio                          {ratio:7.2f}    (target <= {TARGET_RATIO}: {verdict})")
    results.update({"epoch_plain_s": plain, "epoch_online_s": online, "ratio": ratio, "threads": threads,
                    "epoch_times": times})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
