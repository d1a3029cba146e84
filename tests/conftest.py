"""Shared fixtures for the command-line, run, weights, config, stopping and evaluate tests.

Every test runs in its own empty working folder (``own_working_folder``), so what a user's commands leave
in the repository (``runs/default`` after ``make run``, ``results/``, ``csv/``...) never reaches a test.
Everything trains on a tiny slice of the bundled MNIST (300 training and 100 test images written as
CSV files) with a 16-unit hidden layer, so a whole training run takes a few hundredths of a second.
"""

import csv
import json
import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mnistlab.data import Dataset, export_csv, load_dataset

SRC = Path(__file__).resolve().parents[1] / "src"
TRAIN_ROWS, TEST_ROWS = 300, 100


@pytest.fixture(autouse=True)
def own_working_folder(tmp_path, monkeypatch):
    """Each test starts in its own empty folder (its ``tmp_path``), never in the repository."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@dataclass
class Tiny:
    """The tiny data set as arrays and as a pair of CSV files."""

    dataset: Dataset
    train_csv: Path
    test_csv: Path

    @property
    def data_flags(self):
        return ["--data", str(self.train_csv), "--test-data", str(self.test_csv)]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Tiny:
    mnist = load_dataset()
    dataset = Dataset(mnist.train_images[:TRAIN_ROWS], mnist.train_labels[:TRAIN_ROWS],
                      mnist.test_images[:TEST_ROWS], mnist.test_labels[:TEST_ROWS])
    train_csv, test_csv = export_csv(dataset, tmp_path_factory.mktemp("tiny"))
    return Tiny(dataset, train_csv, test_csv)


# A small CNN with every image layer: a padded conv, batch norm, pooling, a stride-2 conv, dropout.
TINY_CNN = "conv4k3-bn-pool2-conv6k3s2-drop0.2-fc16"


def tiny_cnn_args(tiny, out, *extra):
    """`mnistlab train` arguments for a 2-epoch run of TINY_CNN on the tiny CSVs into ``out``."""
    return ["train", *tiny.data_flags, "--arch", TINY_CNN, "--epochs", "2", "--augment", "none", "--out", str(out),
            *extra]


def tiny_train_args(tiny, out, *extra):
    """`mnistlab train` arguments for a 2-epoch, 16-unit run on the tiny CSVs into ``out``, without the
    default recipe's augmentation (the cases here were chosen on plain training; ``extra`` may set it)."""
    return ["train", *tiny.data_flags, "--hidden", "16", "--epochs", "2", "--augment", "none", "--out", str(out),
            *extra]


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run ``mnistlab.cli.main(argv)`` in-process; return its exit code and what it printed."""
    from mnistlab.cli import main  # imported here so a broken nn/ does not stop test_data.py from collecting

    def run(argv):
        capsys.readouterr()  # drop anything printed before
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse: --help, bad flags
            code = e.code
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)
    return run


def run_subprocess(argv, cwd=None):
    """Run ``python -m mnistlab.cli`` as a real process: the exit code and stderr a shell sees."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-m", "mnistlab.cli", *map(str, argv)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(result, *fragments):
    """Exit status 2 and exactly one line on stderr, naming every fragment, with no traceback."""
    assert result.code == 2, (result.code, result.err)
    assert "Traceback" not in result.err
    assert result.err.endswith("\n") and result.err.count("\n") == 1, repr(result.err)
    assert result.err.startswith("mnistlab"), result.err
    for fragment in fragments:
        assert str(fragment) in result.err, (fragment, result.err)


def assert_no_run_output(out_dir):
    """A failed `train` leaves no weights and no metrics behind (ideally no folder at all)."""
    out_dir = Path(out_dir)
    assert not (out_dir / "model.safetensors").exists()
    assert not (out_dir / "metrics.json").exists()


@pytest.fixture(scope="session")
def trained(tiny, tmp_path_factory):
    """One finished 2-epoch run on the tiny data: its folder (never modify it; copy first)."""
    from mnistlab.cli import main

    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(tiny_train_args(tiny, out)) == 0
    return out


