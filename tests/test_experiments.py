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
from mnistlab.experiments.study import QUICK_REPEATS

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
STUDIES = sorted(EXPERIMENTS.glob("*.toml"))


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_study(folder, tiny, body, name="tiny"):
    """A study file over the tiny CSV data; ``body`` adds [[grid]], [report] and more."""
    path = Path(folder) / f"{name}.toml"
    path.write_text(f'name = "{name}"\nrepeats = 2\n[base]\ndata = "{tiny.train_csv}"\n'
                    f'test_data = "{tiny.test_csv}"\nhidden = [16]\nepochs = 2\naugment = "none"\n' + body)
    return path


def test_the_shipped_studies_are_the_reports_five_and_more():
    names = {p.stem for p in STUDIES}
    assert {"init", "batch_size", "architecture", "stopping", "fine_tuning"} <= names


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_shipped_study_runs_quick(path, tmp_path):
    out, rows = run_study(path, tmp_path / "out", jobs=2, quick=True, log=lambda m: None)
    study = load_study(path)
    assert len(rows) == min(study.repeats, QUICK_REPEATS) * len(study.configurations())  # every configuration
    assert {r["status"] for r in rows} <= {"finished", "diverged"}
    table = read_csv(out / "table.csv")
    assert [t["config"] for t in table] == [c.key for c in study.configurations()]
    assert all(t["report"] == "" for t in table)  # a smoke test is not compared with the report
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


def test_a_study_file_can_name_its_configurations_for_the_tables(tiny, tmp_path):
    study = write_study(tmp_path, tiny, '[[grid]]\nbatch_size = [16, 32]\n[labels]\n"batch_size=16" = "small batches"\n')
    out, _ = run_study(study, tmp_path / "out", jobs=1, log=lambda m: None)
    labels = {t["config"]: t["label"] for t in read_csv(out / "table.csv")}
    assert labels == {"batch_size=16": "small batches", "batch_size=32": "batch_size 32"}
    assert "| small batches |" in (out / "table.md").read_text()


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
    ('[[grid]]\nbatch_size = [16]\n[labels]\n"batch_size=7" = "seven"\n', "batch_size=7"),
    ('[[grid]]\nbatch_size = [16]\n[labels]\n"batch_size=16" = ""\n', "[labels]"),
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


# Hostile input (issue 21): each case ends in one line and exit 2, or a result, never a traceback or
# a run that is never redone.

def test_a_grid_of_paths_gets_one_flat_readable_folder_per_configuration_and_full_tables(tiny, cli, tmp_path,
                                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "train.csv").write_bytes(tiny.train_csv.read_bytes())
    study = write_study(tmp_path, tiny, f'[[grid]]\ndata = ["{tiny.train_csv}", "csv/train.csv"]\n')
    study.write_text(study.read_text().replace("repeats = 2", "repeats = 1"))
    result = cli(["sweep", study, "--out", "out", "--jobs", "2", "--no-progress"])
    assert result.code == 0, result.err
    runs = read_csv(tmp_path / "out" / "runs.csv")
    assert sorted(r["config"] for r in runs) == sorted([f"data={tiny.train_csv}", "data=csv/train.csv"])
    assert all(r["status"] == "finished" for r in runs)
    folders = sorted(p.name for p in (tmp_path / "out" / "runs").iterdir())
    assert [f.split("~")[0] for f in folders] == ["data=mnist_train.csv", "data=train.csv"], folders
    for r in runs:  # each row's run_dir is that run's flat folder
        assert len(Path(r["run_dir"]).parts) == 3 and (tmp_path / "out" / r["run_dir"] / "metrics.json").is_file()
    table = (tmp_path / "out" / "table.md").read_text()
    assert "2 runs ended" in table and "pending" not in table


def test_a_long_grid_value_gets_a_bounded_folder_name_and_runs(tiny, tmp_path):
    study = write_study(tmp_path, tiny, "[[grid]]\nhidden = [" + ", ".join(["[4]"] * 1) + ", [" +
                        ", ".join(["4"] * 130) + "]]\n")
    study.write_text(study.read_text().replace("repeats = 2", "repeats = 1").replace("epochs = 2", "epochs = 1"))
    out, rows = run_study(study, tmp_path / "out", jobs=2, log=lambda m: None)
    assert sorted(r["status"] for r in rows) in (["finished", "finished"], ["diverged", "finished"]), rows
    names = [p.name for p in (out / "runs").iterdir()]
    assert "hidden=4" in names  # a safe short value keeps its name
    long = [n for n in names if n != "hidden=4"][0]
    assert len(long) <= 120 and long.startswith("hidden=4-4-4") and "~" in long


