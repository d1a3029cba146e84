"""The sweep runner: every shipped study as a smoke test, resuming after SIGKILL, failed and diverged runs
as results, tables rebuilt from disk, and the same sweep through a Dask LocalCluster."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SRC, assert_one_line_error
from mnistlab.experiments import load_study, run_study

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
STUDIES = sorted(EXPERIMENTS.glob("*.toml"))


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_study(folder, tiny, body, name="tiny"):
    """A study file over the tiny CSV data; ``body`` adds [[grid]], [report] and more."""
    path = Path(folder) / f"{name}.toml"
    path.write_text(f'name = "{name}"\nrepeats = 2\n[base]\ndata = "{tiny.train_csv}"\n'
                    f'test_data = "{tiny.test_csv}"\nhidden = [16]\nepochs = 2\n' + body)
    return path


def test_the_shipped_studies_are_the_reports_five_and_more():
    names = {p.stem for p in STUDIES}
    assert {"init", "batch_size", "architecture", "stopping", "fine_tuning"} <= names


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_shipped_study_runs_quick(path, tmp_path):
    out, rows = run_study(path, tmp_path / "out", jobs=2, quick=True, log=lambda m: None)
    study = load_study(path)
    assert len(rows) == 2 * len(study.configurations())  # every configuration, 2 repeats
    assert {r["status"] for r in rows} <= {"finished", "diverged"}
    table = read_csv(out / "table.csv")
    assert [t["config"] for t in table] == [c.key for c in study.configurations()]
    for t in table:  # the report's number sits beside ours wherever the study gives one
        assert t["report"] == str(study.report.get(t["config"], ""))
    assert (out / "table.md").read_text().count("\n|") == len(table) + 2  # header, rule, a row each


def test_the_init_study_ships_the_reports_formulas_beside_the_standard_ones():
    keys = [c.key for c in load_study(EXPERIMENTS / "init.toml").configurations()]
    assert {"init=he", "init=xavier", "init=he_report", "init=xavier_report", "init=zero"} <= set(keys)


def test_a_sweep_writes_one_row_per_run_with_the_varied_keys_and_seeds(tiny, tmp_path):
    study = write_study(tmp_path, tiny, '[[grid]]\nbatch_size = [16, 32]\n[report]\n"batch_size=16" = 0.9\n')
    out, rows = run_study(study, tmp_path / "out", jobs=2, log=lambda m: None)
    runs = read_csv(out / "runs.csv")
    assert len(runs) == 4
    assert {(r["batch_size"], r["seed"]) for r in runs} == {("16", "0"), ("16", "1"), ("32", "0"), ("32", "1")}
    for r in runs:
        metrics_file = out / r["run_dir"] / "metrics.json"
        assert metrics_file.is_file() and (out / r["run_dir"] / "model.safetensors").is_file()
        assert 0 < float(r["test_accuracy"]) <= 1 and r["epochs"] == "2" and r["status"] == "finished"
    seeds = {r["seed"]: (out / r["run_dir"] / "model.safetensors").read_bytes()
             for r in runs if r["batch_size"] == "16"}
    assert seeds["0"] != seeds["1"]  # the repeats differ by seed
    table = {t["config"]: t for t in read_csv(out / "table.csv")}
    accuracies = [float(r["test_accuracy"]) for r in runs if r["batch_size"] == "16"]
    assert float(table["batch_size=16"]["mean"]) == pytest.approx(sum(accuracies) / 2, abs=1e-5)
    assert float(table["batch_size=16"]["difference"]) == pytest.approx(100 * (sum(accuracies) / 2 - 0.9), abs=0.01)


def test_a_varied_setting_named_like_a_result_keeps_both_columns(tiny, tmp_path):
    # The plateau rule with a huge tolerance stops every run after its 2-epoch window, before epochs = 4.
    study = write_study(tmp_path, tiny, 'stop = "plateau"\nplateau_window = 2\nplateau_tolerance = 100.0\n'
                                        "[[grid]]\nepochs = [4]\n")
    out, _ = run_study(study, tmp_path / "out", jobs=1, log=lambda m: None)
    for name in ("runs.csv", "table.csv"):
        header = (out / name).read_text().splitlines()[0].split(",")
        assert len(header) == len(set(header)) and "config_epochs" in header
    runs = read_csv(out / "runs.csv")
    assert [(r["config_epochs"], r["epochs"]) for r in runs] == [("4", "2"), ("4", "2")]
    assert [t["config_epochs"] for t in read_csv(out / "table.csv")] == ["4"]


def test_rerunning_a_finished_sweep_runs_nothing_and_table_rebuilds_the_same_files(tiny, tmp_path):
    study = write_study(tmp_path, tiny, "[[grid]]\nbatch_size = [16]\n")
    out, _ = run_study(study, tmp_path / "out", jobs=1, log=lambda m: None)
    model = out / "runs" / "batch_size=16" / "seed0" / "model.safetensors"
    before = {p.name: p.read_bytes() for p in out.glob("*.csv")} | {"mtime": model.stat().st_mtime_ns}
    lines = []
    run_study(study, out, jobs=1, log=lines.append)
    assert "2 finished already, 0 to run" in lines[0]
    (out / "table.csv").unlink()
    run_study(study, out, table_only=True)
    assert {p.name: p.read_bytes() for p in out.glob("*.csv")} | {"mtime": model.stat().st_mtime_ns} == before


def test_a_failed_run_is_recorded_with_its_error_and_the_others_go_on(tiny, cli, tmp_path):
    study = write_study(tmp_path, tiny, f'[[grid]]\ninit_from = ["{tmp_path}/missing.safetensors"]\n'
                                        '[[grid]]\nbatch_size = [16]\n')
    result = cli(["sweep", study, "--out", tmp_path / "out", "--jobs", "2", "--no-progress"])
    assert result.code == 1  # some run failed
    runs = read_csv(tmp_path / "out" / "runs.csv")
    failed = [r for r in runs if r["status"] == "failed"]
    assert len(failed) == 2 and all("missing.safetensors" in r["error"] for r in failed)
    assert sum(r["status"] == "finished" for r in runs) == 2
    assert "failed" in (tmp_path / "out" / "table.md").read_text()


def test_a_diverging_run_is_a_result_not_a_crash(tiny, tmp_path):
    # A sane rate for epoch 1, then multiplied by 1e20: the weights overflow in epoch 2.
    study = write_study(tmp_path, tiny, 'schedule = "step"\nstep_size = 1\n[[grid]]\ngamma = [1e20]\n')
    out, rows = run_study(study, tmp_path / "out", jobs=1, log=lambda m: None)
    assert [r["status"] for r in rows] == ["diverged", "diverged"]
    assert "diverged (epoch 2, val " in (out / "table.md").read_text()
    assert "overflow" not in (out / "table.md").read_text().lower()


@pytest.mark.parametrize("text, fragment", [
    ("repeats = 0\n", "repeats"),
    ("[[grid]]\nhiddn = [[16]]\n", "hiddn"),
    ("[[grid]]\nbatch_size = [-1]\n", "batch_size"),
    ("[[grid]]\nseed = [1, 2]\n", "seed"),
    ('[report]\n"batch_size=7" = 0.9\n', "batch_size=7"),
    ("colour = 3\n", "colour"),
    ("[[grid\n", "not valid TOML"),
])
def test_a_bad_study_file_is_one_line_and_exit_2(tiny, cli, tmp_path, text, fragment):
    study = write_study(tmp_path, tiny, text)
    result = cli(["sweep", study, "--out", tmp_path / "out"])
    assert_one_line_error(result, study, fragment)
    assert not (tmp_path / "out").exists()


def test_killing_a_sweep_with_sigkill_loses_no_finished_run(tiny, tmp_path):
    # One slow run (started first: runs start longest first) takes one worker; the other worker ends
    # quick runs one after another. The kill lands after two quick ones, with the slow one mid-way.
    study = write_study(tmp_path, tiny, "[[grid]]\nbatch_size = [16, 32, 64]\nepochs = [1]\n"
                                        "[[grid]]\nbatch_size = [4]\nepochs = [150]\n")
    study.write_text(study.read_text().replace("repeats = 2", "repeats = 1"))
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "mnistlab.cli", "sweep", str(study), "--out", str(out), "--jobs", "2",
            "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("runs/*/*/metrics.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its workers, mid-run
    proc.wait()
    finished = {p: p.read_bytes() for p in out.glob("runs/*/*/metrics.json")}
    assert len(finished) in (2, 3), finished
    slow = "batch_size=4+epochs=150"
    assert slow not in {p.parent.parent.name for p in finished}, "the kill should land while the slow run is going"
    recorded = {r["run_dir"] for r in read_csv(out / "runs.csv") if r["status"] == "finished"}
    assert recorded <= {str(p.parent.relative_to(out)) for p in finished}

    _, rows = run_study(study, out, jobs=2, log=lambda m: None)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"finished"}
    for path, content in finished.items():  # finished runs were kept, not rerun
        assert path.read_bytes() == content
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_the_same_sweep_runs_on_a_dask_local_cluster(tiny, tmp_path):
    pytest.importorskip("dask.distributed")
    study = write_study(tmp_path, tiny, "[[grid]]\nbatch_size = [16, 32]\n")
    local, local_rows = run_study(study, tmp_path / "local", jobs=2, log=lambda m: None)
    dask, dask_rows = run_study(study, tmp_path / "dask", jobs=2, backend="dask", log=lambda m: None)
    assert len(dask_rows) == 4  # pure=False: all four runs, though two pairs differ only by seed inside
    key = lambda r: (r["config"], r["seed"])  # noqa: E731
    for a, b in zip(sorted(local_rows, key=key), sorted(dask_rows, key=key)):
        assert (a["config"], a["seed"], a["test_accuracy"]) == (b["config"], b["seed"], b["test_accuracy"])


def test_a_shipped_study_is_found_by_name_and_an_unknown_name_says_which_exist(cli, tmp_path):
    assert load_study("batch_size").path == str(EXPERIMENTS / "batch_size.toml")
    assert_one_line_error(cli(["sweep", "batch_sizes", "--out", tmp_path / "out"]), "batch_sizes", "init")


def test_a_study_that_varies_nothing_runs_its_base_config_as_configuration_base(tiny, tmp_path):
    study = write_study(tmp_path, tiny, '[report]\n"base" = 0.5\n')
    out, rows = run_study(study, tmp_path / "out", jobs=1, log=lambda m: None)
    assert [(r["config"], r["seed"]) for r in rows] == [("base", 0), ("base", 1)]
    assert (out / "runs" / "base" / "seed1" / "metrics.json").is_file()
    assert read_csv(out / "table.csv")[0]["report"] == "0.5"


def test_runs_start_longest_first_so_no_long_run_is_left_alone_at_the_end(tiny, tmp_path):
    study = write_study(tmp_path, tiny, "[[grid]]\nhidden = [[4], [64], [16]]\n")
    lines = []
    run_study(study, tmp_path / "out", jobs=1, log=lines.append)  # one worker: finish order = start
    done = [line.split()[1] for line in lines if line.startswith("[")]
    assert done == ["hidden=64", "hidden=64", "hidden=16", "hidden=16", "hidden=4", "hidden=4"]


def test_table_md_rounds_mean_and_std_once_from_the_exact_values_table_csv_keeps(tiny, tmp_path):
    import json
    import statistics

    from mnistlab.experiments.tables import write_tables
    study = load_study(write_study(tmp_path, tiny, "[[grid]]\nbatch_size = [64]\n").parent / "tiny.toml")
    study.repeats = 5
    accuracies = [0.9502, 0.9514, 0.9531, 0.9518, 0.9497]  # the batch-size study's batch 64: std 0.0013463
    specs = study.runs(5)
    for spec, accuracy in zip(specs, accuracies):
        folder = tmp_path / "out" / spec.run_dir
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({"test_accuracy": accuracy, "val_accuracy": accuracy,
                                                         "epochs": 2, "stop_reason": "max epochs (2)",
                                                         "seconds": 1.0}))
    write_tables(study, tmp_path / "out", specs)
    row = read_csv(tmp_path / "out" / "table.csv")[0]
    assert float(row["std"]) == statistics.stdev(accuracies)  # exact, not a 5-digit copy (0.00135)
    assert "| 0.9512 ± 0.0013 |" in (tmp_path / "out" / "table.md").read_text()  # not 0.0014
