"""The draw-a-digit web app: its API through FastAPI's TestClient, `mnistlab draw` as a process, and
the page itself in a real browser (Debian's Chromium driven by Playwright), with real mouse and touch strokes.

The model is a real one: 784-128-10 trained for 3 epochs on the full bundled MNIST (about 97% test
accuracy, a few seconds), so the page's predictions can be checked against the digit drawn.
"""

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from conftest import ONE, SEVEN, SRC, ZERO, assert_one_line_error, draw_with_mouse, serve_in_thread

from mnistlab.data import load_dataset
from mnistlab.data.drawing import ink_crop

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from mnistlab.web.app import MAX_BODY_BYTES, create_app  # noqa: E402


@pytest.fixture(scope="session")
def runs(tmp_path_factory, trained):
    """A runs folder: default/ (784-128-10, 3 epochs on full MNIST) and tiny/ (a 16-unit model)."""
    from mnistlab.cli import main

    folder = tmp_path_factory.mktemp("web") / "runs"
    assert main(["train", "--hidden", "128", "--epochs", "3", "--augment", "none", "--no-progress",
                 "--out", str(folder / "default")]) == 0
    (folder / "tiny").mkdir()
    shutil.copy(trained / "model.safetensors", folder / "tiny" / "model.safetensors")
    return folder


@pytest.fixture(scope="session")
def client(runs):
    # no shipped model here, whether or not this installation has one (its tests use `shipped`)
    return TestClient(create_app(runs / "default" / "model.safetensors", runs, pretrained=runs / "none.safetensors"))


@pytest.fixture(scope="module")
def mnist_test():
    data = load_dataset()
    return data.test_images.reshape(-1, 28, 28), data.test_labels


def canvas_with(digit, scale=6.0, top=10, left=100, side=280):
    """An MNIST digit drawn large and off-centre on a blank canvas, as rows of ints 0..255."""
    big = np.clip(ndimage.zoom(digit.astype(float), scale, order=1), 0, 255).astype(int)
    canvas = np.zeros((side, side), int)
    h, w = min(big.shape[0], side - top), min(big.shape[1], side - left)
    canvas[top:top + h, left:left + w] = big[:h, :w]
    return canvas


def post_pixels(client, pixels, model=None):
    params = {"model": model} if model else None
    return client.post("/api/predict", params=params, json={"pixels": np.asarray(pixels).tolist()})


def compact_body(canvas):
    """The compact JSON form of ``canvas`` (h, w) 0..255: {"width", "height", "data": base64 of one byte a pixel}."""
    ink = np.asarray(canvas).astype(np.uint8)
    return {"width": ink.shape[1], "height": ink.shape[0], "data": base64.b64encode(ink.tobytes()).decode()}


def deflated_canvas(canvas):
    return base64.b64encode(zlib.compress(np.asarray(canvas, np.uint8).tobytes())).decode()


def post_compact(client, canvas, model=None):
    params = {"model": model} if model else None
    return client.post("/api/predict", params=params, json=compact_body(canvas))


# --- the API ----------------------------------------------------------------------------------------

def test_the_served_model_is_described_with_its_architecture_and_test_accuracy(client):
    info = client.get("/api/model").json()
    assert info["name"] == "default/model.safetensors" and info["default"] is True
    assert info["sizes"] == [784, 128, 10] and info["arch"] == "fc128" and info["activation"] == "relu"
    assert info["parameters"] == 785 * 128 + 129 * 10
    assert 0.95 < info["test_accuracy"] <= 1


def test_every_model_under_runs_is_listed_default_first(client):
    listing = client.get("/api/models").json()
    assert [m["name"] for m in listing] == ["default/model.safetensors", "tiny/model.safetensors"]
    assert [m["sizes"] for m in listing] == [[784, 128, 10], [784, 16, 10]]
    assert [m["default"] for m in listing] == [True, False]


def test_api_answers_name_models_and_data_without_any_server_path(client, runs, mnist_test, trained, tiny):
    digits, _ = mnist_test
    answers = [client.get("/api/model"), client.get("/api/models"), post_compact(client, canvas_with(digits[0]))]
    for answer in answers:
        assert answer.status_code == 200 and str(runs.parent) not in answer.text and '"/' not in answer.text
    assert answers[0].json()["data"] == "bundled MNIST"
    assert answers[2].json()["model"] == "default/model.safetensors"
    outside = TestClient(create_app(trained / "model.safetensors", runs))  # --weights outside the runs folder
    info = outside.get("/api/model").json()
    assert info["name"] == "run/model.safetensors" and info["data"] == f"{tiny.train_csv.name} + {tiny.test_csv.name}"
    assert str(trained) not in outside.get("/api/models").text


@pytest.mark.parametrize("source, shown", [
    ("bundled MNIST (/srv/mnistlab/data/mnist)", "bundled MNIST"),
    ("/srv/d/fashion", "fashion"),
    ("/srv/a/train.csv + /srv/a/test.csv", "train.csv + test.csv"),
    ("bundled MNIST (/srv/data/mnist) + test /srv/t.csv", "bundled MNIST + test t.csv"),
    (None, None)])
def test_data_descriptions_keep_file_names_and_drop_folders(source, shown):
    from mnistlab.web.models import data_description

    assert data_description(source) == shown


