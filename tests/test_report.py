"""The report package: figures drawn from real tiny runs and a hand-written study, the plot and report
commands, their one-line errors, and the HTML page opened in Chromium."""

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SRC, assert_one_line_error
from report_fixtures import make_diverged, make_study

from mnistlab.report.curves import curves_figure, runs_figure, write_curves
from mnistlab.report.model import (confusion_figure, feature_maps_figure, mistakes, mistakes_figure, predict_set,
                                   weights_figure)
from mnistlab.report.records import has_no_runs, load_histories, read_run, read_study
from mnistlab.report.study import accuracy_figure, config_label, curves_band_figure

EPOCHS = 3


@pytest.fixture(scope="session")
def two_runs(tiny, tmp_path_factory):
    """Two finished 3-epoch runs that differ only in their hidden layer (16 and 32 units)."""
    from mnistlab.cli import main

    folder = tmp_path_factory.mktemp("two_runs")
    runs = []
    for hidden in (16, 32):
        out = folder / f"h{hidden}"
        assert main(["train", *tiny.data_flags, "--hidden", str(hidden), "--epochs", str(EPOCHS), "--out", str(out),
                     "--no-progress"]) == 0
        runs.append(out)
    return runs


@pytest.fixture(scope="session")
def study_dir(tiny, tmp_path_factory):
    """results/hidden/: 3 configurations x 2 seeds, 4 finished, 1 diverged, 1 failed (never modify; copy)."""
    from mnistlab.cli import main

    return make_study(tmp_path_factory.mktemp("results") / "hidden", main, tiny.data_flags, EPOCHS)


def copy(folder, tmp_path, name="copy"):
    return Path(shutil.copytree(folder, tmp_path / name))


def lines(ax, prefix):
    return [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith(prefix)]


def collection(ax, gid):
    found = [c for c in ax.collections if c.get_gid() == gid]
    return np.asarray(found[0].get_offsets()) if found else np.zeros((0, 2))


def legend_texts(figure):
    return [t.get_text() for legend in figure.legends for t in legend.get_texts()]


def read_png(path):
    import matplotlib.image

    return matplotlib.image.imread(path)  # (height, width, 4) floats in [0, 1]


