"""Requests that arrive together are read by one forward pass.

A worker's event loop answers one request at a time. Under load, when several drawings are waiting, each used
to go through the model alone; a CNN then costs about 0.8 ms an image (batch 1, one core) where a batch of 8
costs about 0.55 ms an image, and the MLP's fixed cost per call is most of its time. ``Batcher.predict``
queues the image and, for the first image of a batch, schedules the pass with ``loop.call_soon``: every request
whose handler is already runnable in this turn of the loop (the requests read from the sockets together) queues
its image before the pass runs, and then all of them get their answers from it. A lone request waits for
nothing: its pass runs as soon as the loop has nothing else ready.

Only models whose pass costs more than the rest of a request are batched: at least ``MIN_MACS`` multiply-adds
an image (the CNNs: 12-15 M). An MLP's pass (1-2.4 M, about 0.1 ms) is cheaper than reading its request, and
batching it gave 0.93x the requests per second of answering each alone (median of 7 back-to-back pairs of
``bench_draw.py --only latency`` with the 1200-1200 MLP, 2 workers, 2-core VM), against 1.09-1.50x (4 pairs)
for the batch-norm CNN: the first request of a batch waits for the others to be read.

Under load a batch also waits a little for company: when the worker's previous pass ended less than ``BUSY``
seconds ago, the pass runs ``WAIT`` seconds after the batch's first request instead of at the end of the turn.
Passes then read more images each, at a lower cost an image (the BN CNN folded, one core, timed ad hoc: 0.89 ms
alone, 0.65 at 3, 0.58 at 8). With the shipped CNN, 20 clients and 2 workers (``bench_draw.py --only latency``,
16 back-to-back pairs without and with a 2 ms wait, on a VM whose p99 moves by 10 ms between runs): p99 1.7 ms
lower (median of the pairs' differences; lower in 12 of 16 pairs), requests per second 1.03x and 1.13x (medians
of two sets of 8). A small gain, kept because it costs a lone user nothing: after an idle worker, a drawing is
read at once.

Rows of a batch are independent (no batch norm statistics at inference, no dropout), so an image's answer does
not depend on its neighbours beyond float rounding of the products (a few units in the last place).
"""

import asyncio
from typing import NamedTuple

import numpy as np

MIN_MACS = 4_000_000
WAIT = 0.002  # seconds a batch waits for more requests when the worker is busy
BUSY = 0.010  # busy: its previous pass ended less than this long ago
# A bigger batch gains little per image (the CNN: 0.57 ms at 8, 0.56 at 16) and makes its first request wait.
MAX_BATCH = 16


class Pending(NamedTuple):
    """A batch being gathered for one model: its images with their answers' futures, and the timer
    (asyncio handle) that runs its pass."""
    model: object
    queue: list  # [(image (28, 28), future), ...]
    timer: asyncio.Handle


class Batcher:
    def __init__(self, max_batch=MAX_BATCH):
        self.max_batch = max_batch
        self.pending = {}  # id(model) -> Pending
        self.passes = 0  # forward passes run, and the images they read: for tests and benchmarks
        self.images = 0
        self.last_pass = float("-inf")  # loop.time() when the last pass ended

    async def predict(self, model, image28):
        """(digit, probabilities (10,)) for a (28, 28) uint8 image, read by ``model`` (an inference Model or
        Committee) together with the images queued in the same turn of the event loop (when the worker is
        busy, in the next ``WAIT`` seconds)."""
        key = id(model)
        if not self.batched(model):
            probabilities = model.predict_proba(image28.reshape(1, -1))[0]
            self.passes += 1
            self.images += 1
            return int(probabilities.argmax()), probabilities
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if key not in self.pending:
            busy = loop.time() - self.last_pass < BUSY
            timer = loop.call_later(WAIT, self._run, key) if busy else loop.call_soon(self._run, key)
            self.pending[key] = Pending(model, [], timer)
        queue = self.pending[key].queue
        queue.append((image28, future))
        if len(queue) >= self.max_batch:
            self._run(key)  # full: read now (its timer is cancelled)
        return await future

    def batched(self, model):
        """Whether ``model`` (a Model, or a Committee: the sum of its members) is worth batching."""
        members = getattr(model, "members", [model])
        return sum(member.network.arch.macs for member in members) >= MIN_MACS

    def _run(self, key):
        entry = self.pending.pop(key, None)
        if entry is None:
            return
        model, queue = entry.model, entry.queue
        entry.timer.cancel()  # when a full batch runs before its timer, the timer must not cut the next one short
        self.passes += 1
        self.images += len(queue)
        try:
            # flat rows (n, 784): a CNN's (1, 28, 28) would read as one image of its input shape, not a batch
            probabilities = model.predict_proba(np.stack([image.reshape(-1) for image, _ in queue]))
        except Exception as error:  # noqa: BLE001 - every waiting request gets it, as a lone one would
            for _, future in queue:
                if not future.done():
                    future.set_exception(error)
            return
        finally:
            self.last_pass = asyncio.get_running_loop().time()
        for (_, future), p in zip(queue, probabilities):
            if not future.done():  # a client that went away cancelled its request
                future.set_result((int(p.argmax()), p))
