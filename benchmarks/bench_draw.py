"""The draw-a-digit page: how well the MNIST-style preprocessing reads canvas drawings, and how fast the API answers.

(1) Robustness. Each MNIST test digit is re-rendered as a drawing on a 280x280 canvas, as a user
would draw it: enlarged 4x (bilinear), strokes thickened or thinned (grey dilation or erosion by up
to 2 px there, i.e. half an MNIST pixel), rotated by up to +-12 degrees, shrunk to a random size from
half to three times MNIST's (a 14 to 84 px frame, anti-aliased) and placed anywhere on the canvas;
seeded. Each model's accuracy is printed on the plain test set, on the test digits themselves
through the preprocessing (column "again": what it costs on MNIST's own images), on the drawings through
``mnistlab.data.drawing.mnist_like`` (the page's preprocessing; target: within 1.5 points of plain)
and on the drawings naively shrunk whole to 28x28 (anti-aliased), to show what the preprocessing buys.
With ``--validation`` each run folder's own validation images are redrawn instead, so recipes can be
compared on redrawn digits without the test set.

(2) Latency. ``mnistlab draw``'s app is served by uvicorn in a subprocess on 127.0.0.1, as
``mnistlab draw --workers N`` serves it (N = 1, then 2: one per core, the default here); 20 client
threads, each with one keep-alive connection, post 5,000 requests in all to POST /api/predict, each a
280x280 drawing as JSON: by default as the page sends it, the ink's box (its pixels > 0, at least 28 px
a side: ``drawing.ink_crop``) in the compact form ({"width", "height", "encoding": "deflate", "data":
base64 of the zlib-compressed bytes, one per pixel}, 1.3 kB on average); with ``--payload deflate`` the
whole canvas so (1.6 kB, as the page sent it before it cropped), with ``--payload compact`` the whole
canvas uncompressed (about 105 kB), with ``--payload pixels`` as {"pixels": [[...]]} (about 160 kB, slowest
to read). Prints the payload and its size, p50/p99/max latency, requests per
second and errors (target: p99 under 20 ms, no errors), then where the time went: the CPU a request took
in the server (its workers) and in the clients, how many cores were busy (and how much of them the hypervisor
gave to other guests: /proc/stat's steal time), and each client's median latency
(an uneven split of the connections between workers shows as two groups). Client and server
share this machine's cores; the clients turn Nagle's algorithm off on their connections, as browsers do.
``--stub-model`` answers without the model: what HTTP and the app cost alone (not a figure of the page).

Run:  PYTHONPATH=src python3 benchmarks/bench_draw.py [--weights W [W ...]] [--quick] [--only robustness|latency]
          [--validation]
          [--canvas SIDE] [--payload page|deflate|compact|pixels] [--workers N [N ...]] [--stub-model]
      (SIDE: the latency payload's canvas side, default 280; payload: default page, what the page sends;
      workers: server processes, one latency run each, default 1 2)
(W: a model file, a run folder or pretrained; A,B,C: their committee, for robustness. Default weights:
runs/default/model.safetensors, else the shipped model, else the newest run under runs/; --quick: 500
digits and 500 requests, to check the script works)
"""

import argparse
import base64
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mnistlab.data import load_dataset  # noqa: E402
from mnistlab.data.drawing import ink_crop, mnist_like, resize  # noqa: E402
from mnistlab.inference import committee_names, load, weights_path  # noqa: E402

CANVAS = 280


def as_drawing(digit, rng):
    """A (280, 280) canvas with ``digit`` (28, 28) redrawn: resized, thicker or thinner, rotated, anywhere."""
    big = np.clip(ndimage.zoom(digit.astype(np.float64), 4, order=1), 0, 255)  # (112, 112)
    radius = int(rng.integers(-2, 3))
    if radius:
        footprint = np.ones((2 * abs(radius) + 1,) * 2, bool)
        big = (ndimage.grey_dilation if radius > 0 else ndimage.grey_erosion)(big, footprint=footprint)
    big = np.clip(ndimage.rotate(big, rng.uniform(-12, 12), reshape=True, order=1), 0, 255)
    frame = rng.uniform(0.5, 3.0) * 28  # the 28 px MNIST frame becomes 14 to 84 px
    side = max(2, round(big.shape[0] * frame / 112))
    small = np.clip(resize(big, (side, side)), 0, 255)
    canvas = np.zeros((CANVAS, CANVAS))
    top, left = rng.integers(0, CANVAS - side + 1, size=2)
    canvas[top:top + side, left:left + side] = small
    return canvas