def test_off_centre_enlarged_mnist_digits_are_read_correctly(client, mnist_test):
    images, labels = mnist_test
    correct = 0
    for i in range(40):
        answer = post_pixels(client, canvas_with(images[i], scale=4 + i % 4, top=5 + 3 * i, left=150 - 3 * i)).json()
        correct += answer["digit"] == labels[i]
        assert len(answer["probabilities"]) == 10 and sum(answer["probabilities"]) == pytest.approx(1, abs=1e-6)
        assert np.asarray(answer["input28"]).shape == (28, 28)
        assert answer["model"] == "default/model.safetensors"
    assert correct >= 37


def test_an_empty_canvas_is_answered_nothing_drawn_with_no_guess(client):
    answer = post_pixels(client, np.zeros((280, 280), int))
    assert answer.status_code == 200
    assert answer.json()["digit"] is None
    assert answer.json()["probabilities"] == [0.0] * 10
    assert np.asarray(answer.json()["input28"]).max() == 0


def test_a_model_under_runs_is_chosen_by_name(client, mnist_test):
    images, _ = mnist_test
    assert client.get("/api/model", params={"model": "tiny/model.safetensors"}).json()["sizes"] == [784, 16, 10]
    answer = post_pixels(client, canvas_with(images[0]), model="tiny/model.safetensors").json()
    assert answer["model"] == "tiny/model.safetensors"


@pytest.mark.parametrize("name", ["../outside.safetensors", "/etc/passwd", "tiny/../../outside.safetensors",
                                  "tiny", "tiny/history.csv", "nope/model.safetensors", "..\\outside.safetensors"])
def test_a_model_name_outside_the_runs_folder_or_unknown_is_404(client, runs, name):
    # A real model file next to the runs folder: reachable by "..", so it must be refused.
    shutil.copy(runs / "tiny" / "model.safetensors", runs.parent / "outside.safetensors")
    for answer in (client.get("/api/model", params={"model": name}),
                   client.post("/api/predict", params={"model": name}, json={"pixels": [[0] * 28] * 28})):
        assert answer.status_code == 404
        assert "model" in answer.json()["detail"]


def test_a_file_under_runs_that_is_not_a_model_is_a_422_and_is_not_listed(client, runs):
    (runs / "broken").mkdir(exist_ok=True)
    (runs / "broken" / "model.safetensors").write_bytes(b"garbage")
    answer = client.get("/api/model", params={"model": "broken/model.safetensors"})
    assert answer.status_code == 422 and "not a readable safetensors file" in answer.json()["detail"]
    assert "broken/model.safetensors" not in [m["name"] for m in client.get("/api/models").json()]
    shutil.rmtree(runs / "broken")


BAD_JSON = [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"image": [[0]]}', "expected a JSON object"),
    (b'{"pixels": 7}', "list of rows"),
    (b'{"pixels": []}', "list of rows"),
    (b'{"pixels": [[0, 0], [0]]}', "same length"),
    (json.dumps({"pixels": [["a"] * 28] * 28}).encode(), "only numbers"),
    (json.dumps({"pixels": [[None] * 28] * 28}).encode(), "only numbers"),
    (json.dumps({"pixels": [[True] * 28] * 28}).encode(), "only numbers"),
    (json.dumps({"pixels": [[[0]] * 28] * 28}).encode(), "only numbers"),
    (json.dumps({"pixels": [[0] * 27] * 28}).encode(), "28x27 canvas; each side must be 28 to 1024"),
    (json.dumps({"pixels": [[0] * 1025] * 28}).encode(), "28x1025"),
    (json.dumps({"pixels": [[256] * 28] * 28}).encode(), "0 (background) to 255 (ink)"),
    (json.dumps({"pixels": [[-1] * 28] * 28}).encode(), "0 (background) to 255 (ink)"),
    (json.dumps({"pixels": [[10 ** 40] * 28] * 28}).encode(), "only numbers"),
    (b'{"pixels": [[1e999]]}', "1x1 canvas"),
    (b"[" * 100_000, "not valid JSON"),
]


@pytest.mark.parametrize("body, message", BAD_JSON)
def test_bad_pixels_get_a_422_with_a_message_and_the_server_goes_on(client, mnist_test, body, message):
    answer = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert message in answer.json()["detail"]
    assert post_pixels(client, canvas_with(mnist_test[0][0])).json()["digit"] == mnist_test[1][0]


def test_a_canvas_sent_compact_gets_the_same_answer_as_sent_as_pixels(client, mnist_test):
    images, _ = mnist_test
    canvases = [canvas_with(images[i], scale=3 + i, top=10 + 20 * i, left=150 - 30 * i) for i in range(4)]
    canvases += [canvas_with(images[5], scale=2, top=3, left=20, side=100)[:, :60],  # 100 rows, 60 columns
                 np.zeros((28, 28), int), np.full((1024, 28), 255)]
    for canvas in canvases:
        by_pixels, by_compact = post_pixels(client, canvas), post_compact(client, canvas)
        assert by_pixels.status_code == by_compact.status_code == 200
        assert by_compact.json() == by_pixels.json()
        deflate = compact_body(canvas) | {"encoding": "deflate"}
        deflate["data"] = deflated_canvas(canvas)
        by_deflate = client.post("/api/predict", json=deflate)
        assert by_deflate.status_code == 200 and by_deflate.json() == by_pixels.json()
        assert client.post("/api/predict", json=compact_body(canvas) | {"encoding": "raw"}).json() == by_pixels.json()
    answer = post_compact(client, canvases[0], model="tiny/model.safetensors").json()
    assert answer == post_pixels(client, canvases[0], model="tiny/model.safetensors").json()
    assert answer["model"] == "tiny/model.safetensors"


