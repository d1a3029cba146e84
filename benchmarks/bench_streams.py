"""A CNN's training step as two streams (nn/streams.py) against one stream on two BLAS threads.

(1) One conv layer, 64 images, 32 -> 64 channels 3x3 on 26x26 (the examples net's second conv): its
im2col copy, forward product, ReLU and ReLU's backward, and weight gradient, timed three ways:
OpenBLAS on two threads with the NumPy work on one (one stream, as before streams.py); the NumPy work
split between two Python threads with OpenBLAS still on two threads (the first idea, see the README's
"tried and dropped"); and two streams, each half of the images on its own Python thread with OpenBLAS
on one thread, every product split by rows. Median of --repeats steps, milliseconds.

(2) Whole training epochs of the two CNNs of bench_train.py (random images, batch 64, plain SGD),
Network.train_epoch with streams off and on, alternating in one process: the median ratio of
back-to-back pairs (below 1: the streams are faster), and each side's median step.

Run:  PYTHONPATH=src python3 benchmarks/bench_streams.py [--repeats R] [--images N]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from mnistlab.arch import resolve  # noqa: E402
from mnistlab.nn import Network, Sgd  # noqa: E402
from mnistlab.nn.blas import Gemm, row_parts  # noqa: E402
from mnistlab.nn.conv2d import windows  # noqa: E402
from mnistlab.nn.streams import Streams  # noqa: E402

NETWORKS = {
    "cnn-examples": "conv32k3valid-conv64k3valid-pool2-drop0.25-fc128-drop0.5",
    "cnn-bn": "conv32k3valid-bn-conv32k3valid-bn-conv32k5s2same-bn-drop0.4-conv64k3valid-bn-conv64k3valid-bn-"
              "conv64k5s2same-bn-drop0.4-conv128k4valid-bn-drop0.4",
}


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def one_layer(repeats):
    batch, size, c, f, k = 64, 26, 32, 64, 3
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, c), dtype=np.float32)
    out = size - k + 1
    cols = np.ones((batch * out * out, k * k * c + 1), np.float32)
    cols_view = cols[:, :-1].reshape(batch, out, out, k, k, c)
    win = windows(x, k, 1, (out, out))
    P = rng.standard_normal((k * k * c + 1, f), dtype=np.float32) * 0.05
    z = np.empty((batch * out * out, f), np.float32)
    delta = rng.standard_normal(z.shape, dtype=np.float32)
    dP, mask = np.empty_like(P), np.empty(z.shape, bool)
    rows = out * out
    streams = Streams(threads=2)
    images = streams.parts(batch)
    forward_parts = row_parts(z, cols, P, [(a * rows, b * rows) for a, b in images])
    weight_parts = row_parts(dP, cols.T, delta, streams.parts(len(dP)))
    forward, weight = Gemm(z, cols, P), Gemm(dP, cols.T, delta)

    def im2col(part):
        first, end = images[part]
        np.copyto(cols_view[first:end], win[first:end])

    def relu(part):
        first, end = images[part][0] * rows, images[part][1] * rows
        np.maximum(z[first:end], 0, out=z[first:end])
        np.greater(z[first:end], 0, out=mask[first:end])
        np.multiply(delta[first:end], mask[first:end], out=delta[first:end])

    def one_stream():
        im2col(0), im2col(1)
        forward.product()
        relu(0), relu(1)
        weight.product()

    def numpy_split():
        streams.run(im2col)
        forward.product()
        streams.run(relu)
        weight.product()

    def two_streams():
        streams.run(lambda part: (im2col(part), forward_parts[part].product(), relu(part)))
        streams.run(lambda part: weight_parts[part].product())

    print(f"(1) one conv layer, {batch} images, {c} -> {f} channels {k}x{k} on {size}x{size}: im2col, product, "
          f"ReLU forward and backward, weight gradient; median of {repeats} steps")
    with threadpool_limits(2, user_api="blas"):
        print(f"    one stream, OpenBLAS on 2 threads                  {median_ms(one_stream, repeats):7.1f} ms")
        print(f"    NumPy work split in two, OpenBLAS on 2 threads     {median_ms(numpy_split, repeats):7.1f} ms")
    with threadpool_limits(1, user_api="blas"):
        print(f"    two streams, OpenBLAS on 1 thread                  {median_ms(two_streams, repeats):7.1f} ms")


def epochs(images, repeats):
    rng = np.random.default_rng(0)
    x = rng.random((images, 784), dtype=np.float32)
    labels = rng.integers(0, 10, images)
    print(f"(2) training epochs of {images} random images at batch 64, plain SGD, 2 BLAS threads; "
          f"streams off and on alternating, {repeats} pairs")
    for name, spec in NETWORKS.items():
        net = Network.build(resolve(spec, 784, 10), "he", np.random.default_rng(1))
        optimizer = Sgd(momentum=0.0, nesterov=False)
        times = {False: [], True: []}
        with threadpool_limits(2, user_api="blas"):
            for streams in times:  # warm-up: plans, and the streams' checks of their products
                net.train_epoch(x[:128], labels[:128], 64, optimizer, 0.01, rng, streams=streams)
            for _ in range(repeats):
                for streams in times:
                    time.sleep(0.3)  # idle BLAS threads stop spinning
                    t0 = time.perf_counter()
                    net.train_epoch(x, labels, 64, optimizer, 0.01, rng, streams=streams)
                    times[streams].append(time.perf_counter() - t0)
        steps = images // 64
        ratio = statistics.median(two / one for one, two in zip(times[False], times[True]))
        print(f"    {name:13s} one stream {statistics.median(times[False]) / steps * 1e3:6.1f} ms a step, two streams "
              f"{statistics.median(times[True]) / steps * 1e3:6.1f} ms: ratio {ratio:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="pairs of epochs (part 1: 6x as many steps)")
    parser.add_argument("--images", type=int, default=1280, help="images an epoch in part 2")
    args = parser.parse_args()
    one_layer(6 * args.repeats)
    epochs(args.images, args.repeats)


if __name__ == "__main__":
    main()