def robustness(weights, count, seed=0, validation=False):
    """Print each model's accuracy on plain, re-preprocessed, redrawn and naively shrunk digits: the first ``count``
    test digits, or with ``validation`` the first ``count`` of each run folder's own validation images (the split
    its config.toml makes), so that recipes can be compared on redrawn digits without looking at the test set."""
    if validation:
        for path in weights:
            if not (Path(path) / "config.toml").is_file():
                raise SystemExit(f"bench_draw: --validation: {path} is not a run folder (no config.toml)")
    data = None if validation else load_dataset()
    print(f"{'model':<48} {'plain %':>8} {'again %':>8} {'drawn %':>8} {'drop':>6} {'naive %':>8}  target drop <= 1.5")
    shown = None
    for path in weights:
        if validation:
            from mnistlab.build import load_data
            from mnistlab.config import load_toml
            split = load_data(load_toml(Path(path) / "config.toml"))
            images = np.rint(split.val_x[:count].reshape(-1, 28, 28) * 255).astype(np.uint8)
            labels = split.val_y[:count]
            what = f"validation images of {path}"
        else:
            images, labels = data.test_images[:count].reshape(-1, 28, 28), data.test_labels[:count]
            what = "MNIST test digits"
        if shown != what or validation:
            drawn, again, naive, blank, took = redrawn(images, seed)
            print(f"robustness: {len(images)} {what} redrawn on a {CANVAS}x{CANVAS} canvas "
                  f"({took:.1f} s to draw and preprocess; {blank} blank)")
            shown = what
        names = committee_names(str(path))  # a model file, a run folder, pretrained; A,B,C: their committee
        model = load(names[0] if len(names) == 1 else names)
        n = len(images)
        accuracy = {name: 100 * float(np.mean(model.predict(x.reshape(n, 784).astype(np.float32) / 255) == labels))
                    for name, x in (("plain", images), ("again", again), ("drawn", drawn), ("naive", naive))}
        drop = accuracy["plain"] - accuracy["drawn"]
        print(f"{str(path):<48} {accuracy['plain']:8.2f} {accuracy['again']:8.2f} {accuracy['drawn']:8.2f} {drop:6.2f} {accuracy['naive']:8.2f}"
              f"  {'met' if drop <= 1.5 else 'missed'}")


def redrawn(images, seed):
    """(drawn, again, naive) 28x28 versions of ``images`` (n, 28, 28) uint8, the number of blank drawings, and
    the seconds it took."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    drawings = [as_drawing(d, rng) for d in images]
    prepared = [mnist_like(c) for c in drawings]
    drawn = np.array([np.zeros((28, 28), np.uint8) if p is None else p for p in prepared])
    naive = np.array([np.clip(resize(c, (28, 28)), 0, 255) for c in drawings])
    again = np.array([mnist_like(d) for d in images])  # none is blank
    return drawn, again, naive, sum(p is None for p in prepared), time.perf_counter() - t0


SERVER = """
import sys
import numpy as np
from mnistlab.web.app import create_app
from mnistlab.web.server import bind_workers, serve
app = create_app(sys.argv[1], sys.argv[2])
if sys.argv[4] == "stub":  # every answer without the model: what the HTTP stack and the app cost alone
    async def stub(model, image28, p=np.full(10, 0.1)):
        return 0, p
    app.state.batcher.predict = stub