def b64(n, value=0):
    return base64.b64encode(bytes([value]) * n).decode()


def deflated(n, value=0, cut=0):
    """The base64 of n bytes of ``value``, zlib-compressed, less the last ``cut`` bytes of the stream."""
    stream = zlib.compress(bytes([value]) * n)
    return base64.b64encode(stream[:len(stream) - cut]).decode()


BAD_COMPACT = [
    ({"width": 28, "height": 28}, "missing: data"),
    ({"data": b64(784)}, "missing: width, height"),
    ({"width": 28, "height": 28, "data": b64(784), "depth": 1}, "unexpected: 'depth'"),
    ({"width": 28, "height": 28, "data": b64(784), "pixels2": []}, "the fields width, height, data and, optionally"),
    ({"width": 28, "height": 28, "data": b64(784), "encoding": "gzip"}, "encoding: expected one of 'raw', 'deflate'"),
    ({"width": 28, "height": 28, "data": b64(784), "encoding": None}, "encoding: expected one of"),
    ({"width": 28, "height": 28, "data": b64(784), "encoding": "deflate"}, "data: not a zlib (deflate) stream"),
    ({"width": 28, "height": 28, "data": deflated(783), "encoding": "deflate"}, "data: 783 bytes for a 28x28"),
    ({"width": 28, "height": 28, "data": deflated(784)[:13], "encoding": "deflate"}, "data: not valid base64"),
    ({"width": 28, "height": 28, "data": deflated(784, cut=4), "encoding": "deflate"}, "stream is cut short"),
    ({"width": 28, "height": 28, "data": deflated(10 ** 7), "encoding": "deflate"}, "data: 785 bytes"),  # a bomb
    ({"width": "28", "height": 28, "data": b64(784)}, "width: expected an integer from 28 to 1024"),
    ({"width": 28.0, "height": 28, "data": b64(784)}, "width: expected an integer"),
    ({"width": True, "height": 28, "data": b64(784)}, "width: expected an integer"),
    ({"width": None, "height": 28, "data": b64(784)}, "width: expected an integer"),
    ({"width": 28, "height": [28], "data": b64(784)}, "height: expected an integer"),
    ({"width": 27, "height": 28, "data": b64(756)}, "width: 27 pixels; each side must be 28 to 1024"),
    ({"width": 28, "height": 1025, "data": b64(28 * 1025)}, "height: 1025 pixels"),
    ({"width": 28, "height": -28, "data": b64(784)}, "height: -28 pixels"),
    ({"width": 28, "height": 10 ** 30, "data": b64(784)}, "each side must be 28 to 1024"),
    ({"width": 28, "height": 28, "data": None}, "data: expected a base64 string"),
    ({"width": 28, "height": 28, "data": [0] * 784}, "data: expected a base64 string"),
    ({"width": 28, "height": 28, "data": "!" * 1048}, "data: not valid base64"),
    ({"width": 28, "height": 28, "data": b64(784)[:-1]}, "data: not valid base64"),  # padding cut
    ({"width": 28, "height": 28, "data": b64(784).replace("A", "é", 1)}, "data: not valid base64"),
    ({"width": 28, "height": 28, "data": b64(784) + "\n"}, "data: not valid base64"),
    ({"width": 28, "height": 28, "data": "=" + b64(784)}, "data: not valid base64"),
    ({"width": 28, "height": 28, "data": base64.urlsafe_b64encode(bytes(range(256)) * 4)[:1044].decode()},
     "data: not valid base64"),
    ({"width": 28, "height": 28, "data": b64(783)}, "data: 783 bytes for a 28x28 canvas; expected width*height = 784"),
    ({"width": 28, "height": 28, "data": b64(785)}, "data: 785 bytes"),
    ({"width": 28, "height": 28, "data": ""}, "data: 0 bytes"),
    ({"width": 40, "height": 28, "data": b64(28 * 28)}, "for a 40x28 canvas"),
]


@pytest.mark.parametrize("body, message", BAD_COMPACT)
def test_a_bad_compact_canvas_gets_a_422_with_a_message_and_the_server_goes_on(client, mnist_test, body, message):
    answer = client.post("/api/predict", json=body)
    assert answer.status_code == 422
    assert message in answer.json()["detail"]
    assert post_compact(client, canvas_with(mnist_test[0][0])).json()["digit"] == mnist_test[1][0]


SIDES = st.integers(20, 40) | st.integers() | st.floats() | st.booleans() | st.none() | st.text(max_size=4) | st.lists(st.integers(), max_size=2)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=SIDES, height=SIDES,
       data=st.binary(max_size=1700).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=60)
       | st.integers() | st.none() | st.lists(st.integers(0, 255), max_size=5),
       extra=st.dictionaries(st.sampled_from(["width", "height", "data", "x", "pixels", ""]), st.integers(), max_size=2),
       drop=st.sets(st.sampled_from(["width", "height", "data"]), max_size=3))
