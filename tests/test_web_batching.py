"""The drawing server reads requests that arrive together in one forward pass (web/batching.py): the batcher on
its own with a counting model, and the app under concurrent requests through an ASGI client in one event loop."""

import asyncio
import base64
import json
import zlib
from concurrent.futures import ThreadPoolExecutor

from types import SimpleNamespace

import numpy as np
import pytest

import mnistlab
from mnistlab.web.app import create_app
from mnistlab.web import batching
from mnistlab.web.batching import Batcher


class Counting:
    """A model whose probabilities are a function of each image alone; it records the batches it read."""

    def __init__(self, fail=False, macs=15_000_000):
        self.batches, self.fail = [], fail
        self.network = SimpleNamespace(arch=SimpleNamespace(macs=macs))

    def predict_proba(self, images):
        self.batches.append(len(images))
        if self.fail:
            raise RuntimeError("model broke")
        p = np.zeros((len(images), 10))
        p[np.arange(len(images)), images.reshape(len(images), -1).sum(axis=1) % 10] = 1.0
        return p


def image(k):
    a = np.zeros((28, 28), np.uint8)
    a[0, 0] = k
    return a


def run(make_coroutine):
    """asyncio.run in a thread of its own: after the browser tests (Playwright's sync API) this thread may
    already have a running event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()


def gather(batcher, calls):
    async def go():
        return await asyncio.gather(*(batcher.predict(model, img) for model, img in calls), return_exceptions=True)

    return run(go)


def test_requests_of_one_turn_are_one_pass_and_each_gets_its_own_answer():
    model, batcher = Counting(), Batcher()
    answers = gather(batcher, [(model, image(k)) for k in range(7)])
    assert model.batches == [7]
    assert [digit for digit, _ in answers] == list(range(7))
    assert (batcher.passes, batcher.images) == (1, 7)


def test_a_full_batch_is_read_at_once_and_the_rest_after():
    model, batcher = Counting(), Batcher(max_batch=3)
    answers = gather(batcher, [(model, image(k)) for k in range(8)])
    assert model.batches == [3, 3, 2]
    assert [digit for digit, _ in answers] == list(range(8))


def test_each_model_reads_its_own_images():
    a, b, batcher = Counting(), Counting(), Batcher()
    answers = gather(batcher, [(a, image(1)), (b, image(2)), (a, image(3)), (b, image(4))])
    assert (a.batches, b.batches) == ([2], [2])
    assert [digit for digit, _ in answers] == [1, 2, 3, 4]


def test_a_failing_pass_fails_every_request_in_it_and_the_next_pass_is_fresh():
    broken, batcher = Counting(fail=True), Batcher()
    answers = gather(batcher, [(broken, image(k)) for k in range(3)])
    assert all(isinstance(a, RuntimeError) for a in answers)
    working = Counting()
    assert gather(batcher, [(working, image(5))])[0][0] == 5


def test_a_lone_request_is_answered_alone():
    model, batcher = Counting(), Batcher()
    for k in range(3):
        assert gather(batcher, [(model, image(k))])[0][0] == k
    assert model.batches == [1, 1, 1]


def test_a_busy_worker_waits_for_company_and_an_idle_one_reads_at_once(monkeypatch):
    """Right after a pass (busy), a request waits WAIT for others; after BUSY without a pass, it is read at
    once, and the one after it is a batch of its own."""
    monkeypatch.setattr(batching, "WAIT", 0.1)
    monkeypatch.setattr(batching, "BUSY", 0.3)
    model, batcher = Counting(), Batcher()

    async def later(delay, k):
        await asyncio.sleep(delay)
        return await batcher.predict(model, image(k))

    async def go():
        await batcher.predict(model, image(0))  # idle at first: at once
        busy = await asyncio.gather(later(0, 1), later(0.05, 2))  # within WAIT of each other: one pass
        await asyncio.sleep(0.4)  # idle again
        idle = await asyncio.gather(later(0, 3), later(0.05, 4))
        return busy + idle

    answers = run(go)
    assert [digit for digit, _ in answers] == [1, 2, 3, 4]
    assert model.batches == [1, 2, 1, 1]


def test_a_full_batch_cancels_its_wait_so_the_next_batch_waits_its_own(monkeypatch):
    monkeypatch.setattr(batching, "WAIT", 0.2)
    monkeypatch.setattr(batching, "BUSY", 10.0)
    model, batcher = Counting(), Batcher(max_batch=2)

    async def later(delay, k):
        await asyncio.sleep(delay)
        return await batcher.predict(model, image(k))

    async def go():
        await batcher.predict(model, image(9))  # a first pass: busy from here on
        # 1 and 2 fill a batch at once; 3 comes at 0.1 s, 4 at 0.25 s: the full batch's timer (0.2 s) must not
        # read 3 alone, 3's own timer (0.3 s) reads 3 and 4 together
        return await asyncio.gather(later(0, 1), later(0, 2), later(0.1, 3), later(0.25, 4))

    answers = run(go)
    assert [digit for digit, _ in answers] == [1, 2, 3, 4]
    assert model.batches == [1, 2, 2]


def test_a_cheap_model_is_answered_at_once_each_image_alone():
    cheap, batcher = Counting(macs=1_000_000), Batcher()
    answers = gather(batcher, [(cheap, image(k)) for k in range(4)])
    assert cheap.batches == [1, 1, 1, 1]
    assert [digit for digit, _ in answers] == [0, 1, 2, 3]


def body(canvas):
    raw = zlib.compress(canvas.tobytes())
    return json.dumps({"width": canvas.shape[1], "height": canvas.shape[0], "data": base64.b64encode(raw).decode(),
                       "encoding": "deflate"}).encode()


async def post(app, path, data):
    """POST ``data`` as JSON straight to the ASGI app, as a server would: (status, decoded JSON body)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
             "client": ("127.0.0.1", 1), "server": ("test", 80)}
    messages = [{"type": "http.request", "body": data, "more_body": False}]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


