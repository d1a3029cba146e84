"""The shipped model: ship() writes a finished run's model with its provenance, data hash and metrics, the
file loads as "pretrained" (mnistlab.load, mnistlab test), and benchmarks/ship_pretrained.py makes it.
Never the real shipped file: mnistlab.pretrained.FILE points at one made here (tests/test_pretrained_file.py,
committed with the real model, checks that one)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mnistlab
from conftest import SRC, assert_one_line_error, read_json
from mnistlab import pretrained
from mnistlab.weights import read_metadata

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def as_shipped(shipped, monkeypatch):
    """`shipped` as this installation's shipped model."""
    monkeypatch.setattr(pretrained, "FILE", shipped)
    return shipped


def test_the_shipped_file_records_where_it_came_from_its_data_and_its_metrics(shipped, trained):
    entry = read_metadata(shipped)["pretrained"]
    metrics = read_json(trained / "metrics.json")
    assert set(entry) == set(pretrained.PROVENANCE)
    assert entry["study"] == "demo" and entry["configuration"] == "small" and entry["seed"] == 0
    assert entry["commit"] == "abc123" and entry["command"] == "mnistlab sweep demo"
    assert entry["source"] == "results/demo/runs/small/seed0"
    assert entry["data_sha256"] == metrics["data_sha256"] and len(entry["data_sha256"]) == 64
    assert entry["metrics"] == {key: metrics[key] for key in ("val_accuracy", "test_accuracy", "epochs", "seconds")}
    assert entry["robustness"]["drawn_accuracy"] == 0.9
    assert "bench_draw.py --only robustness" in entry["robustness"]["command"]


def test_the_shipped_file_keeps_the_runs_model_and_metadata(shipped, trained, tiny):
    run_model, model = mnistlab.load(trained), mnistlab.load(shipped)
    np.testing.assert_array_equal(model.predict_proba(tiny.dataset.test_images),
                                  run_model.predict_proba(tiny.dataset.test_images))
    original = read_metadata(trained / "model.safetensors")
    assert {k: v for k, v in model.metadata.items() if k != "pretrained"} == original


def test_load_pretrained_gives_the_shipped_model_and_test_accepts_it(as_shipped, trained, tiny, cli):
    model = mnistlab.load("pretrained")
    assert model.metadata["pretrained"]["study"] == "demo"
    by_name = cli(["test", "--weights", "pretrained", "--data", tiny.test_csv, "--json"])
    assert by_name.code == 0, by_name.err
    assert json.loads(by_name.out)["accuracy"] == read_json(trained / "metrics.json")["test_accuracy"]
    committee = mnistlab.load(["pretrained", trained])
    assert committee.names == ["pretrained", str(trained)]


def test_without_a_shipped_model_pretrained_is_one_clear_line(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "FILE", tmp_path / "none" / "model.safetensors")
    with pytest.raises(mnistlab.InputError, match="pretrained: no model shipped with this installation"):
        mnistlab.load("pretrained")
    assert_one_line_error(cli(["test", "--weights", "pretrained"]), "pretrained", "make run")


def test_a_run_that_did_not_finish_is_not_shipped_and_nothing_is_written(trained, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    (run_dir / "metrics.json").unlink()
    with pytest.raises(mnistlab.InputError, match="metrics.json"):
        pretrained.ship(run_dir, tmp_path / "out" / "model.safetensors")
    (run_dir / "model.safetensors").unlink()
    with pytest.raises(mnistlab.InputError, match="no such weights file"):
        pretrained.ship(run_dir, tmp_path / "out" / "model.safetensors")
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_a_run_outside_a_study_is_shipped_with_its_folder_as_source_and_no_study(trained, tmp_path):
    entry = pretrained.ship(trained, tmp_path / "model.safetensors", command="mnistlab train --arch fc16")
    assert entry["study"] is None and entry["configuration"] is None and entry["commit"] is None
    assert entry["source"] == trained.name and entry["command"] == "mnistlab train --arch fc16"
    assert entry["robustness"] is None
    with pytest.raises(mnistlab.InputError, match="robustness 99.1: expected an accuracy from 0 to 1"):
        pretrained.ship(trained, tmp_path / "other.safetensors", robustness=99.1)


def test_the_ship_script_writes_the_file_and_prints_its_entry(shipped, tmp_path):
    run_dir = tmp_path / "results" / "cnn" / "runs" / "best" / "seed0"
    shutil.copytree(shipped.parents[1] / "results" / "demo" / "runs" / "small" / "seed0", run_dir)
    (tmp_path / "results" / "cnn" / "study.json").write_text(json.dumps({"name": "cnn"}))
    out = tmp_path / "model.safetensors"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ship_pretrained.py"), str(run_dir), "--out",
                           str(out), "--commit", "0123abc", "--robustness", "99.25"],
                          capture_output=True, text=True, env={"PYTHONPATH": str(SRC)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    entry = read_metadata(out)["pretrained"]
    assert (entry["study"], entry["configuration"], entry["commit"]) == ("cnn", "best", "0123abc")
    assert entry["robustness"]["drawn_accuracy"] == pytest.approx(0.9925)
    assert json.loads(proc.stdout[:proc.stdout.rindex("}") + 1]) == entry
    (tmp_path / "empty").mkdir()
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ship_pretrained.py"), str(tmp_path / "empty")],
                         capture_output=True, text=True, env={"PYTHONPATH": str(SRC)}, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no such weights file" in bad.stderr


def test_the_shipped_file_is_package_data_of_the_wheel():
    """pyproject packs src/mnistlab whole (hatch's wheel target), so pretrained/model.safetensors goes with it."""
    text = (ROOT / "pyproject.toml").read_text()
    assert 'packages = ["src/mnistlab"]' in text
    assert pretrained.FILE == ROOT / "src" / "mnistlab" / "pretrained" / "model.safetensors"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(pretrained.FILE)], cwd=ROOT)
    assert ignored.returncode == 1  # not ignored by git, hence not left out of the wheel by hatch
