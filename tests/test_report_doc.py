"""docs/REPORT.md against the committed run records: its study tables, the accuracies of its summary,
every mean ± std it quotes and every difference it quotes with a standard error are what results/
gives, rounded once from the exact values. A wrong number in REPORT.md fails here."""

import contextlib
import csv
import functools
import io
import json
import math
import re
import runpy
from pathlib import Path

import numpy as np
import pytest

from mnistlab.report.records import read_study

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "REPORT.md"
MARKER = re.compile(r"<!-- table: results/([\w-]+) -->")
# The summary's rows name their sections; the studies each section reports on.
SECTION_STUDIES = {"§1": ["init"], "§2": ["batch_size"], "§3": ["architecture"],
                   "§4": ["stopping", "stopping_fast"], "§5": ["fine_tuning", "fine_tuning_readings"],
                   "§6": ["augmentation", "augmentation_student"], "§7": ["best", "best-single"],
                   "§9": ["cnn_recipe", "cnn"]}
PLUS_MINUS = re.compile(r"(\d+\.\d+) ± (\d+\.\d+)%")
PERCENT = re.compile(r"(?<![\d.±] )(?<![\d.])(\d+\.\d+)%")
CLAIM = re.compile(r"[+-]\d+\.\d+ points \(SE \d+\.\d+, t = -?\d+\.\d+, n = \d+ and \d+\)")
# Our seeds against the report's single run: claims.py prints "+0.88 (SE 0.04, t = 20.3, n = 5)".
AGAINST_REPORT = re.compile(r"([+-]\d+\.\d+) (?:points|epochs) (\(SE \d+\.\d+, t = -?\d+\.\d+, n = \d+\))")


def table_rows(study):
    return {row["label"]: row for row in read_study(ROOT / "results" / study).table}


def fixed(value, decimals):
    return f"{value:.{decimals}f}"


def report_tables(text):
    """(study, [cells of each row]) for every table REPORT.md marks as a copy of a study's table."""
    tables = []
    for match in MARKER.finditer(text):
        lines = text[match.end():].lstrip("\n").splitlines()
        assert lines[0].startswith("| configuration |"), f"no table after {match.group(0)}"
        rows = []
        for line in lines[2:]:
            if not line.startswith("|"):
                break
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        tables.append((match.group(1), rows))
    return tables


def check_table(study, rows):
    """Every row's repeats, mean ± std, report and difference, against table.csv."""
    committed = table_rows(study)
    assert rows, study
    for cells in rows:
        label = cells[0]
        assert label in committed, (study, label)
        row = committed[label]
        accuracies = row["accuracies"].split()
        assert cells[1:1 + len(accuracies)] == accuracies, (study, label)
        summary = cells[-6]
        if math.isnan(row["mean"]):  # a configuration with no run ended yet (a study still running)
            expected = "-"
        else:
            expected = fixed(row["mean"], 4) + ("" if math.isnan(row["std"]) else f" ± {fixed(row['std'], 4)}")
        assert summary.split(" (n=")[0] == expected, (study, label, summary, expected)
        difference = "" if math.isnan(row["difference"]) else f"{row['difference']:+.2f}"
        assert cells[-1] == difference, (study, label, cells[-1], difference)


def summary_rows(text):
    """The rows of the summary table ("In short"): (the sections they name, the row's text)."""
    start = text.index("**In short**")
    block = text[start:text.index("\n## ", start)]
    rows = [line for line in block.splitlines() if line.startswith("| ") and "---" not in line][1:]
    return [(re.findall(r"§\d", row), row) for row in rows]


