"""The real shipped model, src/mnistlab/pretrained/model.safetensors (committed with this file): it loads as
"pretrained", its metadata says where it came from, what it was trained on and how well it did, and it
reads the first 1,000 bundled test digits at 99% or better."""

import re

import numpy as np

import mnistlab
from mnistlab import pretrained
from mnistlab.data import load_dataset
from mnistlab.web.models import find_default_weights


def test_the_shipped_model_loads_as_pretrained_and_is_a_cnn_for_28x28_digits():
    assert pretrained.FILE.is_file(), f"{pretrained.FILE} is missing"
    model = mnistlab.load("pretrained")
    assert isinstance(model, mnistlab.Model)
    assert model.sizes is None and "conv" in model.arch and model.features == 784 and model.classes == 10
    assert pretrained.FILE.stat().st_size < 10 * 2 ** 20


def test_the_shipped_models_metadata_is_complete():
    meta = mnistlab.load("pretrained").metadata
    entry = meta["pretrained"]
    assert set(entry) == set(pretrained.PROVENANCE)
    assert entry["study"] and entry["configuration"] and entry["seed"] == meta["seed"] == 0
    assert entry["command"].startswith("mnistlab ") and entry["source"].startswith(f"results/{entry['study']}/runs/")
    assert entry["commit"] is None or re.fullmatch(r"[0-9a-f]{7,40}", entry["commit"])
    assert re.fullmatch(r"[0-9a-f]{64}", entry["data_sha256"])
    assert entry["data_sha256"] == meta["metrics"]["data_sha256"]
    for key in ("val_accuracy", "test_accuracy", "epochs", "seconds"):
        assert entry["metrics"][key] == meta["metrics"][key]
    assert 0.99 <= entry["metrics"]["val_accuracy"] <= 1 and 0.99 <= entry["metrics"]["test_accuracy"] <= 1
    assert entry["metrics"]["epochs"] >= 1 and entry["metrics"]["seconds"] > 0
    if entry["robustness"] is not None:
        assert 0 <= entry["robustness"]["drawn_accuracy"] <= 1 and "bench_draw.py" in entry["robustness"]["command"]
    assert meta["config"]["seed"] == 0 and meta["format"].startswith("mnistlab-net/")


def test_the_shipped_model_reads_the_first_1000_test_digits_at_99_percent_or_better():
    mnist = load_dataset()
    labels = mnistlab.load("pretrained").predict(mnist.test_images[:1000])
    assert np.mean(labels == mnist.test_labels[:1000]) >= 0.99


def test_draw_on_a_fresh_clone_serves_the_shipped_model(tmp_path):
    assert find_default_weights(tmp_path / "runs") == pretrained.FILE


def test_plot_and_report_draw_the_shipped_model_by_its_name(tiny, tmp_path, cli):
    result = cli(["plot", "--weights", "pretrained", "--data", tiny.test_csv, "--out", tmp_path])
    assert result.code == 0, result.err
    assert {"confusion.png", "mistakes.png", "first-layer.png", "feature-maps.png"} <= {p.name for p in tmp_path.iterdir()}
    out = tmp_path / "report.html"
    result = cli(["report", str(tmp_path), "--out", str(out), "--weights", "pretrained", "--data", tiny.test_csv])
    assert result.code == 0, result.err
    assert "The model shipped with mnistlab (pretrained)" in out.read_text()