def assert_drawn_png(path, min_width=500, min_height=200):
    """A PNG of a sensible size with real content: not blank, more than a couple of colours."""
    image = read_png(path)
    height, width = image.shape[:2]
    assert width >= min_width and height >= min_height, image.shape
    ink = (image[..., :3] < 0.9).any(axis=2).mean()
    assert ink > 0.02, f"{path}: only {ink:.1%} of the pixels are not white"
    assert len(np.unique((image[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 20


# Learning curves ------------------------------------------------------------------------------------------


def test_curves_draw_a_training_and_a_validation_line_per_run_in_both_panels(two_runs):
    figure = runs_figure(two_runs)
    loss_ax, acc_ax = figure.axes
    for ax, key in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        assert len(lines(ax, f"{key}:train:")) == 2 and len(lines(ax, f"{key}:val:")) == 2
        assert all(list(ln.get_xdata()) == [1, 2, 3] for ln in lines(ax, f"{key}:"))
        assert [ln.get_xdata()[0] for ln in lines(ax, "stop:")] == [EPOCHS, EPOCHS]
    accuracies = [y for ln in lines(acc_ax, "accuracy:") for y in ln.get_ydata()]
    assert 0 < min(accuracies) and max(accuracies) <= 100  # in percent
    assert acc_ax.get_ylabel() == "accuracy (%)" and loss_ax.get_xlabel() == "epoch"


def test_the_legend_names_only_what_differs_between_the_runs_and_why_each_stopped(two_runs):
    texts = legend_texts(runs_figure(two_runs))
    assert any(t.startswith("hidden=16: max epochs (3)") for t in texts), texts
    assert any(t.startswith("hidden=32: max epochs (3)") for t in texts), texts
    assert not any("lr=" in t or "seed=" in t for t in texts), texts


def test_a_diverged_run_is_marked_at_the_epoch_it_diverged_in(trained, tmp_path):
    run = copy(trained, tmp_path)
    make_diverged(run, epochs_kept=1)
    figure = runs_figure([run])
    loss_ax, acc_ax = figure.axes
    assert [ln.get_xdata()[0] for ln in lines(loss_ax, "diverged:")] == [2]
    assert [ln.get_xdata()[0] for ln in lines(acc_ax, "stop:")] == [2]
    assert any("diverged at epoch 2" in t for t in legend_texts(figure))


def test_a_run_that_diverged_in_its_first_epoch_still_gets_a_figure(trained, tmp_path, cli):
    run = copy(trained, tmp_path)
    make_diverged(run, epochs_kept=0)
    result = cli(["plot", run])
    assert result.code == 0, result.err
    assert (run / "curves.png").is_file()


def test_write_curves_redraws_a_run_still_training_and_leaves_no_temporary_file(trained, tmp_path):
    run = copy(trained, tmp_path)
    (run / "metrics.json").unlink()  # as during training: history.csv grows, no metrics yet
    out = run / "curves.png"
    write_curves(run, out)
    first = out.read_bytes()
    (run / "history.csv").write_text("\n".join((run / "history.csv").read_text().splitlines()[:2]) + "\n")
    write_curves(run, out)
    assert out.read_bytes() != first
    assert_drawn_png(out)
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    assert any(t.startswith("training (epoch 1)") for t in legend_texts(curves_figure([read_run(run, False)])))


def test_plot_command_writes_the_curves_png_next_to_a_single_run(trained, tmp_path, cli):
    run = copy(trained, tmp_path)
    result = cli(["plot", run])
    assert result.code == 0, result.err
    assert result.out.strip() == f"wrote {run / 'curves.png'}"
    assert_drawn_png(run / "curves.png")


@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_plot_command_writes_svg_and_pdf_on_request(two_runs, tmp_path, cli, fmt, magic):
    out = tmp_path / f"both.{fmt}"
    assert cli(["plot", *two_runs, "--out", out]).code == 0
    assert out.read_bytes().startswith(magic)
    out2 = tmp_path / "named"
    assert cli(["plot", *two_runs, "--out", out2, "--format", fmt]).code == 0
    assert out2.read_bytes().startswith(magic)


# Studies ---------------------------------------------------------------------------------------------------


def test_study_figure_shows_every_repeat_the_mean_the_report_and_the_diverged_and_failed_runs(study_dir):
    study = read_study(study_dir)
    figure = accuracy_figure(study)
    ax = figure.axes[0]
    repeats = collection(ax, "repeats")
    finished = [r for r in study.runs if r["status"] == "finished"]
    assert len(repeats) == len(finished) == 4
    assert sorted(repeats[:, 0]) == pytest.approx(sorted(100 * r["test_accuracy"] for r in finished))
    assert len(collection(ax, "diverged")) == 1 and len(collection(ax, "failed")) == 1
    assert collection(ax, "report")[:, 0] == pytest.approx([97.48])
    means = [c for c in ax.containers]  # the errorbar: one mean per configuration with an accuracy
    assert len(means[0].lines[0].get_xdata()) == 2
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert len(ticks) == 3 and "1 diverged, 1 failed" in ticks[2]
    assert ["report: overflow" in t for t in ticks] == [False, True, False]  # the report's text, not a number


def test_a_configuration_label_wraps_between_settings_not_inside_one():
    label = config_label({"label": "hidden 100-100-100-100, batch_size 8, epochs 100", "config": "c"}, width=34)
    assert label.split("\n") == ["hidden 100-100-100-100,", "batch_size 8, epochs 100"]
    assert config_label({"label": "x" * 50, "config": "c"}, width=20).split("\n") == ["x" * 20, "x" * 20, "x" * 10]


def test_a_long_study_title_wraps_onto_lines_that_fit_both_figures(study_dir):
    study = load_histories(read_study(study_dir))
    study.title = "The report's augmentation with the report's learner: one copy per transform, or composed copies"
    titles = [accuracy_figure(study).axes[0].get_title(), curves_band_figure(study)._suptitle.get_text()]
    for title in titles:
        assert title.replace("\n", " ") == study.title and max(map(len, title.split("\n"))) <= 80


def test_study_bands_have_one_mean_line_per_configuration_with_finished_runs(study_dir):
    study = load_histories(read_study(study_dir))
    figure = curves_band_figure(study)
    loss_ax, acc_ax = figure.axes
    assert len(lines(loss_ax, "band-loss:")) == 2 and len(lines(acc_ax, "band-accuracy:")) == 2
    assert all(list(ln.get_xdata()) == [1, 2, 3] for ln in lines(acc_ax, "band-accuracy:"))
    assert len(acc_ax.collections) == 2  # the two ± std bands
    assert any("2 diverged/failed left out" in t for t in legend_texts(figure))
    # the band's mean is the mean of the repeats' validation accuracy
    runs = [study.histories[r["run_dir"]] for r in study.runs_of("hidden=16+lr=0.05")]
    expected = 100 * np.mean([r.history["val_accuracy"] for r in runs], axis=0)
    assert lines(acc_ax, "band-accuracy:0")[0].get_ydata() == pytest.approx(expected)


def test_plot_command_on_a_study_writes_both_figures_into_its_folder(study_dir, tmp_path, cli):
    study = copy(study_dir, tmp_path, "hidden")
    result = cli(["plot", study])
    assert result.code == 0, result.err
    for name in ("accuracy.png", "curves.png"):
        assert_drawn_png(study / name)


# A model ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def predictions(trained, tiny):
    return predict_set(trained / "model.safetensors", str(tiny.test_csv))


def test_confusion_matrix_counts_every_test_image_once(predictions, tiny):
    figure = confusion_figure(predictions)
    ax = figure.axes[0]
    counts = sum(int(t.get_text()) for t in ax.texts)
    assert counts == len(tiny.dataset.test_labels) == 100
    diagonal = sum(int(t.get_text()) for t in ax.texts if t.get_position()[0] == t.get_position()[1])
    assert diagonal == round(predictions.accuracy * 100)
    assert ax.get_xlabel() == "predicted digit" and ax.get_ylabel() == "true digit"


def test_mistakes_are_wrong_and_sorted_by_confidence(predictions):
    chosen = mistakes(predictions, 24)
    wrong = int((predictions.predicted != predictions.labels).sum())
    assert len(chosen) == min(24, wrong) > 0
    assert (predictions.predicted[chosen] != predictions.labels[chosen]).all()
    confidence = predictions.probabilities[chosen, predictions.predicted[chosen]]
    assert list(confidence) == sorted(confidence, reverse=True)
    figure = mistakes_figure(predictions)
    titles = [ax.get_title() for ax in figure.axes if ax.images]
    assert len(titles) == len(chosen)
    i = chosen[0]
    assert titles[0].startswith(f"true {predictions.labels[i]} → {predictions.predicted[i]}")


def test_first_layer_weights_are_drawn_as_one_28x28_image_per_hidden_unit(predictions):
    figure = weights_figure(predictions)
    images = [im for ax in figure.axes for im in ax.images]
    assert len(images) == 16  # the tiny model's hidden layer
    assert all(im.get_array().shape == (28, 28) for im in images)


def test_plot_command_with_weights_writes_three_figures(trained, tiny, tmp_path, cli):
    result = cli(["plot", "--weights", trained / "model.safetensors", "--data", tiny.test_csv, "--out", tmp_path])
    assert result.code == 0, result.err
    for name in ("confusion.png", "mistakes.png"):
        assert_drawn_png(tmp_path / name, min_width=400)
    assert_drawn_png(tmp_path / "first-layer.png", min_width=1000, min_height=100)  # one row of 16 units


def test_plot_of_a_cnn_draws_its_filters_and_one_digits_feature_maps(trained_cnn, tiny, tmp_path, cli):
    result = cli(["plot", "--weights", trained_cnn / "model.safetensors", "--data", tiny.test_csv, "--out", tmp_path])
    assert result.code == 0, result.err
    for name in ("confusion.png", "mistakes.png", "feature-maps.png"):
        assert_drawn_png(tmp_path / name, min_width=300)
    assert_drawn_png(tmp_path / "first-layer.png", min_width=300, min_height=100)  # one row of 4 filters
    p = predict_set(trained_cnn / "model.safetensors", str(tiny.test_csv))
    filters = weights_figure(p)
    assert sum(bool(ax.images) for ax in filters.axes) == 4  # conv4k3: four 3x3 filters
    assert all(ax.images[0].get_array().shape == (3, 3) for ax in filters.axes if ax.images)
    maps = feature_maps_figure(p)
    shapes = [ax.images[0].get_array().shape for ax in maps.axes if ax.images]
    # the digit, then per image layer (conv, bn, pool, conv; not dropout) its 4 or 6 channels
    assert shapes == [(28, 28)] + [(28, 28)] * 4 + [(28, 28)] * 4 + [(14, 14)] * 4 + [(7, 7)] * 6


# Bad input -------------------------------------------------------------------------------------------------


def _history(run):
    return run / "history.csv"


BROKEN_RUNS = {
    "missing history": (lambda run: _history(run).unlink(), "history.csv: no such file"),
    "empty history": (lambda run: _history(run).write_text(""), "history.csv: empty file"),
    "header only": (lambda run: _history(run).write_text(_history(run).read_text().splitlines()[0] + "\n"),
                    "history.csv: no epochs recorded"),
    "not a number": (lambda run: _history(run).write_text(_history(run).read_text().replace("\n1,", "\n1,x", 1)),
                     "history.csv:2: train_loss: 'x"),
    "missing column": (lambda run: _history(run).write_text("epoch,train_loss\n1,0.5\n"),
                       "history.csv:1: header lacks column(s) train_accuracy"),
    "short row": (lambda run: _history(run).write_text(_history(run).read_text() + "3,0.1\n"),
                  "history.csv:4: expected 7 columns"),
    "missing metrics": (lambda run: (run / "metrics.json").unlink(), "metrics.json: no such file"),
    "malformed metrics": (lambda run: (run / "metrics.json").write_text("{"), "metrics.json: not valid JSON"),
    "metrics not an object": (lambda run: (run / "metrics.json").write_text("[]"), "metrics.json: expected a JSON"),
}


@pytest.mark.parametrize("damage", list(BROKEN_RUNS))
def test_a_damaged_run_folder_gives_one_line_and_exit_2(trained, tmp_path, cli, damage):
    run = copy(trained, tmp_path)
    spoil, message = BROKEN_RUNS[damage]
    spoil(run)
    assert_one_line_error(cli(["plot", run]), message)


def _rewrite(path, old, new):
    path.write_text(path.read_text().replace(old, new, 1))


BROKEN_STUDIES = {
    "missing runs.csv": (lambda s: (s / "runs.csv").unlink(), "runs.csv: no such file"),
    "empty runs.csv": (lambda s: (s / "runs.csv").write_text(""), "runs.csv: empty file"),
    "bad status": (lambda s: _rewrite(s / "runs.csv", ",finished,", ",done,"), "runs.csv:2: status 'done'"),
    "bad accuracy": (lambda s: _rewrite(s / "runs.csv", ",finished,0.", ",finished,zero"),
                     "runs.csv:2: test_accuracy: 'zero"),
    "missing table column": (lambda s: _rewrite(s / "table.csv", ",mean,", ",average,"),
                             "table.csv:1: header lacks column(s) mean"),
    "missing table.csv": (lambda s: (s / "table.csv").unlink(), "table.csv: no such file"),
    "malformed study.json": (lambda s: (s / "study.json").write_text("nope"), "study.json: not valid JSON"),
    "missing run folder": (lambda s: shutil.rmtree(s / "runs" / "hidden=32+lr=0.05" / "seed1"),
                           "seed1: no such run folder"),
}


@pytest.mark.parametrize("damage", list(BROKEN_STUDIES))
def test_a_damaged_study_gives_one_line_and_exit_2_for_plot_and_report(study_dir, tmp_path, cli, damage):
    study = copy(study_dir, tmp_path, "hidden")
    spoil, message = BROKEN_STUDIES[damage]
    spoil(study)
    assert_one_line_error(cli(["plot", study]), message)
    assert_one_line_error(cli(["report", tmp_path, "--out", tmp_path / "r.html"]), message)
    assert not (tmp_path / "r.html").exists()


def test_a_study_with_no_ended_run_is_named_in_the_report_beside_the_others(study_dir, tmp_path, cli):
    copy(study_dir, tmp_path, "hidden")
    waiting = copy(study_dir, tmp_path, "waiting")
    (waiting / "runs.csv").write_text((waiting / "runs.csv").read_text().splitlines()[0] + "\n")  # header only
    assert_one_line_error(cli(["plot", waiting]), "runs.csv: no runs listed")
    result = cli(["report", tmp_path, "--out", tmp_path / "r.html"])
    assert result.code == 0, result.err
    page = (tmp_path / "r.html").read_text()
    assert "No run has ended yet in: waiting." in page and 'id="hidden"' in page
    shutil.rmtree(tmp_path / "hidden")
    assert_one_line_error(cli(["report", tmp_path, "--out", tmp_path / "r2.html"]), "no run has ended yet in waiting")


def test_report_studies_picks_and_orders_the_study_folders(study_dir, tmp_path, cli):
    for name in ("alpha", "beta", "gamma"):
        copy(study_dir, tmp_path, name)
    assert cli(["report", tmp_path, "--out", tmp_path / "r.html", "--studies", "gamma,alpha"]).code == 0
    page = (tmp_path / "r.html").read_text()
    assert page.index('id="gamma"') < page.index('id="alpha"') and 'id="beta"' not in page
    assert_one_line_error(cli(["report", tmp_path, "--out", tmp_path / "r2.html", "--studies", "alpha,delta"]),
                          "--studies: 'delta' is not a study folder")
    assert_one_line_error(cli(["report", tmp_path, "--out", tmp_path / "r2.html", "--studies", "alpha,,"]),
                          "--studies")
    assert not (tmp_path / "r2.html").exists()


def test_plot_without_folders_or_weights_and_report_of_an_empty_folder_are_input_errors(tmp_path, cli):
    assert_one_line_error(cli(["plot"]), "give run folders")
    assert_one_line_error(cli(["plot", tmp_path / "nope"]), "nope: no such run folder")
    assert_one_line_error(cli(["report", tmp_path, "--out", tmp_path / "r.html"]), "no study folders")
    assert_one_line_error(cli(["plot", tmp_path, "--format", "gif"]), "invalid choice")


def test_with_a_runs_default_in_the_working_folder_plot_checks_hold_and_report_adds_that_model(
        study_dir, trained, tiny, tmp_path, cli):
    # After `make run` a user's folder holds runs/default/model.safetensors, the report's default model.
    (tmp_path / "runs" / "default").mkdir(parents=True)
    shutil.copy(trained / "model.safetensors", tmp_path / "runs" / "default" / "model.safetensors")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(cli(["plot"]), "give run folders")
    assert_one_line_error(cli(["plot", empty / "nope"]), "nope: no such run folder")
    assert_one_line_error(cli(["plot", empty, "--format", "gif"]), "invalid choice")
    copy(study_dir, tmp_path / "results", "hidden")
    result = cli(["report", tmp_path / "results", "--out", tmp_path / "r.html", "--data", tiny.test_csv])
    assert result.code == 0 and "no model section" not in result.out, result.err
    page = (tmp_path / "r.html").read_text()
    assert 'id="hidden"' in page and 'id="model"' in page
    result = cli(["report", empty, "--out", tmp_path / "model-only.html", "--data", tiny.test_csv])
    assert result.code == 0 and 'id="model"' in (tmp_path / "model-only.html").read_text()


# The HTML report --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def report_html(study_dir, trained, tiny, tmp_path_factory):
    from mnistlab.cli import main

    out = tmp_path_factory.mktemp("docs") / "report.html"
    assert main(["report", str(study_dir.parent), "--out", str(out), "--weights", str(trained / "model.safetensors"),
                 "--data", str(tiny.test_csv)]) == 0
    return out


def test_report_embeds_every_figure_and_puts_the_reports_number_beside_ours(report_html, study_dir):
    import re

    page = report_html.read_text()
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert len(sources) == 2 + 3  # the study's accuracy and curves; confusion, mistakes, first-layer weights
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script" not in page
    study = read_study(study_dir)
    row = study.table[0]
    line = next(tr for tr in page.split("<tr>") if row["label"] in tr)
    assert f"{100 * row['mean']:.2f}%" in line and "97.48%" in line and f"{row['difference']:+.2f} pp" in line
    assert "overflow" in page and "MemoryError: out of memory" in page


def open_in_chromium(browser, path):
    """Load the page at ``path``; return its images' natural widths (0: not loaded), its table rows and
    every console error, page error and failed request."""
    page = browser.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda request: errors.append(f"failed: {request.url[:80]}"))
    try:
        page.goto(Path(path).as_uri())
        page.wait_for_load_state("load")
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        return widths, page.locator("table tbody tr").count(), errors
    finally:
        page.close()


def test_report_opens_in_chromium_with_every_image_loaded_and_no_console_errors(report_html, browser):
    widths, rows, errors = open_in_chromium(browser, report_html)
    assert len(widths) == 5 and all(w > 300 for w in widths), widths
    assert rows == 3
    assert errors == []


def test_without_matplotlib_plot_report_and_train_plot_say_how_to_install_it(study_dir, tiny, tmp_path, cli,
                                                                             monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the plot extra were not installed
    assert_one_line_error(cli(["plot", study_dir]), "mnistlab plot needs matplotlib", "reinstall mnistlab")
    assert_one_line_error(cli(["report", study_dir.parent, "--out", tmp_path / "r.html"]), "mnistlab report needs")
    out = tmp_path / "run"
    result = cli(["train", "--data", tiny.train_csv, "--test-data", tiny.test_csv, "--hidden", "16", "--plot",
                  "--out", out])
    assert_one_line_error(result, "train --plot needs matplotlib")
    assert_one_line_error(cli(["augment-preview", "--out", tmp_path / "a.png"]), "augment-preview needs matplotlib")
    assert not out.exists() and not (tmp_path / "r.html").exists() and not (tmp_path / "a.png").exists()  # no work


ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_report_page_holds_every_committed_study_as_it_stands():
    import html
    import re

    page = (ROOT / "docs" / "report.html").read_text()
    folders = sorted(p.parent for p in (ROOT / "results").glob("*/table.csv"))
    studies = [folder for folder in folders if not has_no_runs(folder)]
    assert studies, "no committed study"
    sections = re.findall(r'<h2 id="([^"]+)">', page)
    assert set(sections) >= {s.name for s in studies}
    for folder in set(folders) - set(studies):  # a sweep still on its first runs: named as waiting
        assert re.search(rf"No run has ended yet in: [^<]*\b{folder.name}\b", page), folder.name
    for folder in studies:  # every configuration's mean, as table.csv has it now: the page is not stale
        section = page[page.index(f'<h2 id="{folder.name}">'):]
        section = section.split("<h2", 2)[1]  # up to the next section, or the end
        for row in read_study(folder).table:
            line = next(tr for tr in section.split("<tr>") if html.escape(row["label"]) in tr)
            if math.isfinite(row["mean"]):  # a configuration none of whose runs has ended has no mean yet
                assert f"{100 * row['mean']:.2f}%" in line, (folder.name, row["label"])


def test_the_committed_report_page_opens_in_chromium_with_every_image_loaded(browser):
    widths, _, errors = open_in_chromium(browser, ROOT / "docs" / "report.html")
    studies = [p.parent for p in (ROOT / "results").glob("*/table.csv") if not has_no_runs(p.parent)]
    assert len(widths) >= 2 * len(studies) + 3
    assert all(w > 300 for w in widths), widths
    assert errors == []


def test_the_architecture_analysis_reads_the_committed_run_records(tmp_path, capsys):
    import runpy

    results = shutil.copytree(ROOT / "results" / "architecture", tmp_path / "architecture",
                              ignore=shutil.ignore_patterns("*.safetensors"))  # as in a fresh clone
    runpy.run_path(str(ROOT / "docs" / "analysis" / "architecture.py"))["main"](results)
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(rows) == len(read_study(results).table) == 13
    by_label = {r[0]: r for r in rows}
    assert by_label["hidden 1600-400-200, batch_size 8, epochs 100"][1] == "1976k"  # 784*1600 + ... + 200*10
    assert all(r[-1] == "-" for r in rows)  # no weights, no logits


# The package's boundaries -----------------------------------------------------------------------------------


def _loaded(code):
    """The matplotlib and training modules loaded by running ``code`` in a fresh interpreter."""
    probe = (f"import sys; {code}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib' "
             "or m in ('mnistlab.trainer', 'mnistlab.run', 'mnistlab.nn', 'mnistlab.experiments')))")
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(SRC), "PATH": ""}).stdout.strip()


def test_the_report_package_imports_neither_matplotlib_nor_the_training_code_until_it_draws():
    assert _loaded("import mnistlab.report.cli, mnistlab.report.html, mnistlab.report.study, "
                   "mnistlab.report.model") == "[]"


def test_mnistlab_help_does_not_load_matplotlib():
    assert "matplotlib" not in _loaded("import mnistlab.cli; mnistlab.cli.build_parser()")


def test_train_plot_redraws_the_curves_after_every_epoch(cli, tiny, tmp_path, monkeypatch):
    from conftest import tiny_train_args
    import mnistlab.report as report

    drawn = []
    original = report.write_curves

    def spy(run_dir, out_path, format=None):
        drawn.append(len((run_dir / "history.csv").read_text().splitlines()) - 1)  # epochs on disk then
        return original(run_dir, out_path, format)

    monkeypatch.setattr(report, "write_curves", spy)
    result = cli(tiny_train_args(tiny, tmp_path / "run", "--epochs", "3", "--plot"))
    assert result.code == 0, result.err
    assert drawn == [1, 2, 3]
    png = (tmp_path / "run" / "curves.png").read_bytes()
    assert png[:4] == b"\x89PNG" and len(png) > 10_000
    assert not list((tmp_path / "run").glob(".*.tmp"))


# Hostile input (issue 21) -------------------------------------------------------------------------------------


def test_plot_refuses_an_out_suffix_that_disagrees_with_format_before_drawing(two_runs, tmp_path, cli):
    out = tmp_path / "x.svg"
    result = cli(["plot", *two_runs, "--out", out, "--format", "png"])
    assert_one_line_error(result, out, "svg", "png")
    assert not out.exists()
    assert cli(["plot", *two_runs, "--out", out, "--format", "svg"]).code == 0  # agreeing is fine
    assert out.read_bytes().startswith(b"<?xml")


def test_plot_of_a_run_with_no_finite_history_warns_naming_the_run_and_epochs(trained, tmp_path, cli):
    run = copy(trained, tmp_path)
    rows = (run / "history.csv").read_text().splitlines()
    header = rows[0].split(",")
    bad = [",".join(v if k in ("epoch", "lr", "seconds") else ("nan" if i % 2 else "inf")
                    for i, (k, v) in enumerate(zip(header, row.split(",")))) for row in rows[1:]]
    (run / "history.csv").write_text("\n".join([rows[0], *bad]) + "\n")
    result = cli(["plot", run, "--out", tmp_path / "c.png"])
    assert result.code == 0, result.err
    assert result.err.count("\n") == 1 and result.err.startswith("mnistlab: warning: ")
    assert str(run) in result.err and "epochs 1-2" in result.err and "nothing finite" in result.err
    assert (tmp_path / "c.png").is_file()


def test_output_errors_name_the_path_given_never_a_temporary_file(two_runs, study_dir, tmp_path, cli):
    result = cli(["plot", *two_runs, "--out", "/proc/x.png"])
    assert_one_line_error(result, "/proc/x.png")
    assert ".tmp" not in result.err
    (tmp_path / "rep").mkdir()
    result = cli(["report", study_dir.parent, "--out", f"{tmp_path / 'rep'}/"])
    assert_one_line_error(result, tmp_path / "rep", "is a folder")
    assert ".tmp" not in result.err and not any((tmp_path / "rep").iterdir())


def test_plot_says_which_folders_it_created_for_its_output(two_runs, tmp_path, cli):
    out = tmp_path / "a" / "b" / "c.png"
    result = cli(["plot", *two_runs, "--out", out])
    assert result.code == 0, result.err
    assert result.out.strip() == f"wrote {out} (created folders {tmp_path / 'a'}/, {tmp_path / 'a' / 'b'}/)"