def test_no_compact_canvas_whatsoever_makes_a_server_error(client, width, height, data, extra, drop):
    body = {key: value for key, value in {"width": width, "height": height, "data": data}.items() if key not in drop}
    body.update(extra)
    answer = client.post("/api/predict", content=json.dumps(body), headers={"content-type": "application/json"})
    assert answer.status_code in (200, 422), answer.text
    assert "detail" in answer.json() or "digit" in answer.json()


def test_a_body_over_the_limit_is_a_413(client):
    answer = client.post("/api/predict", content=b" " * (MAX_BODY_BYTES + 1),
                         headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "limit" in answer.json()["detail"]


def test_a_body_that_is_neither_json_nor_a_form_is_a_415(client):
    answer = client.post("/api/predict", content=b"1,2,3", headers={"content-type": "text/csv"})
    assert answer.status_code == 415 and "multipart" in answer.json()["detail"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pixels=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3),
                           lambda inner: st.lists(inner, max_size=30) | st.dictionaries(st.text(max_size=3), inner),
                           max_leaves=60))
def test_no_pixels_value_whatsoever_makes_a_server_error(client, pixels):
    body = json.dumps({"pixels": pixels})  # NaN and Infinity included, as Python writes them
    answer = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code in (200, 422), answer.text
    assert "detail" in answer.json() or "digit" in answer.json()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=300) | st.just("a" * 5000 + ".safetensors") | st.just("default/" * 50 + "../x"))
def test_no_model_name_whatsoever_makes_a_server_error(client, name):
    answer = client.get("/api/model", params={"model": name})
    assert answer.status_code in (200, 404, 422), answer.text