def accuracies_of(studies):
    """Every test accuracy (mean, std, each repeat, the report's number) the studies' table.csv files hold,
    as fractions; for a folder of single runs, their test and validation accuracies."""
    means, stds, repeats = [], [], []
    for study in studies:
        folder = ROOT / "results" / study
        if not (folder / "table.csv").is_file():  # single runs: their metrics.json files
            for metrics in sorted(folder.glob("*/metrics.json")):
                values = json.loads(metrics.read_text())
                repeats += [values["test_accuracy"], values["val_accuracy"]]
            continue
        if len((folder / "runs.csv").read_text().splitlines()) < 2:  # a sweep whose first runs are going
            continue
        for row in table_rows(study).values():
            means.append(row["mean"])
            stds.append(row["std"])
            repeats += [float(a) for a in row["accuracies"].split()]
            if row["report_value"] is not None:
                repeats.append(row["report_value"])
        repeats += committee_accuracies(folder)
    return means, stds, repeats


@functools.cache
def committees_script():
    return runpy.run_path(str(ROOT / "docs" / "analysis" / "committees.py"))


def committee_accuracies(folder):
    """The accuracy of each configuration's committee (the mean of its members' committed test-set
    probabilities, as docs/analysis/committees.py computes it), for a study that keeps them."""
    committees = committees_script()
    found = []
    for config in sorted(p for p in (folder / committees["PROBABILITIES"]).glob("*") if p.is_dir()):
        members, labels = [], None
        for path in sorted(config.glob("seed*.npz")):
            with np.load(path) as f:
                members.append(f["probabilities"])
                labels = f["labels"]
        if len(members) > 1:
            found.append(committees["committee_accuracy"](members, labels))
    return found


def check_summary_row(sections, row):
    studies = [study for section in sections for study in SECTION_STUDIES[section]]
    assert studies or "%" not in row, f"a summary row with figures names no section: {row[:60]}"
    means, stds, repeats = accuracies_of(studies)
    pairs = {(fixed(100 * m, d), fixed(100 * s, d)) for m, s in zip(means, stds) for d in (1, 2)}
    singles = {fixed(100 * v, d) for v in means + repeats for d in (1, 2)}
    for mean, std in PLUS_MINUS.findall(row):
        assert (mean, std) in pairs, f"{mean} ± {std}% is no mean ± std of {studies}"
    for value in PERCENT.findall(PLUS_MINUS.sub("", row)):
        assert value in singles, f"{value}% is no accuracy of {studies}"


def claims_printed():
    """What docs/analysis/claims.py prints from the committed results."""
    main = runpy.run_path(str(ROOT / "docs" / "analysis" / "claims.py"))["main"]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        main(ROOT / "results")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def text():
    return REPORT.read_text()


def test_every_study_table_in_the_report_is_its_committed_table_csv_rounded_once(text):
    tables = report_tables(text)
    assert {study for study, _ in tables} >= {"init", "batch_size", "architecture", "stopping", "stopping_fast",
                                              "fine_tuning", "augmentation", "best"}
    for study, rows in tables:
        check_table(study, rows)


def test_every_accuracy_in_the_summary_is_a_committed_mean_std_or_repeat_of_its_sections(text):
    rows = summary_rows(text)
    assert len(rows) >= 7
    for sections, row in rows:
        check_summary_row(sections, row)


def test_every_mean_and_std_quoted_anywhere_in_the_report_is_a_committed_one(text):
    means, stds, _ = accuracies_of([study for studies in SECTION_STUDIES.values() for study in studies])
    pairs = {(fixed(100 * m, d), fixed(100 * s, d)) for m, s in zip(means, stds) for d in (1, 2)}
    quoted = PLUS_MINUS.findall(re.sub(r"\s+", " ", text))  # a pair may wrap across lines
    assert len(quoted) >= 20
    for mean, std in quoted:
        assert (mean, std) in pairs, f"{mean} ± {std}% is no committed mean ± std"


def test_every_difference_quoted_with_its_standard_error_is_what_the_analysis_script_prints(text):
    printed = claims_printed()
    claims = CLAIM.findall(text.replace("−", "-"))
    assert len(claims) >= 10
    for claim in claims:
        assert claim in printed, claim


