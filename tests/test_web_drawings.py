"""The drawings API and the page's "your drawings" panel (web/drawings.py, static/collect.js): through
FastAPI's TestClient, `mnistlab draw --collect` as a process, and the page in a real browser (Debian's
Chromium driven by Playwright) labelling mouse-drawn digits."""

import base64
import io
import json
import re
import subprocess
import sys
import urllib.request
import zipfile
import numpy as np
import pytest

from conftest import ONE, SEVEN, SRC, ZERO, assert_one_line_error, draw_with_mouse, serve_in_thread

from mnistlab.data import load_dataset, load_images_labels
from mnistlab.data.collection import IMAGES, LABELS

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from mnistlab.web.app import create_app  # noqa: E402
from mnistlab.web.drawings import CollectSettings  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A runs folder with default/: 784-64-10 trained for 2 epochs on the full bundled MNIST (~96%)."""
    from mnistlab.cli import main

    folder = tmp_path_factory.mktemp("web-drawings") / "runs"
    assert main(["train", "--hidden", "64", "--epochs", "2", "--no-progress", "--out", str(folder / "default")]) == 0
    return folder


@pytest.fixture(scope="module")
def mnist_test():
    data = load_dataset()
    return data.test_images.reshape(-1, 28, 28), data.test_labels


def make_client(runs, folder, **settings):
    collect = CollectSettings(str(folder), **{"enabled": True, **settings})
    return TestClient(create_app(runs / "default" / "model.safetensors", runs, collect))


def canvas_of(digit):
    """An MNIST digit drawn 5 times larger on a 140x140 canvas, as the compact JSON form."""
    big = np.kron(digit, np.ones((5, 5), np.uint8))
    return {"width": 140, "height": 140, "data": base64.b64encode(big.tobytes()).decode()}


def test_labelled_drawings_are_kept_and_the_summary_counts_and_scores_them(runs, tmp_path, mnist_test, monkeypatch):
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # the folder is outside the working folder
    client = make_client(runs, tmp_path / "drawings")
    images, labels = mnist_test
    answers = []
    for i in range(6):
        response = client.post("/api/drawings", json={**canvas_of(images[i]), "label": int(labels[i]), "session": "me"})
        assert response.status_code == 200, response.text
        answers.append(response.json()["drawing"]["answer"])
    client.post("/api/drawings", json={"pixels": np.kron(images[6], np.ones((2, 2), int)).tolist(), "label": 3})
    summary = client.get("/api/drawings/summary", params={"session": "me"}).json()
    assert summary["all"]["count"] == 7 and summary["session"]["count"] == 6
    assert summary["session"]["per_digit"] == np.bincount(labels[:6], minlength=10).tolist()
    expected = np.mean(np.array(answers) == labels[:6])
    assert summary["session"]["accuracy"] == pytest.approx(expected)
    assert summary["folder"] == "…/drawings/" and summary["recent"][0]["id"] == 7  # no server path
    images_back, labels_back = load_images_labels(tmp_path / "drawings")  # MNIST IDX, read back
    assert images_back.shape == (7, 784) and labels_back.tolist() == [*labels[:6].tolist(), 3]


@pytest.mark.parametrize("body, message", [
    ({"label": 10}, "label"), ({"label": "x"}, "label"), ({"label": True}, "label"), ({"label": 2.0}, "label"),
    ({}, "label: missing"), ({"label": 3, "session": "x" * 100}, "session"),
    ({"label": 3, "width": 140, "height": 140, "data": "!!"}, "base64"),
    ({"label": 3, "pixels": [[1, 2], [3]]}, "pixels"),
    ({"label": 3, "pixels": [[0] * 30] * 30, "extra": 1}, "unexpected"),
    ({"label": 3, "pixels": [[0] * 30] * 30}, "nothing drawn"),
])
def test_a_bad_label_or_drawing_is_a_422_with_a_message_and_nothing_is_kept(runs, tmp_path, mnist_test, body, message):
    client = make_client(runs, tmp_path / "d")
    if "label" in body and "pixels" not in body and "data" not in body and "label: missing" != message:
        body = {**canvas_of(mnist_test[0][0]), **body}
    if message == "label: missing":
        body = canvas_of(mnist_test[0][0])
    response = client.post("/api/drawings", json=body)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert client.get("/api/drawings/summary").json()["all"]["count"] == 0


def test_a_photo_is_kept_with_its_label_from_a_multipart_form(runs, tmp_path, mnist_test):
    from PIL import Image

    paper = Image.fromarray(255 - np.kron(mnist_test[0][1], np.ones((4, 4), np.uint8)))
    buffer = io.BytesIO()
    paper.save(buffer, format="PNG")
    client = make_client(runs, tmp_path / "d")
    response = client.post("/api/drawings", files={"image": ("d.png", buffer.getvalue(), "image/png")},
                           data={"label": str(int(mnist_test[1][1]))})
    assert response.status_code == 200, response.text
    assert response.json()["drawing"]["label"] == int(mnist_test[1][1])
    missing = client.post("/api/drawings", files={"image": ("d.png", buffer.getvalue(), "image/png")})
    assert missing.status_code == 422 and "label" in missing.json()["detail"]


def test_one_drawing_or_all_are_deleted_and_an_unknown_id_is_a_404(runs, tmp_path, mnist_test):
    client = make_client(runs, tmp_path / "d")
    for i in range(3):
        client.post("/api/drawings", json={**canvas_of(mnist_test[0][i]), "label": int(mnist_test[1][i])})
    assert client.delete("/api/drawings/2").json() == {"deleted": 1}
    assert client.delete("/api/drawings/2").status_code == 404
    assert client.delete("/api/drawings/..%2F..%2Fetc").status_code in (404, 422)
    assert [r["id"] for r in client.get("/api/drawings/summary").json()["recent"]] == [3, 1]
    assert client.delete("/api/drawings").json() == {"deleted": 2}
    assert client.get("/api/drawings/summary").json()["all"]["count"] == 0


def test_the_download_is_a_zip_of_the_mnist_format_set(runs, tmp_path, mnist_test):
    client = make_client(runs, tmp_path / "d")
    client.post("/api/drawings", json={**canvas_of(mnist_test[0][0]), "label": int(mnist_test[1][0])})
    response = client.get("/api/drawings/download")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert f"drawings/{IMAGES}" in names and f"drawings/{LABELS}" in names and "drawings/items/000001.npz" in names


def test_past_the_folder_cap_a_drawing_is_a_413_that_says_so(runs, tmp_path, mnist_test):
    client = make_client(runs, tmp_path / "d", max_bytes=4_000)
    codes = [client.post("/api/drawings", json={**canvas_of(mnist_test[0][i]), "label": 1}).status_code
             for i in range(10)]
    assert 200 in codes and codes[-1] == 413
    refused = client.post("/api/drawings", json={**canvas_of(mnist_test[0][0]), "label": 1})
    assert "full" in refused.json()["detail"] and "cap" in refused.json()["detail"]


def test_without_collect_on_another_address_every_write_is_a_403_and_no_folder_is_made(runs, tmp_path, mnist_test):
    client = make_client(runs, tmp_path / "d", enabled=False, allowed=False)
    response = client.post("/api/drawings", json={**canvas_of(mnist_test[0][0]), "label": 1})
    assert response.status_code == 403 and "--collect" in response.json()["detail"]
    assert client.get("/api/drawings/summary").json()["allowed"] is False
    assert not (tmp_path / "d").exists()


def test_with_the_toggle_off_nothing_is_created_until_the_first_drawing(runs, tmp_path, mnist_test):
    client = make_client(runs, tmp_path / "d", enabled=False)
    summary = client.get("/api/drawings/summary").json()
    assert summary["enabled"] is False and summary["allowed"] is True and not (tmp_path / "d").exists()
    assert client.post("/api/drawings", json={**canvas_of(mnist_test[0][0]), "label": 7}).status_code == 200
    assert (tmp_path / "d" / IMAGES).is_file()


def test_every_file_written_stays_inside_the_collect_folder(runs, tmp_path, mnist_test):
    outside = set(tmp_path.rglob("*"))
    client = make_client(runs, tmp_path / "d")
    for session in ("../../x", "/etc/passwd", "a\\b"):
        client.post("/api/drawings", json={**canvas_of(mnist_test[0][0]), "label": 1, "session": session})
    new = set(tmp_path.rglob("*")) - outside
    assert new and all(path.is_relative_to(tmp_path / "d") for path in new)


def test_draw_on_another_address_warns_in_one_line_at_start(runs, tmp_path):
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    weights = runs / "default" / "model.safetensors"
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab.cli", "draw", "--no-browser", "--port", "0",
                             "--host", "0.0.0.0", "--workers", "1", "--weights", str(weights),
                             "--collect", str(tmp_path / "mine")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    warning = [line for line in lines if line.startswith("warning")]
    assert len(warning) == 1 and "anyone who can reach it can draw" in warning[0]
    assert str(tmp_path / "mine") in warning[0]
    assert any("labelled drawings kept in" in line for line in lines)


def test_draw_on_this_machine_gives_no_warning(runs, tmp_path):
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab.cli", "draw", "--no-browser", "--port", "0",
                             "--workers", "1", "--weights", str(runs / "default" / "model.safetensors")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        with urllib.request.urlopen(url + "api/drawings/summary", timeout=10) as response:
            assert json.load(response)["enabled"] is False
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert line.startswith("serving") and not (tmp_path / "drawings").exists()


# ---------------------------------------------------------------- the page in a real browser

@pytest.fixture(scope="module")
def collect_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("page") / "drawings"


@pytest.fixture(scope="module")
def server(runs, collect_folder):
    """The app with --collect, served by uvicorn in a thread on a free 127.0.0.1 port."""
    collect = CollectSettings(str(collect_folder), enabled=True)
    yield from serve_in_thread(create_app(runs / "default" / "model.safetensors", runs, collect))


def read_digit(page):
    page.wait_for_selector('#digit[data-current="true"]', timeout=10_000)
    page.wait_for_selector("#right:not([disabled])", timeout=10_000)
    return page.inner_text("#digit")


def test_three_drawings_labelled_on_the_page_are_counted_scored_deleted_and_downloaded(browser, server, collect_folder,
                                                                                      runs, tmp_path, capsys):
    context = browser.new_context(viewport={"width": 1500, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(server)
    page.wait_for_selector("#collect:not([hidden])")
    assert page.is_checked("#collect-on")  # --collect: on from the start
    shown = page.inner_text("#collect-folder")
    assert shown.endswith(f"{collect_folder.name}/") and str(collect_folder.parent) not in shown

    draw_with_mouse(page, ONE)
    read = read_digit(page)
    page.click("#right")  # "right": kept as what was read
    page.wait_for_function("document.getElementById('session-count').textContent === '1'")
    assert page.inner_text("#recent li:first-child").startswith(f"#1: {read}")

    draw_with_mouse(page, ZERO)
    read_digit(page)
    page.keyboard.press("0")  # the key of the digit: kept as 0
    page.wait_for_function("document.getElementById('session-count').textContent === '2'")

    draw_with_mouse(page, SEVEN)
    read_digit(page)
    page.click('#labels button[data-label="2"]')  # "wrong, it is 2": the model is now wrong on it
    page.wait_for_function("document.getElementById('session-count').textContent === '3'")
    assert page.inner_text("#set-count") == "3"
    labels = [int(read), 0, 2]
    answers = [r["answer"] for r in reversed(json.loads(page.evaluate(
        "fetch('/api/drawings/summary').then(r => r.text())"))["recent"])]
    expected = f"{100 * np.mean(np.array(answers) == np.array(labels)):.1f}%"
    assert page.inner_text("#session-accuracy") == expected and expected != "100.0%"

    page.click('#recent li[data-id="3"] button')  # delete the wrong one
    page.wait_for_function("document.getElementById('session-count').textContent === '2'")
    assert page.inner_text("#session-accuracy") == f"{100 * np.mean(np.array(answers[:2]) == labels[:2]):.1f}%"

    with page.expect_download() as info:
        page.click("#download")
    saved = tmp_path / "drawings.zip"
    info.value.save_as(saved)
    with zipfile.ZipFile(saved) as z:
        z.extractall(tmp_path / "unzipped")
    from mnistlab.cli import main
    capsys.readouterr()
    assert main(["test", "--weights", str(runs / "default" / "model.safetensors"), "--data",
                 str(tmp_path / "unzipped" / "drawings"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["examples"] == 2 and result["accuracy"] == pytest.approx(np.mean(np.array(answers[:2]) == labels[:2]))
    context.close()
    assert not errors, errors


def test_draw_with_a_collect_folder_that_cannot_be_made_is_one_line(cli, runs, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = cli(["draw", "--no-browser", "--port", "0", "--weights", str(runs / "default" / "model.safetensors"),
                  "--collect", str(tmp_path / "file" / "drawings")])
    assert_one_line_error(result, "drawings folder")


def test_draw_with_a_cap_that_is_not_positive_is_one_line(cli, runs):
    result = cli(["draw", "--no-browser", "--port", "0", "--weights", str(runs / "default" / "model.safetensors"),
                  "--collect-max-mb", "0"])
    assert_one_line_error(result, "--collect-max-mb")


def test_the_page_names_a_folder_inside_the_working_folder_by_its_relative_path(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    client = make_client(runs, "mine/drawings")
    assert client.get("/api/drawings/summary").json()["folder"] == "mine/drawings/"