serve(app, bind_workers("127.0.0.1", 0, int(sys.argv[3])), on_ready=lambda url: print(url, flush=True))
"""


def steal_seconds():
    """CPU seconds the hypervisor gave to other guests, all cores (/proc/stat's steal column)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def cpu_seconds(pid):
    """User + system CPU seconds of process ``pid`` and of its children still running (the workers)."""
    total, tick = 0, os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command's name, which may hold spaces
        except OSError:  # ended meanwhile
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


PAYLOADS = ("page", "deflate", "compact", "pixels")


def body_of(canvas, payload):
    """The JSON body of ``canvas`` (h, w) 0..255 as POST /api/predict takes it, in the ``payload`` form."""
    ink = np.rint(canvas).astype(np.uint8)
    if payload == "page":
        ink, payload = ink_crop(ink), "deflate"
    if payload in ("deflate", "compact"):
        raw = zlib.compress(ink.tobytes()) if payload == "deflate" else ink.tobytes()
        data = {"width": ink.shape[1], "height": ink.shape[0], "data": base64.b64encode(raw).decode()}
        if payload == "deflate":
            data["encoding"] = "deflate"
    else:
        data = {"pixels": ink.tolist()}
    return json.dumps(data, separators=(",", ":")).encode()


class Connection:
    """One keep-alive HTTP/1.1 connection with Nagle's algorithm off, as browsers open them, that posts
    ready-made requests and reads the answers with the least work in Python: the clients share the
    machine with the server, so every microsecond they spend is taken from what is measured."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    @staticmethod
    def request(host, path, body):
        return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def post(self, request):
        """Send ``request``; the answer's (status, body)."""
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]
        return int(head[9:12]), rest[:length]

    def _recv(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def close(self):
        self.sock.close()


def latency(weights, total, clients=20, side=CANVAS, payload="page", workers=1, seed=0, stub=False):
    data = load_dataset()
    rng = np.random.default_rng(seed)
    canvases = [as_drawing(d, rng) for d in data.test_images[:50].reshape(-1, 28, 28)]
    canvases = [c if side == CANVAS else np.clip(resize(c, (side, side)), 0, 255) for c in canvases]
    bodies = [body_of(c, payload) for c in canvases]
    runs_dir = Path(weights).resolve().parent.parent
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(weights), str(runs_dir), str(workers),
                               "stub" if stub else "model"], stdout=subprocess.PIPE,
                              text=True, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    try:
        url = server.stdout.readline().strip()
        host, port = url.split("//")[1].rstrip("/").split(":")
        times, errors, lock, medians = [], [], threading.Lock(), []
        per_client = [total // clients + (i < total % clients) for i in range(clients)]
        requests = [Connection.request(host, "/api/predict", body) for body in bodies]

        def client(index, n):
            connection = Connection(host, int(port))
            mine = []
            for k in range(n + 3):  # 3 warm-up requests per client, not counted
                request = requests[(index * 7 + k) % len(requests)]
                start = time.perf_counter()
                try:
                    status, answer = connection.post(request)
                    ok = status == 200 and (k >= 3 or len(json.loads(answer)["probabilities"]) == 10)
                except OSError as e:
                    ok, status = False, e
                    connection.close()
                    connection = Connection(host, int(port))
                elapsed = time.perf_counter() - start
                if k >= 3:
                    mine.append(elapsed)
                    if not ok:
                        with lock:
                            errors.append(status)
            connection.close()
            with lock:
                times.extend(mine)
                medians.append(statistics.median(mine) * 1000 if mine else float("nan"))

        threads = [threading.Thread(target=client, args=(i, n)) for i, n in enumerate(per_client)]
        cpu0, server0, steal0, t0 = time.process_time(), cpu_seconds(server.pid), steal_seconds(), time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        client_cpu, server_cpu = time.process_time() - cpu0, cpu_seconds(server.pid) - server0
        steal = steal_seconds() - steal0
    finally:
        server.terminate()
        server.wait(timeout=10)
    ms = np.array(times) * 1000
    p50, p99 = np.percentile(ms, [50, 99])
    print(f"latency: POST /api/predict, {len(ms)} requests of a {side}x{side} canvas as JSON, payload {payload} "
          f"({statistics.mean(map(len, bodies)) / 1000:.1f} kB), {clients} concurrent clients, "
          f"{workers} server worker{'s' if workers > 1 else ''}, {weights}")
    print(f"p50 {p50:.1f} ms  p99 {p99:.1f} ms  max {ms.max():.1f} ms  {len(ms) / wall:.0f} requests/s  "
          f"errors {len(errors)}  target p99 < 20 ms, no errors: {'met' if p99 < 20 and not errors else 'missed'}"
          + ("  (model stubbed out: not a figure of the page)" if stub else ""))
    # Where the time went: CPU a request on each side (client and server share the cores), and each client's
    # median, sorted: an uneven split of the connections between workers shows as two groups.
    print(f"CPU a request: server {server_cpu / len(ms) * 1000:.2f} ms, clients {client_cpu / len(ms) * 1000:.2f} ms; "
          f"cores busy {(server_cpu + client_cpu) / wall:.2f} of {os.cpu_count()}, stolen by the host "
          f"{steal / wall:.2f}; each client's median ms: "
          + " ".join(f"{m:.1f}" for m in sorted(medians)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", nargs="+",
                        help="model files, run folders or pretrained; A,B,C: a committee, robustness only "
                             "(default: the model mnistlab draw would serve)")
    parser.add_argument("--quick", action="store_true", help="500 digits and 500 requests: checks the script works")
    parser.add_argument("--only", choices=["robustness", "latency"])
    parser.add_argument("--validation", action="store_true",
                        help="robustness: redraw each run folder's own validation images instead of the test digits "
                             "(to compare recipes without the test set)")
    parser.add_argument("--canvas", type=int, default=CANVAS, metavar="SIDE",
                        help=f"latency: side of the canvas posted (default {CANVAS}, the page's; 28 to 1024)")
    parser.add_argument("--payload", choices=PAYLOADS, default="page",
                        help='latency: the JSON form posted (default page: the ink\'s box, at least 28 px a side, as '
                             '{"width", "height", "encoding": "deflate", "data"}, as the page sends; deflate: the '
                             'whole canvas so; compact: the whole canvas, not compressed; pixels: {"pixels": [[...]]})')
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], metavar="N",
                        help="latency: server worker processes, one run each (default: 1 2)")
    parser.add_argument("--stub-model", action="store_true",
                        help="latency: the server answers without running the model (what HTTP and the app cost alone)")
    args = parser.parse_args()
    if args.weights:
        weights = args.weights
    else:
        from mnistlab.web.models import find_default_weights
        weights = [find_default_weights("runs")]
    if args.only != "latency":
        robustness(weights, 500 if args.quick else 10_000, validation=args.validation)
    if args.only != "robustness":
        for workers in args.workers:
            latency(weights_path(str(weights[0])), 500 if args.quick else 5_000, side=args.canvas, payload=args.payload,
                    workers=workers, stub=args.stub_model)


if __name__ == "__main__":
    main()