def png_photo(digit, fmt="PNG"):
    """A photo-like image of ``digit``: dark ink on light, uneven paper, as PNG or JPEG bytes."""
    from PIL import Image

    ink = canvas_with(digit, scale=7, top=60, left=40, side=320) / 255
    paper = 190 + 40 * np.linspace(0, 1, 320)[None, :] + np.random.default_rng(0).normal(0, 5, (320, 320))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(paper * (1 - 0.7 * ink), 0, 255).astype(np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_photo_of_a_digit_on_paper_is_read(client, mnist_test, fmt):
    images, labels = mnist_test
    for i in range(5):
        answer = client.post("/api/predict", files={"image": (f"digit.{fmt.lower()}", png_photo(images[i], fmt))})
        assert answer.status_code == 200, answer.text
        assert answer.json()["digit"] == labels[i]


@pytest.mark.parametrize("files, message", [
    ({"image": ("x.png", b"this is not an image", "image/png")}, "not a readable PNG or JPEG"),
    ({"photo": ("x.png", b"whatever", "image/png")}, "multipart field 'image'"),
])
def test_an_upload_that_is_not_an_image_is_a_422(client, files, message):
    answer = client.post("/api/predict", files=files)
    assert answer.status_code == 422 and message in answer.json()["detail"]


def test_a_broken_multipart_body_is_a_422(client):
    answer = client.post("/api/predict", content=b"--x\r\nnonsense",
                         headers={"content-type": "multipart/form-data; boundary=x"})
    assert answer.status_code == 422


@pytest.mark.parametrize("path", ["/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py",
                                  "/static/%2e%2e%2fmodels.py", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
                                  "/../../etc/passwd", "/static/..%5capp.py"])
def test_no_file_outside_the_static_folder_is_served(client, path):
    answer = client.get(path)
    assert answer.status_code == 404
    assert "import" not in answer.text and "root:" not in answer.text


def test_the_page_and_its_assets_are_served_by_the_app_with_no_outside_address(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/static/app.js" in assets and "/static/style.css" in assets
    for asset in assets:
        assert asset.startswith(("/static/", "data:")), asset
        if asset.startswith("/static/"):
            text = client.get(asset).text
            assert client.get(asset).status_code == 200
            assert "http://" not in text and "https://" not in text


def test_the_api_has_an_openapi_schema_with_both_ways_to_send_a_digit(client):
    schema = client.get("/openapi.json").json()
    assert {"/api/model", "/api/models", "/api/predict"} <= set(schema["paths"])
    body = schema["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}
    forms = body["application/json"]["schema"]["oneOf"]
    assert [sorted(form["required"]) for form in forms] == [["data", "height", "width"], ["pixels"]]
    for path, method in (("/api/predict", "post"), ("/api/model", "get")):  # ?model= is documented on both
        assert [q["name"] for q in schema["paths"][path][method]["parameters"]] == ["model"]
    assert client.get("/docs").status_code == 200


# --- the command ------------------------------------------------------------------------------------

def test_draw_without_any_trained_or_shipped_model_says_how_to_train_one(cli, tmp_path, monkeypatch):
    from mnistlab import pretrained
    monkeypatch.setattr(pretrained, "FILE", tmp_path / "not-shipped" / "model.safetensors")
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(cli(["draw", "--no-browser"]), "no trained model", "mnistlab train")


def test_draw_with_a_damaged_weights_file_is_one_line(cli, tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"nope")
    assert_one_line_error(cli(["draw", "--no-browser", "--weights", tmp_path / "bad.safetensors"]), "bad.safetensors")


def test_draw_serves_runs_default_on_127_0_0_1_and_prints_the_address(runs, tmp_path):
    for name, age in (("newer", 60), ("default", 3600)):
        shutil.copytree(runs / "tiny", tmp_path / "runs" / name)
        stamp = time.time() - age
        os.utime(tmp_path / "runs" / name / "model.safetensors", (stamp, stamp))
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab.cli", "draw", "--no-browser", "--port", "0"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        assert "runs/default/model.safetensors" in line
        with urllib.request.urlopen(url + "api/model", timeout=10) as response:
            assert json.load(response)["name"] == "default/model.safetensors"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def children_of(pid):
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_draw_with_two_workers_answers_on_one_port_and_sigterm_stops_every_worker(runs, tmp_path):
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab.cli", "draw", "--no-browser", "--port", "0", "--workers",
                             "2", "--weights", str(runs / "tiny" / "model.safetensors")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "2 worker processes" in line
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        workers = children_of(proc.pid)
        assert len(workers) == 2
        for _ in range(20):  # a new connection each time: the kernel spreads them over the workers
            with urllib.request.urlopen(url + "api/model", timeout=10) as response:
                assert json.load(response)["name"].endswith("tiny/model.safetensors")
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


@pytest.mark.parametrize("value", ["0", "-1", "two", "65"])
def test_draw_with_a_bad_number_of_workers_is_one_line(cli, runs, value):
    result = cli(["draw", "--no-browser", "--workers", value, "--weights", runs / "tiny" / "model.safetensors"])
    assert_one_line_error(result, "--workers", value)


# --- the page in a real browser ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(runs):
    """The app served by uvicorn in a thread on a free 127.0.0.1 port; yields its address."""
    yield from serve_in_thread(create_app(runs / "default" / "model.safetensors", runs,
                                          pretrained=runs / "none.safetensors"))


def shown_prediction(page):
    """The digit shown once the prediction for the latest drawing has arrived."""
    page.wait_for_selector('#digit[data-current="true"]', timeout=10_000)
    return page.inner_text("#digit")


def preview_ink(page):
    """(width, height, number of inked pixels) of the 28x28 preview canvas."""
    return page.evaluate("""() => {
        const c = document.getElementById('preview');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let ink = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] > 0) ink++;
        return [c.width, c.height, ink];
    }""")


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(server)
    page.wait_for_selector("#model option", state="attached")
    yield page
    context.close()
    assert not errors, errors


@pytest.mark.parametrize("strokes, digit", [(ONE, "1"), (ZERO, "0"), (SEVEN, "7")], ids=["one", "zero", "seven"])
def test_a_digit_drawn_with_the_mouse_is_read_and_its_28x28_image_shown(page, strokes, digit):
    sent = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/api/predict") else None)
    draw_with_mouse(page, strokes)
    assert shown_prediction(page) == digit
    assert sent and sent[-1]["encoding"] == "deflate"  # the compact form, deflated by the browser
    deflated = base64.b64decode(sent[-1]["data"], validate=True)
    width, height = sent[-1]["width"], sent[-1]["height"]
    assert 28 <= width < 280 and 28 <= height < 280 and len(deflated) < 10_000
    # Only the ink's box is sent (at least 28 px a side): exactly drawing.ink_crop of the whole canvas, which
    # mnist_like reads as it reads the whole (tests/test_drawing.py)
    box = np.frombuffer(zlib.decompress(deflated), np.uint8).reshape(height, width)
    alpha = np.array(page.evaluate("""() => {
        const c = document.getElementById('canvas');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 4 === 3));
    }"""), np.uint8).reshape(280, 280)
    assert np.array_equal(box, ink_crop(alpha))
    width, height, ink = preview_ink(page)
    assert (width, height) == (28, 28) and 20 < ink < 400
    assert "%" in page.inner_text("#confidence")


def test_a_browser_without_compression_streams_sends_the_bytes_as_they_are(browser, server):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.add_init_script("delete window.CompressionStream")
    page = context.new_page()
    try:
        sent = []
        page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/api/predict") else None)
        page.goto(server)
        page.wait_for_selector("#model option", state="attached")
        draw_with_mouse(page, SEVEN)
        assert shown_prediction(page) == "7"
        assert sent[-1]["encoding"] == "raw" and sent[-1]["width"] < 280  # the ink's box, as it is
        assert len(base64.b64decode(sent[-1]["data"])) == sent[-1]["width"] * sent[-1]["height"]
    finally:
        context.close()


def test_clear_empties_the_canvas_the_prediction_and_the_preview(page):
    draw_with_mouse(page, SEVEN)
    assert shown_prediction(page) == "7"
    page.click("#clear")
    assert shown_prediction(page) == "–"
    assert preview_ink(page)[2] == 0
    assert page.evaluate("() => document.getElementById('canvas').getContext('2d')"
                         ".getImageData(0, 0, 280, 280).data.some(v => v > 0)") is False


def test_undo_takes_back_the_last_stroke(page):
    draw_with_mouse(page, SEVEN)
    assert shown_prediction(page) == "7"
    draw_with_mouse(page, [[(40, 200), (60, 205)]])  # a stray mark
    shown_prediction(page)
    page.click("#undo")
    assert shown_prediction(page) == "7"
    page.click("#undo")
    assert shown_prediction(page) == "–"


def test_a_finger_draws_too(browser, server):
    context = browser.new_context(viewport={"width": 800, "height": 1000}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(server)
    page.wait_for_selector("#model option", state="attached")
    kinds = []
    page.expose_function("seen", lambda kind: kinds.append(kind))
    page.evaluate("() => document.getElementById('canvas').addEventListener('pointerdown', e => seen(e.pointerType))")
    cdp = context.new_cdp_session(page)
    box = page.locator("#canvas").bounding_box()
    scale = box["width"] / 280
    points = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in
              [(150 + 2 * i, 30 + 12 * i) for i in range(20)]]
    for i, (x, y) in enumerate(points):
        kind = "touchStart" if i == 0 else "touchMove"
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    assert shown_prediction(page) == "1"
    assert kinds == ["touch"]
    context.close()


def test_the_page_shows_the_model_and_switches_to_another(page):
    assert "784-128-10" in page.inner_text("#model-info")
    assert page.locator("#model option").count() == 2
    page.select_option("#model", "tiny/model.safetensors")
    page.wait_for_function("() => document.getElementById('model-info').innerText.includes('784-16-10')")
    draw_with_mouse(page, ONE)
    shown_prediction(page)


def test_a_photo_is_uploaded_and_read(page, mnist_test, tmp_path):
    images, labels = mnist_test
    photo = tmp_path / "digit.png"
    photo.write_bytes(png_photo(images[3]))
    page.set_input_files("#upload", str(photo))
    assert shown_prediction(page) == str(labels[3])
    assert "digit.png" in page.inner_text("#status")


def test_draw_on_a_port_already_taken_is_one_line(cli, runs):
    from mnistlab.web.server import bind

    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        for workers in ("1", "2"):  # two workers share a port between themselves, never with another program
            result = cli(["draw", "--no-browser", "--port", port, "--workers", workers,
                          "--weights", runs / "tiny" / "model.safetensors"])
            assert_one_line_error(result, f"--port {port}", "cannot listen")
    finally:
        taken.close()


def test_the_server_socket_says_tcp_so_responses_are_sent_without_nagle_delay():
    import socket

    from mnistlab.web.server import bind
    sock = bind("127.0.0.1", 0)
    try:
        # asyncio sets TCP_NODELAY on accepted sockets only when the listening one says IPPROTO_TCP
        assert sock.proto == socket.IPPROTO_TCP
        client = socket.create_connection(sock.getsockname()[:2])
        accepted, _ = sock.accept()
        import asyncio.base_events as base_events
        base_events._set_nodelay(accepted)
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        accepted.close()
        client.close()
    finally:
        sock.close()


# --- hostile input and offline docs (issue 21) -------------------------------------------------------


@pytest.mark.parametrize("body, message", [
    ({"width": 28, "height": 28, "data": base64.b64encode(zlib.compress(bytes(784)) + b"garbage").decode(),
      "encoding": "deflate"}, "7 bytes after the end of the zlib (deflate) stream"),
    ({"width": 28, "height": 28, "data": base64.b64encode(zlib.compress(bytes(784)) * 2).decode(),
      "encoding": "deflate"}, "bytes after the end of the zlib (deflate) stream"),
    ({"pixels": [[0] * 28] * 28, "foo": 1}, "unexpected: 'foo'"),
    ({"pixels": [[0] * 28] * 28, "width": 28}, "the pixels form has the one field pixels"),
])
def test_trailing_bytes_and_unknown_keys_are_refused_in_both_json_forms(client, body, message):
    answer = client.post("/api/predict", json=body)
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["detail"]


def test_the_schema_refuses_extra_keys_in_both_json_forms(client):
    forms = client.get("/openapi.json").json()["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert [form["additionalProperties"] for form in forms["application/json"]["schema"]["oneOf"]] == [False, False]


def image_bytes(array, fmt="PNG", **options):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_a_png_over_2048_pixels_a_side_is_refused_before_it_is_decoded(client, monkeypatch):
    from PIL import ImageFile

    from mnistlab.data import drawing
    huge = np.full((2100, 300), 255, np.uint8)
    data = image_bytes(huge)
    decoded = []
    original = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or original(self))
    answer = client.post("/api/predict", files={"image": ("big.png", data, "image/png")})
    assert answer.status_code == 422 and "300x2100 PNG is too large" in answer.json()["detail"]
    assert decoded == []  # refused from the header alone
    assert drawing.MAX_DECODED_SIDE == 2048


def test_a_png_within_the_limit_is_shrunk_by_pillow_before_the_float_work_and_read(client, mnist_test):
    from mnistlab.data import drawing
    digit = canvas_with(mnist_test[0][0], scale=40, top=300, left=800, side=2000).astype(np.uint8)
    png = image_bytes(255 - digit)  # dark ink on white paper, 2000x2000
    assert drawing.read_image(png).shape == (667, 667)  # reduced 3x in Pillow: not 32 MB of float64 to filter
    answer = client.post("/api/predict", files={"image": ("digit.png", png, "image/png")})
    assert answer.status_code == 200 and answer.json()["digit"] == mnist_test[1][0], answer.text


def test_the_api_docs_render_in_chromium_with_the_network_off(browser, server):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    outside = []

    def local_only(route):  # the network is off: anything not asked of our server fails
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("internetdisconnected")
    context.route("**/*", local_only)
    page = context.new_page()
    try:
        page.goto(server.rstrip("/") + "/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert {"/api/model", "/api/models", "/api/predict"} <= {p.strip() for p in paths}, paths
        assert outside == []
    finally:
        context.close()


def test_a_checkpoint_named_as_a_model_says_what_it_is_without_server_paths(client, runs, trained):
    (runs / "ckpt").mkdir(exist_ok=True)
    shutil.copy(trained / "checkpoint.safetensors", runs / "ckpt" / "model.safetensors")
    try:
        answer = client.get("/api/model", params={"model": "ckpt/model.safetensors"})
        detail = answer.json()["detail"]
        assert answer.status_code == 422 and "is a training checkpoint, not a model" in detail
        assert str(runs) not in detail and "/tmp" not in detail and "use " not in detail, detail
        assert detail.startswith("model 'ckpt/model.safetensors': ")
    finally:
        shutil.rmtree(runs / "ckpt")


def test_draw_with_missing_weights_is_one_line_and_a_run_folder_is_served_as_load_takes_it(cli, runs, trained,
                                                                                            monkeypatch, tmp_path):
    assert_one_line_error(cli(["draw", "--weights", tmp_path / "nonexistent", "--no-browser"]),
                          tmp_path / "nonexistent", "no such weights file")
    from mnistlab.web import server
    served = []
    monkeypatch.setattr(server, "bind_workers", lambda host, port, workers: [])
    monkeypatch.setattr(server, "serve", lambda app, socks, open_browser, on_ready: served.append(app)
                        or on_ready("http://127.0.0.1:1/"))
    result = cli(["draw", "--weights", runs / "default", "--no-browser", "--workers", "1"])
    assert result.code == 0 and served, result.err
    assert f"with {runs / 'default' / 'model.safetensors'}" in result.out


# --- committees and the shipped model -----------------------------------------------------------------

MEMBERS = ["default/model.safetensors", "tiny/model.safetensors"]
COMMITTEE = "committee: default/model.safetensors, tiny/model.safetensors"


@pytest.fixture(scope="module")
def committee_app(runs, shipped):
    """The app serving the committee of runs/default and runs/tiny, with `shipped` as the shipped model."""
    return create_app([runs / name for name in MEMBERS], runs, pretrained=shipped)


@pytest.fixture(scope="module")
def committee_client(committee_app):
    return TestClient(committee_app)


def fake_serve(monkeypatch):
    """Make `mnistlab draw` build its app and print its line without listening; returns the apps it built."""
    from mnistlab.web import server
    served = []
    monkeypatch.setattr(server, "bind_workers", lambda host, port, workers: [])
    monkeypatch.setattr(server, "serve", lambda app, socks, open_browser, on_ready: served.append(app)
                        or on_ready("http://127.0.0.1:1/"))
    return served


def test_a_served_committee_says_it_is_one_and_lists_its_members(committee_client):
    info = committee_client.get("/api/model").json()
    assert info["name"] == COMMITTEE and info["default"] is True
    assert [m["name"] for m in info["members"]] == MEMBERS
    assert [m["sizes"] for m in info["members"]] == [[784, 128, 10], [784, 16, 10]]
    assert info["members"][0]["test_accuracy"] > 0.95
    assert info["parameters"] == sum(m["parameters"] for m in info["members"])
    assert info["test_accuracy"] is None and info["sizes"] is None


def test_a_committee_reads_a_drawing_by_the_mean_of_its_members_probabilities(committee_client, mnist_test):
    digits, labels = mnist_test
    canvas = canvas_with(digits[0])
    together = post_compact(committee_client, canvas).json()
    alone = [post_compact(committee_client, canvas, model=name).json()["probabilities"] for name in MEMBERS]
    np.testing.assert_allclose(together["probabilities"], np.mean(alone, axis=0), rtol=1e-6, atol=1e-12)
    assert together["digit"] == int(np.argmax(together["probabilities"])) == labels[0]
    assert together["model"] == COMMITTEE


def test_the_shipped_model_is_listed_beside_the_runs_and_chosen_as_pretrained(committee_client, shipped, mnist_test):
    listing = committee_client.get("/api/models").json()
    assert [m["name"] for m in listing][:2] == [COMMITTEE, "pretrained"]
    assert sorted(m["name"] for m in listing[2:]) == MEMBERS
    info = committee_client.get("/api/model", params={"model": "pretrained"}).json()
    assert info["pretrained"] == "study demo, configuration small, seed 0" and info["default"] is False
    assert info["sizes"] == [784, 16, 10] and str(shipped.parent) not in json.dumps(listing)
    answer = post_compact(committee_client, canvas_with(mnist_test[0][0]), model="pretrained").json()
    assert answer["model"] == "pretrained" and len(answer["probabilities"]) == 10


def test_draw_serves_runs_default_else_the_shipped_model_else_the_newest_run(runs, shipped, tmp_path):
    from mnistlab.web.models import find_default_weights
    folder = tmp_path / "runs"
    shutil.copytree(runs / "tiny", folder / "mine")
    assert find_default_weights(folder, pretrained=shipped) == shipped
    newest = find_default_weights(folder, pretrained=tmp_path / "none.safetensors")
    assert newest == folder / "mine" / "model.safetensors"
    shutil.copytree(runs / "tiny", folder / "default")
    assert find_default_weights(folder, pretrained=shipped) == folder / "default" / "model.safetensors"


def test_draw_on_a_fresh_clone_serves_the_shipped_model(cli, shipped, monkeypatch):
    from mnistlab import pretrained
    monkeypatch.setattr(pretrained, "FILE", shipped)
    served = fake_serve(monkeypatch)
    result = cli(["draw", "--no-browser", "--workers", "1"])
    assert result.code == 0 and f"with {shipped}" in result.out, result.err
    assert TestClient(served[0]).get("/api/model").json()["name"] == "pretrained"
    result = cli(["draw", "--no-browser", "--workers", "1", "--weights", "pretrained"])
    assert result.code == 0 and f"with {shipped}" in result.out, result.err


def test_draw_with_comma_separated_weights_serves_their_committee(cli, runs, monkeypatch):
    served = fake_serve(monkeypatch)
    result = cli(["draw", "--no-browser", "--workers", "1", "--weights", f"{runs / 'default'},{runs / 'tiny'}"])
    assert result.code == 0, result.err
    assert f"with the committee of {runs / 'default' / 'model.safetensors'}, {runs / 'tiny' / 'model.safetensors'}" \
        in result.out
    assert TestClient(served[0]).get("/api/model").json()["name"] == COMMITTEE


def test_draw_with_a_committee_member_that_does_not_fit_or_an_empty_name_is_one_line(cli, runs, tmp_path):
    from mnistlab.arch import resolve
    from mnistlab.nn import Network
    from mnistlab.weights import save_model
    save_model(tmp_path / "odd.safetensors", Network(resolve("fc8", 100, 10)), seed=0)
    odd = f"{runs / 'default'},{tmp_path / 'odd.safetensors'}"
    assert_one_line_error(cli(["draw", "--no-browser", "--weights", odd]), "odd.safetensors",
                          "does not read 28x28 digits")
    assert_one_line_error(cli(["draw", "--no-browser", "--weights", f"{runs / 'default'},,{runs / 'tiny'}"]),
                          "--weights", "an empty name")
    assert_one_line_error(cli(["draw", "--no-browser", "--weights", f"{runs / 'default'},{tmp_path / 'missing'}"]),
                          "missing", "no such weights file")


@pytest.fixture(scope="module")
def committee_server(committee_app):
    yield from serve_in_thread(committee_app)


def test_the_page_shows_a_committees_members_and_offers_the_shipped_model(browser, committee_server):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    try:
        page.goto(committee_server)
        page.wait_for_selector("#model option", state="attached")
        options = page.locator("#model option").all_inner_texts()
        assert options[0].startswith("committee: default, tiny") and options[1].startswith("pretrained — 784-16-10")
        card = page.inner_text("#model-info")
        assert "2 models; it reads the mean of their probabilities" in card
        assert "default — 784-128-10" in card and "tiny — 784-16-10" in card
        draw_with_mouse(page, ONE)
        assert shown_prediction(page) == "1"
        page.select_option("#model", "pretrained")
        page.wait_for_function("() => document.getElementById('model-info').innerText.includes('study demo')")
    finally:
        context.close()


def test_predict_answers_through_the_direct_path_exactly_as_through_fastapis_route(runs, mnist_test):
    """POST /api/predict is answered directly (DrawApp.direct, app.py), by the route's own function, without
    FastAPI's middleware stack; the app without it (FastAPI's routing) gives the same status, headers' content
    type and body, good or bad."""
    def app(direct):
        made = create_app(runs / "default" / "model.safetensors", runs, pretrained=runs / "none.safetensors")
        if not direct:
            made.direct = None
        return made

    digit = mnist_test[0][0]
    compact = {"width": 28, "height": 28, "data": base64.b64encode(digit.tobytes()).decode()}
    requests = [dict(json={"pixels": digit.tolist()}), dict(json=compact), dict(json=dict(compact, width=27)),
                dict(json={"pixels": [[1, 2], [3]]}), dict(content=b"{", headers={"content-type": "application/json"}),
                dict(content=b"x", headers={"content-type": "text/plain"}),
                dict(json=compact, params={"model": "nothing/here.safetensors"}),
                dict(files={"image": ("a.png", b"not a png", "image/png")})]
    direct_app, routed_app = app(True), app(False)
    direct, routed = TestClient(direct_app), TestClient(routed_app)
    for request in requests:
        ours, theirs = direct.post("/api/predict", **request), routed.post("/api/predict", **request)
        assert (ours.status_code, ours.headers["content-type"], ours.content) == \
            (theirs.status_code, theirs.headers["content-type"], theirs.content), request
    assert direct.post("/api/predict", json=compact).status_code == 200
    # Starlette builds its middleware stack on an app's first call through it: the direct one never did
    assert direct_app.middleware_stack is None and routed_app.middleware_stack is not None
    assert direct.get("/api/predict").status_code == routed.get("/api/predict").status_code == 405