def test_every_committed_study_table_rebuilds_byte_for_byte(cli, tmp_path):
    results = Path(__file__).resolve().parents[1] / "results"
    studies = [p.parent for p in sorted(results.glob("*/study.json"))]
    assert len(studies) >= 8
    for folder in studies:
        copy = tmp_path / folder.name
        for record in list(folder.glob("runs/*/*/metrics.json")) + list(folder.glob("runs/*/*/failed.json")):
            target = copy / record.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(record.read_bytes())
        study = EXPERIMENTS / f"{folder.name}.toml"
        result = cli(["sweep", study, "--out", copy, "--table"])
        assert result.code == 0, result.err
        for name in ("runs.csv", "table.csv", "table.md", "study.json"):
            assert (copy / name).read_bytes() == (folder / name).read_bytes(), (folder.name, name)


@pytest.mark.parametrize("run", ["fine_tuning/runs/hidden=100-100+batch_size=64/seed0"])
def test_todays_code_retrains_a_committed_runs_first_epochs(run, tmp_path):
    """The committed studies rest on the code that ran them (the MLP studies on code from before the typed
    layers). Retrained from its config.toml on the bundled MNIST, a committed run's first two epochs come
    back as its history.csv has them, up to float rounding (another CPU's BLAS kernels may round
    otherwise), so a change to the maths of training shows here and not in a rerun months later."""
    import tomllib

    import mnistlab
    from mnistlab.runfolder import read_history

    folder = Path(__file__).resolve().parents[1] / "results" / run
    settings = tomllib.loads((folder / "config.toml").read_text())
    assert settings["schedule"] == "constant" and settings["stop"] == "early"  # nothing reads the epoch limit
    new = mnistlab.train(out=tmp_path / "run", log=None, **{**settings, "epochs": 2}).history
    committed = read_history(folder / "history.csv")[:2]
    for ours, theirs in zip(new, committed, strict=True):
        for key in ("train_loss", "val_loss"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-4), (ours["epoch"], key)
        for key in ("train_accuracy", "val_accuracy"):
            assert ours[key] == pytest.approx(theirs[key], abs=2e-4), (ours["epoch"], key)


@pytest.fixture(scope="module")
def finished_study(tiny, tmp_path_factory):
    """A finished study of one configuration and 2 seeds: (study file, results folder). Copy before use."""
    folder = tmp_path_factory.mktemp("finished")
    study = write_study(folder, tiny, "[[grid]]\nbatch_size = [16]\n")
    out, _ = run_study(study, folder / "out", jobs=2, log=lambda m: None)
    return study, out


def copy_study(finished_study, tmp_path):
    import shutil
    study, out = finished_study
    shutil.copytree(out, tmp_path / "out")
    return study, tmp_path / "out"


@pytest.mark.parametrize("name, text", [
    ("metrics.json", "[1, 2]"), ("metrics.json", "{}"), ("metrics.json", '{"epochs": "x", "stop_reason": "s"}'),
    ("metrics.json", '{"epochs": 2, "stop_reason": "max epochs", "test_accuracy": "high"}'),
    ("failed.json", "[]"), ("failed.json", "nul"),
])
def test_table_counts_a_run_with_damaged_records_as_damaged_and_tabulates_the_others(finished_study, cli,
                                                                                     tmp_path, name, text):
    study, out = copy_study(finished_study, tmp_path)
    damaged = out / "runs" / "batch_size=16" / "seed1"
    if name == "failed.json":
        (damaged / "metrics.json").unlink()
    (damaged / name).write_text(text)
    result = cli(["sweep", study, "--out", out, "--table"])
    assert "Traceback" not in result.err and result.code == 1, (result.code, result.err)
    assert "runs/batch_size=16/seed1" in result.out and name in result.out  # the log names it
    rows = {r["seed"]: r for r in read_csv(out / "runs.csv")}
    assert rows["0"]["status"] == "finished" and rows["1"]["status"] == "damaged" and name in rows["1"]["error"]
    table = (out / "table.md").read_text()
    assert "damaged" in table and "runs/batch_size=16/seed1" in table
    assert read_csv(out / "table.csv")[0]["finished"] == "1"


