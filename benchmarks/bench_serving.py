"""What the drawing server's model costs an image: a network as trained against ``Network.folded()`` (each
conv -> batch norm pair one layer, what ``mnistlab draw`` serves), at the batch sizes the server's batcher
sees (web/batching.py), on one BLAS thread as each server worker runs.

Both sides alternate in one process, ``--rounds`` times; each round times ``--calls`` calls of ``logits``
per batch size and keeps the median. Prints the median over rounds in ms per image and the ratio
folded / as trained. The images are random binary 28x28 (the cost does not depend on them).

Run:  PYTHONPATH=src python3 benchmarks/bench_serving.py --weights W [--batches 1 4 8 16] [--rounds 6]
      (W: a model file or run folder of a CNN with batch norm; an MLP has nothing to fold: ratio 1)
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import numpy as np  # noqa: E402

from mnistlab.inference import load  # noqa: E402
from mnistlab.nn.blas import one_thread  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="a model file or run folder")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16], metavar="N")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    network = load(args.weights).network
    sides = {"as trained": network, "folded": network.folded()}
    x = (np.random.default_rng(0).random((max(args.batches), *network.input_shape)) > 0.8).astype(np.float32)
    times = {}
    with one_thread():
        for _ in range(args.rounds):
            for name, net in sides.items():
                for n in args.batches:
                    part = x[:n]
                    net.logits(part)
                    calls = []
                    for _ in range(args.calls):
                        start = time.perf_counter()
                        net.logits(part)
                        calls.append(time.perf_counter() - start)
                    times.setdefault((n, name), []).append(statistics.median(calls) * 1000 / n)
    print(f"{network.arch.text}: ms per image, one BLAS thread, median of {args.rounds} rounds of {args.calls} calls")
    for n in args.batches:
        plain, folded = (statistics.median(times[(n, name)]) for name in sides)
        print(f"batch {n:3d}: as trained {plain:.3f}  folded {folded:.3f}  ratio {folded / plain:.2f}")


if __name__ == "__main__":
    main()
