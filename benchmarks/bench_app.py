"""A drawing's time in the app: ``POST /api/predict`` called in-process through ASGI (no sockets, no
uvicorn), the model stubbed out, one thread: what the app itself costs a request (reading the body,
the MNIST-style preprocessing, the JSON answer, the framework). Given two source trees, they alternate
round by round, each in a process of its own, and the ratio new / old is printed.

Run:  python benchmarks/bench_app.py [OLD_TREE] NEW_TREE [--rounds 7] [--requests 400]
      (a tree: a checkout with src/; the default is this one. The 50 bodies are bench_draw's redrawn test
      digits as the page sends them)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CHILD = r"""
import asyncio, json, sys, time
sys.path[:0] = [sys.argv[1] + "/src", sys.argv[3]]
import numpy as np
from mnistlab.data import load_dataset
from mnistlab.web.app import create_app
import bench_draw
requests = int(sys.argv[2])
rng = np.random.default_rng(0)
bodies = [bench_draw.body_of(bench_draw.as_drawing(d, rng), "page")
          for d in load_dataset().test_images[:50].reshape(-1, 28, 28)]
from mnistlab.inference import weights_path
app = create_app(weights_path("pretrained"), "/nonexistent-runs")
async def stub(model, image28, p=np.full(10, 0.1)):
    return 0, p
app.state.batcher.predict = stub

async def post(body):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/predict", "raw_path": b"/api/predict", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("test", 80)}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    async def receive():
        return messages.pop() if messages else {"type": "http.disconnect"}
    async def send(message):
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message
    await app(scope, receive, send)

async def main():
    for k in range(100):
        await post(bodies[k % 50])
    start = time.perf_counter()
    for k in range(requests):
        await post(bodies[k % 50])
    return (time.perf_counter() - start) / requests
print(json.dumps(asyncio.run(main()) * 1e6))
"""


def measure(tree, requests):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(requests), str(HERE / "benchmarks")],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="*", default=[str(HERE)], help="one tree, or OLD NEW (default: this one)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=400, help="timed requests a round (default 400)")
    args = parser.parse_args()
    if len(args.trees) > 2:
        parser.error("give one tree, or two: OLD NEW")
    for tree in args.trees:
        if not (Path(tree) / "src" / "mnistlab").is_dir():
            parser.error(f"{tree}: no src/mnistlab there")
    times = {tree: [] for tree in args.trees}
    for r in range(args.rounds):
        for tree in args.trees:
            times[tree].append(measure(tree, args.requests))
        print(f"round {r + 1}: " + ", ".join(f"{times[t][-1]:.0f} us" for t in args.trees), flush=True)
    for tree in args.trees:
        print(f"{tree}: median {statistics.median(times[tree]):.0f} us a request in the app "
              f"({min(times[tree]):.0f}-{max(times[tree]):.0f})")
    if len(args.trees) == 2:
        old, new = (times[t] for t in args.trees)
        ratios = [n / o for o, n in zip(old, new)]
        print(f"new / old: {statistics.median(ratios):.3f} (median of {args.rounds} rounds; "
              f"{min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