def test_a_truncated_metrics_file_is_not_finished_and_the_next_sweep_redoes_it(finished_study, tmp_path):
    study, out = copy_study(finished_study, tmp_path)
    metrics = out / "runs" / "batch_size=16" / "seed1" / "metrics.json"
    whole = read_json_text = metrics.read_text()
    metrics.write_text(whole[:30])
    lines = []
    _, rows = run_study(study, out, jobs=1, log=lines.append)
    assert "1 finished already, 1 to run" in next(line for line in lines if "finished already" in line)
    assert [r["status"] for r in sorted(rows, key=lambda r: r["seed"])] == ["finished", "finished"]
    import json
    assert json.loads(metrics.read_text())["test_accuracy"] == json.loads(read_json_text)["test_accuracy"]


@pytest.mark.parametrize("name", ["..", ".", "a/b", ".hidden", "x" * 101])
def test_a_study_name_that_is_not_a_plain_folder_name_is_refused(tiny, cli, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    study = write_study(tmp_path, tiny, "").read_text().replace('name = "tiny"', f"name = {name!r}")
    (tmp_path / "s.toml").write_text(study.replace("'", '"'))
    result = cli(["sweep", tmp_path / "s.toml", "--jobs", "1"])
    assert_one_line_error(result, "name", "plain folder name")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml", "tiny.toml"]  # nothing written


@pytest.mark.parametrize("text, fragment", [
    ("repeats = 100000000\n", "from 1 to 100"),
    ("repeats = 300000\n", "column of table.md"),
    ("seed = 7\n", "seeds come from repeats"),
    ("[[grid]]\n" + "\n".join(f"{k} = [{', '.join(['1'] * 10)}]" for k in
                              ("epochs", "batch_size", "stop_k", "step_size", "augment_copies")) + "\n",
     "configurations"),
])
def test_absurd_repeats_a_base_seed_and_huge_grids_are_refused_up_front(tiny, cli, tmp_path, text, fragment):
    study = write_study(tmp_path, tiny, "")
    body = study.read_text()
    if text.startswith("repeats"):
        body = body.replace("repeats = 2\n", text)
    elif text.startswith("seed"):
        body = body.replace("[base]\n", "[base]\n" + text)
    else:
        body += text
    study.write_text(body)
    result = cli(["sweep", study, "--out", tmp_path / "out"])
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "out").exists()


def test_a_sweep_reads_each_run_folder_once_and_then_only_the_run_that_ended(tiny, tmp_path, monkeypatch):
    from mnistlab.experiments import tables
    reads = []
    original = tables.read_row
    monkeypatch.setattr(tables, "read_row", lambda run_dir, *a: reads.append(run_dir) or original(run_dir, *a))
    study = write_study(tmp_path, tiny, "[[grid]]\nbatch_size = [16, 32]\n")
    run_study(study, tmp_path / "out", jobs=1, log=lambda m: None)
    assert len(reads) == 4 + 4  # every folder at the start, then each run as it ends