@pytest.fixture(scope="session")
def trained_cnn(tiny, tmp_path_factory):
    """One finished 2-epoch run of TINY_CNN on the tiny data: its folder (never modify it; copy first)."""
    from mnistlab.cli import main

    out = tmp_path_factory.mktemp("trained_cnn") / "run"
    assert main(tiny_cnn_args(tiny, out)) == 0
    return out


def read_history(path):
    """history.csv as a list of dicts of floats (epoch as int)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in rows]


def without_seconds(history):
    """History rows minus the wall-clock column, which is the only part allowed to differ."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def read_json(path):
    return json.loads(Path(path).read_text())


def write_idx(path, array):
    """Write a uint8 array as an (uncompressed) IDX file laid out as the MNIST files are."""
    path = Path(path)
    path.write_bytes(struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
                     + np.ascontiguousarray(array, np.uint8).tobytes())
    return path


def write_idx_folder(folder, dataset):
    """The four MNIST IDX files for ``dataset`` in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte", dataset.train_images.reshape(-1, 28, 28))
    write_idx(folder / "train-labels-idx1-ubyte", dataset.train_labels)
    write_idx(folder / "t10k-images-idx3-ubyte", dataset.test_images.reshape(-1, 28, 28))
    write_idx(folder / "t10k-labels-idx1-ubyte", dataset.test_labels)
    return folder


CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/install-browser installs it); Playwright never downloads one
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]
NO_BROWSER = (f"browser tests skipped: {CHROMIUM} not found; as root, `.ci/install-browser` "
              "(Debian's chromium) enables them")


def pytest_terminal_summary(terminalreporter):
    """One visible line when the browser tests were skipped for want of Chromium (pytest -q hides reasons)."""
    if any(NO_BROWSER in str(report.longrepr) for report in terminalreporter.stats.get("skipped", [])):
        terminalreporter.write_line(NO_BROWSER, yellow=True)


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by Playwright, shared by the session's browser tests.

    Without Chromium the browser tests are skipped (one line at the end says so), except under CI=true,
    where the browser is part of what is being tested and its absence fails them.
    """
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} not found, and CI=true: .ci/install-browser must install it")
        pytest.skip(NO_BROWSER)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def serve_in_thread(app):
    """Serve ``app`` with uvicorn in a thread on a free 127.0.0.1 port; yields its address, then stops it."""
    import threading
    import time

    import uvicorn

    from mnistlab.web.server import bind, url_of

    sock = bind("127.0.0.1", 0)
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield url_of(sock)
    uv.should_exit = True
    thread.join(timeout=10)
    sock.close()


# Strokes in canvas pixels (the page's canvas is 280x280): large, and away from the centre.
ONE = [[(205, 25), (200, 140), (195, 265)]]
ZERO = [[(85 + 60 * np.sin(t), 150 - 105 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)]]
SEVEN = [[(110, 40), (180, 38), (255, 40), (230, 110), (200, 180), (175, 265)]]


def draw_with_mouse(page, strokes):
    """Draw ``strokes`` (lists of canvas points) on the page's canvas with the mouse."""
    box = page.locator("#canvas").bounding_box()
    scale = box["width"] / 280
    for stroke in strokes:
        points = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=4)
        page.mouse.up()


@pytest.fixture(scope="session")
def shipped(trained, tmp_path_factory):
    """`trained` shipped as a pretrained model (its run folder placed as a study's run, demo/runs/small/seed0,
    robustness 0.9, commit abc123): the file's path. Tests point mnistlab.pretrained.FILE or create_app at it."""
    import shutil

    from mnistlab.pretrained import ship

    root = tmp_path_factory.mktemp("shipped")
    run_dir = root / "results" / "demo" / "runs" / "small" / "seed0"
    shutil.copytree(trained, run_dir)
    ship(run_dir, root / "pretrained" / "model.safetensors", commit="abc123", robustness=0.9)
    return root / "pretrained" / "model.safetensors"
