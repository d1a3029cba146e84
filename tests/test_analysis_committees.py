"""docs/analysis/committees.py on a small study swept here (two configurations, three seeds of tiny runs): it
writes each member's test-set probabilities from the model files, then recomputes every committee figure from
those files alone, the same figures `mnistlab test --weights A B C` gives, and catches a file that disagrees
with its run's metrics.json or weights."""

import contextlib
import io
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest

import mnistlab
from mnistlab.experiments import run_study

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = runpy.run_path(str(ROOT / "docs" / "analysis" / "committees.py"))
CONFIGS = {"hidden=16": "hidden 16", "hidden=8": "hidden 8"}  # key (folder) -> label (table.csv)


def run_script(*argv):
    """(exit status, printed lines) of the script's main."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = SCRIPT["main"]([str(a) for a in argv])
    return code, out.getvalue().splitlines()


@pytest.fixture(scope="module")
def results(tiny, tmp_path_factory):
    """A results folder holding study demo (hidden 16 and 8, seeds 0-2, 2 epochs on the tiny data) and its
    probability files, written by the script."""
    folder = tmp_path_factory.mktemp("committees") / "results"
    study = folder.parent / "demo.toml"
    study.write_text(f'name = "demo"\nrepeats = 3\n[base]\ndata = "{tiny.train_csv}"\ntest_data = "{tiny.test_csv}"\n'
                     'epochs = 2\naugment = "none"\n[[grid]]\nhidden = [[16], [8]]\n')
    run_study(study, folder / "demo", jobs=1, log=lambda m: None)
    code, lines = run_script(folder, "--write", "demo")
    assert code == 0 and lines == ["demo | probability files written | 6"]
    return folder


def members(results, config):
    return [results / "demo" / "runs" / config / f"seed{k}" for k in range(3)]


def figures(lines):
    """{what: figure} of the printed ``study | what | figure`` lines."""
    return {line.split(" | ")[1]: line.split(" | ")[2] for line in lines}


def test_the_probability_files_hold_float32_probabilities_and_the_labels_of_each_runs_test_set(results, tiny):
    with np.load(results / "demo" / "probabilities" / "hidden=16" / "seed1.npz") as f:
        probabilities, labels = f["probabilities"], f["labels"]
    assert probabilities.dtype == np.float32 and probabilities.shape == (100, 10)
    np.testing.assert_array_equal(labels, tiny.dataset.test_labels)
    expected = mnistlab.load(members(results, "hidden=16")[1]).predict_proba(tiny.dataset.test_images)
    np.testing.assert_array_equal(probabilities, expected.astype(np.float32))


def test_each_committee_is_reported_as_mnistlab_test_computes_it_and_each_member_as_its_metrics_json(results, tiny):
    code, lines = run_script(results)
    assert code == 0
    shown = figures(lines)
    for config, label in CONFIGS.items():
        runs = members(results, config)
        for k, run in enumerate(runs):
            accuracy = mnistlab.load(run).evaluate(tiny.dataset.test_images, tiny.dataset.test_labels)["accuracy"]
            assert shown[f"{label} seed{k}: test accuracy"] == f"{100 * accuracy:.2f}% (metrics.json " \
                                                               f"{100 * accuracy:.2f}%: agrees)"
        committee = mnistlab.load(runs).evaluate(tiny.dataset.test_images, tiny.dataset.test_labels)
        assert shown[f"{label}: committee of 3, mean of probabilities"] == f"{100 * committee['accuracy']:.2f}%"
        accuracies = [m["accuracy"] for m in committee["members"]]
        assert shown[f"{label}: members' mean (n = 3)"] == \
            f"{100 * np.mean(accuracies):.2f} ± {100 * np.std(accuracies, ddof=1):.2f}%"
        assert f"{label}: committee of 3, majority vote" in shown
        pairs = shown[f"{label}: committees of 2 of 3 (3): mean, best, worst"]
        pair_accuracies = [mnistlab.load([runs[i], runs[j]]).evaluate(tiny.dataset.test_images,
                                                                       tiny.dataset.test_labels)["accuracy"]
                           for i, j in ((0, 1), (0, 2), (1, 2))]
        assert pairs.startswith(f"{100 * np.mean(pair_accuracies):.2f}%, {100 * max(pair_accuracies):.2f}% (seeds ")


def test_the_figures_need_no_weights_and_from_weights_checks_those_present(results, tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    for model in (copy / "demo" / "runs").rglob("model.safetensors"):
        if model.parent.name != "seed0":
            model.unlink()
    _, with_weights = run_script(results)
    code, without = run_script(copy)
    assert code == 0 and without == with_weights
    code, checked = run_script(copy, "--from-weights")
    recomputed = [line for line in checked if "recomputed from its weights" in line]
    assert code == 0 and len(recomputed) == 2  # seed0 of each configuration: the only weights left
    assert all(line.endswith("largest difference 0.0e+00, agrees") for line in recomputed), recomputed


def test_a_probability_file_that_disagrees_with_its_run_is_reported_and_the_exit_status_is_1(results, tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    path = copy / "demo" / "probabilities" / "hidden=8" / "seed2.npz"
    with np.load(path) as f:
        probabilities, labels = f["probabilities"].copy(), f["labels"]
    right = probabilities.argmax(axis=1) == labels
    probabilities[np.flatnonzero(right)[:1]] = np.roll(probabilities[np.flatnonzero(right)[:1]], 1, axis=1)
    SCRIPT["save"](path, probabilities, labels)
    code, lines = run_script(copy, "--from-weights")
    shown = figures(lines)
    assert code == 1
    assert shown["hidden 8 seed2: test accuracy"].endswith("DISAGREES)")
    assert shown["hidden 8 seed2: recomputed from its weights"].endswith("DISAGREES")
    assert shown["hidden 8 seed1: test accuracy"].endswith("agrees)")


def test_majority_vote_breaks_ties_by_the_mean_probability():
    a = np.array([[0.6, 0.4, 0.0], [0.1, 0.2, 0.7]], np.float32)
    b = np.array([[0.0, 0.45, 0.55], [0.1, 0.8, 0.1]], np.float32)
    c = np.array([[0.7, 0.3, 0.0], [0.0, 0.3, 0.7]], np.float32)
    np.testing.assert_array_equal(SCRIPT["vote"]([a, b, c]), [0, 2])  # two votes each time
    np.testing.assert_array_equal(SCRIPT["vote"]([a, b]), [0, 1])  # one each: the higher mean wins


def test_write_of_a_folder_that_is_no_study_exits_2_in_one_line(tmp_path, capsys):
    code, _ = run_script(tmp_path, "--write", "nothing")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "runs.csv: no such file" in err


def test_a_run_folder_named_otherwise_than_its_configuration_is_found_through_runs_csv(results, tmp_path):
    # the sweep shortens a long configuration key in folder names ("arch=conv32k~5178fe78"); runs.csv has both
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    (copy / "demo" / "runs" / "hidden=16").rename(copy / "demo" / "runs" / "hidden~short")
    runs_csv = copy / "demo" / "runs.csv"
    runs_csv.write_text(runs_csv.read_text().replace("runs/hidden=16/", "runs/hidden~short/"))
    assert "runs/hidden~short/seed1" in runs_csv.read_text()
    code, lines = run_script(copy, "--from-weights")
    shown = figures(lines)
    assert code == 0, lines
    assert shown["hidden 16 seed1: test accuracy"].endswith("agrees)")
    assert shown["hidden 16 seed1: recomputed from its weights"].endswith("agrees")