def test_a_second_sweep_into_a_busy_folder_says_who_holds_it_and_exits_2(tiny, cli, tmp_path):
    study = write_study(tmp_path, tiny, "[[grid]]\nbatch_size = [4]\nepochs = [300]\n")
    study.write_text(study.read_text().replace("repeats = 2", "repeats = 1"))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    first = subprocess.Popen([sys.executable, "-m", "mnistlab.cli", "sweep", str(study), "--out", str(out),
                              "--jobs", "1", "--no-progress"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(out.glob("runs/*/*/history.csv")):
            time.sleep(0.05)
        second = cli(["sweep", study, "--out", out, "--jobs", "1", "--no-progress"])
        assert_one_line_error(second, out, "another sweep", f"pid {first.pid}")
        assert not list(out.glob("runs/*/*/failed.json"))
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    # A killed holder leaves no stale lock: the next sweep takes over and resumes the run.
    study.write_text(study.read_text().replace("epochs = [300]", "epochs = [2]"))
    third = cli(["sweep", study, "--out", out, "--jobs", "1", "--no-progress"])
    assert third.code in (0, 1) and "another sweep" not in third.err, third.err


def test_jobs_beyond_the_runs_to_do_are_capped_and_said_so(tiny, tmp_path):
    study = write_study(tmp_path, tiny, "")
    lines = []
    run_study(study, tmp_path / "out", jobs=1000, log=lines.append)
    assert "2 to run with 2 worker(s) (--jobs 1000 capped at the runs to do), 1 BLAS thread each" in lines[0]


def test_the_cores_are_shared_out_among_the_runs_at_once_unless_threads_says_otherwise(tiny, tmp_path):
    from mnistlab.experiments.runner import threads_per_run

    assert [threads_per_run(jobs, cores=8) for jobs in (1, 2, 3, 8, 20)] == [8, 4, 2, 1, 1]
    assert threads_per_run(1, "dask", cores=8) == 1 and threads_per_run(4, threads=3, cores=8) == 3
    study = write_study(tmp_path, tiny, "")
    lines = []
    out, rows = run_study(study, tmp_path / "out", jobs=1, log=lines.append, threads=3)
    assert "2 to run with 1 worker(s), 3 BLAS threads each" in lines[0]
    for r in rows:  # what each run was given is in its config.toml
        assert "threads = 3\n" in (out / r["run_dir"] / "config.toml").read_text()


def test_a_sweep_refuses_threads_below_one_in_one_line(tiny, cli, tmp_path):
    result = cli(["sweep", write_study(tmp_path, tiny, ""), "--threads", "0", "--out", tmp_path / "o"])
    assert_one_line_error(result, "--threads 0: must be a positive integer")
    assert not (tmp_path / "o").exists()


def test_an_unreachable_dask_scheduler_is_one_line_naming_it(tiny, cli, tmp_path, monkeypatch):
    pytest.importorskip("dask.distributed")
    from mnistlab.experiments import runner
    monkeypatch.setattr(runner, "DASK_CONNECT_TIMEOUT", "2s", raising=False)
    study = write_study(tmp_path, tiny, "")
    result = cli(["sweep", study, "--out", tmp_path / "out", "--backend", "dask", "--scheduler",
                  "tcp://127.0.0.1:1", "--no-progress"])
    assert_one_line_error(result, "cannot reach the Dask scheduler at tcp://127.0.0.1:1")
    assert ": :" not in result.err


def test_a_quick_table_is_labelled_a_smoke_test_without_the_reports_numbers(tiny, cli, tmp_path):
    study = write_study(tmp_path, tiny, '[[grid]]\nbatch_size = [16]\n[report]\n"batch_size=16" = 0.97\n')
    title = 'title = "100-100, 100 epochs, 5 seeds"'
    study.write_text(study.read_text().replace('name = "tiny"', f'name = "tiny"\n{title}'))
    out, _ = run_study(study, tmp_path / "quick", jobs=2, quick=True, log=lambda m: None)
    table = (out / "table.md").read_text()
    assert "smoke test" in table.splitlines()[0] and "100 epochs" not in table.splitlines()[0]
    assert "report" not in table.split("\n|")[1] and "0.97" not in table
    assert read_csv(out / "table.csv")[0]["report"] == ""


def test_table_quick_writes_no_data_and_never_into_a_full_studys_folder(finished_study, cli, tmp_path):
    study, out = copy_study(finished_study, tmp_path)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = cli(["sweep", study, "--out", out, "--table", "--quick"])
    assert_one_line_error(result, out, "full study")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    missing = tmp_path / "none"
    assert_one_line_error(cli(["sweep", study, "--out", missing, "--table", "--quick"]), missing)
    assert not missing.exists()


def test_a_quick_folder_written_before_study_json_said_quick_is_still_taken_as_quick(tiny, cli, tmp_path):
    study = write_study(tmp_path, tiny, "")
    old = tmp_path / "tiny-quick"
    (old / "quick-data").mkdir(parents=True)
    (old / "study.json").write_text('{"name": "tiny"}\n')  # as older versions wrote it
    assert cli(["sweep", study, "--out", old, "--table", "--quick"]).code == 0
    assert_one_line_error(cli(["sweep", study, "--out", old, "--table"]), old, "smoke test")