@pytest.mark.parametrize("which", ["trained", "trained_cnn"])
@pytest.mark.parametrize("count,batched", [(1, True), (12, True), (12, False)])
def test_concurrent_requests_share_passes_and_answer_as_alone(which, count, batched, request, monkeypatch):
    """Drawings posted at once: fewer passes than requests, and every answer is the model's own for that image
    read alone (the same digit, probabilities within float32 rounding). One alone: a batch of one (for a CNN, a
    (1, 28, 28) stack must not read as one image of its input shape)."""
    weights = request.getfixturevalue(which) / "model.safetensors"
    if batched:
        monkeypatch.setattr(batching, "MIN_MACS", 0)
    app = create_app(weights, runs_dir=weights.parent / "no-runs", pretrained=weights.parent / "none.safetensors")
    rng = np.random.default_rng(0)
    canvases = []
    for _ in range(count):
        canvas = np.zeros((280, 280), np.uint8)
        top, left = rng.integers(40, 120, 2)
        canvas[top:top + rng.integers(60, 140), left:left + rng.integers(10, 100)] = 255
        canvases.append(canvas)

    async def post_all():
        return await asyncio.gather(*(post(app, "/api/predict", body(c)) for c in canvases))

    responses = run(post_all)
    assert [status for status, _ in responses] == [200] * count, responses
    batcher = app.state.batcher
    assert batcher.images == count
    if batched:
        assert batcher.passes < count if count > 1 else batcher.passes == 1
    else:  # the test's models are cheap: each image alone
        assert batcher.passes == count
    model = mnistlab.load(weights)
    for _, got in responses:
        seen = np.array(got["input28"], np.uint8)
        alone = model.predict_proba(seen)
        assert got["digit"] == int(alone.argmax())
        np.testing.assert_allclose(got["probabilities"], alone, rtol=1e-4, atol=1e-6)