def test_every_difference_from_the_reports_single_run_is_what_the_analysis_script_prints(text):
    printed = claims_printed()
    quoted = AGAINST_REPORT.findall(re.sub(r"\s+", " ", text.replace("−", "-")))
    assert len(quoted) >= 10
    for difference, evidence in quoted:
        assert f"{difference} {evidence}" in printed, f"{difference} {evidence}"
    difference, evidence = quoted[0]  # the same check, one unit off in the last digit, must fail
    assert f"{float(difference) + 0.01:+.2f} {evidence}" not in printed


def test_the_check_catches_a_wrong_mean_a_wrong_summary_figure_and_a_wrong_claim(text):
    study, rows = report_tables(text)[1]  # batch size
    wrong = [cells[:] for cells in rows]
    mean, std = wrong[0][-6].split(" ± ")
    wrong[0][-6] = f"{float(mean) + 0.0001:.4f} ± {std}"
    with pytest.raises(AssertionError):
        check_table(study, wrong)
    sections, row = next((sections, row) for sections, row in summary_rows(text)
                         if PERCENT.findall(PLUS_MINUS.sub("", row)))
    value = PERCENT.findall(PLUS_MINUS.sub("", row))[0]
    with pytest.raises(AssertionError):
        check_summary_row(sections, row.replace(value + "%", f"{float(value) + 0.01:.2f}%", 1))
    claim = CLAIM.findall(text.replace("−", "-"))[0]
    sign, digits = claim[0], claim[1:5]  # +0.06 -> +0.07
    assert claim in claims_printed()
    assert sign + f"{float(digits) + 0.01:.2f}" + claim[5:] not in claims_printed()


def test_each_patience_run_repeats_its_overfit_twins_epochs_and_stops_where_claims_says():
    """REPORT 5b reads where patience stops off the overfit runs' histories: a run of the same seed under
    another rule trains the same epochs up to its own stop. Every committed patience run must bear that out."""
    patience_stop = runpy.run_path(str(ROOT / "docs" / "analysis" / "claims.py"))["patience_stop"]
    runs = ROOT / "results" / "fine_tuning_readings" / "runs"
    checked = 0
    for folder in sorted(runs.glob("*stop=patience/seed*")):
        twin = Path(str(folder).replace("stop=patience", "stop=overfit"))
        if not (folder / "metrics.json").is_file() or not (twin / "metrics.json").is_file():
            continue
        with open(folder / "history.csv", newline="") as f:
            ours = list(csv.DictReader(f))
        with open(twin / "history.csv", newline="") as f:
            theirs = list(csv.DictReader(f))
        for a, b in zip(ours, theirs):  # every column but the seconds
            assert {k: v for k, v in a.items() if k != "seconds"} == \
                {k: v for k, v in b.items() if k != "seconds"}, (folder, a["epoch"])
        stop = patience_stop(theirs)
        if stop is None:  # the twin ended first: patience went on at least as long
            assert len(ours) >= len(theirs), folder
        else:
            assert len(ours) == stop, folder
        checked += 1
    assert checked >= 1


def test_patience_windows_spanning_an_epoch_are_read_off_the_histories():
    """REPORT 5b quotes which patience windows k would stop around the report's epoch; on a history whose
    validation loss bottoms out at epoch 5, k stops at 5 + k, and a history too short to tell gives None."""
    claims = runpy.run_path(str(ROOT / "docs" / "analysis" / "claims.py"))
    history = [{"val_loss": v} for v in (5, 4, 3, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)]
    assert [claims["patience_stop"](history, k) for k in (1, 3, 9, 10)] == [6, 8, 14, None]
    assert claims["patience_windows_spanning"]([history], 8) == {3: [8]}
    later = [{"val_loss": v} for v in (5, 4, 3, 2, 1.5, 1, 2, 3, 4, 5, 6, 7, 8, 9)]  # lowest at 6
    assert claims["patience_windows_spanning"]([history, later], 9) == {3: [8, 9], 4: [9, 10]}
    assert claims["patience_windows_spanning"]([history], 20) is None
