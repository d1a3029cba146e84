"""Training runs end to end: the run folder, `mnistlab test` agreeing with metrics.json, reproducing a
run from its config.toml, resuming an interrupted run exactly, divergence, and fine-tuning."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import (SRC, assert_one_line_error, read_history, read_json, run_subprocess, tiny_cnn_args,
                      tiny_train_args, without_seconds)
from mnistlab.config import load_toml
from mnistlab.errors import InputError
from mnistlab.run import RUN_FILES, claim_folder
from mnistlab.build import load_data
from mnistlab.trainer import HISTORY_FIELDS, Trainer
from mnistlab.weights import load_model


def weights_of(run_dir):
    network, _ = load_model(run_dir / "model.safetensors")
    return list(network.tensors().values())


def assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)


# ---------------------------------------------------------------- the run folder


def test_train_writes_config_history_weights_and_metrics_into_the_run_folder(trained):
    assert sorted(p.name for p in trained.iterdir()) == \
        ["checkpoint.safetensors", "config.toml", "history.csv", "metrics.json", "model.safetensors"]
    lines = (trained / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate,seconds"
    rows = read_history(trained / "history.csv")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["learning_rate"] for r in rows] == [0.05, 0.025]  # cosine from 0.05 over 2 epochs
    assert rows[1]["train_loss"] < rows[0]["train_loss"]
    metrics = read_json(trained / "metrics.json")
    assert metrics["epochs"] == 2
    assert metrics["stop_reason"] == "max epochs (2)"
    assert metrics["diverged"] is False
    assert 0.25 < metrics["test_accuracy"] <= 1  # it learned something: chance is 0.1
    assert metrics["seconds"] >= 0 and metrics["wall_seconds"] >= metrics["seconds"]
    assert metrics["train_loss"] == rows[-1]["train_loss"] and metrics["val_accuracy"] == rows[-1]["val_accuracy"]
    config = load_toml(trained / "config.toml")
    assert (config.hidden, config.epochs, config.seed) == ((16,), 2, 0)


def test_train_prints_each_epoch_and_the_test_accuracy_it_saved(cli, tiny, tmp_path):
    out = tmp_path / "run"
    result = cli(tiny_train_args(tiny, out))
    assert result.code == 0 and result.err == ""
    metrics = read_json(out / "metrics.json")
    assert f"test accuracy {100 * metrics['test_accuracy']:.2f}%" in result.out
    assert "stopped: max epochs (2) after 2 epochs" in result.out
    epoch_lines = [line for line in result.out.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in epoch_lines] == ["1/2", "2/2"]  # epoch k/N
    assert epoch_lines[0].endswith(" left") and not epoch_lines[1].endswith(" left")  # a time-left estimate


def test_the_test_command_json_agrees_with_the_runs_metrics_on_the_same_data(cli, trained, tiny):
    result = cli(["test", "--weights", trained / "model.safetensors", "--data", tiny.test_csv, "--json"])
    assert result.code == 0 and result.err == ""
    report = json.loads(result.out)
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (10, 10)
    assert matrix.sum() == report["examples"] == 100
    assert matrix.sum(axis=1).tolist() == np.bincount(tiny.dataset.test_labels, minlength=10).tolist()
    assert report["accuracy"] == np.trace(matrix) / 100
    metrics = read_json(trained / "metrics.json")
    assert report["accuracy"] == metrics["test_accuracy"]
    assert report["loss"] == pytest.approx(metrics["test_loss"], rel=1e-6)


def test_the_test_command_prints_a_readable_report_with_the_same_accuracy(cli, trained, tiny):
    result = cli(["test", "--weights", trained / "model.safetensors", "--data", tiny.test_csv])
    accuracy = read_json(trained / "metrics.json")["test_accuracy"]
    assert result.code == 0
    assert result.out.startswith(f"accuracy {100 * accuracy:.2f}% on 100 images")
    assert "confusion matrix (rows: true digit, columns: predicted)" in result.out


# ---------------------------------------------------------------- reproducing a run


def test_the_saved_config_toml_given_back_to_config_reproduces_the_run_exactly(cli, tiny, tmp_path):
    first, again, other_seed = tmp_path / "first", tmp_path / "again", tmp_path / "other"
    flags = ["--seed", "3", "--dropout", "0.2", "--batch-size", "32"]
    assert cli(tiny_train_args(tiny, first, *flags)).code == 0
    assert cli(["train", "--config", first / "config.toml", "--out", again]).code == 0
    assert cli(tiny_train_args(tiny, other_seed, *flags[2:], "--seed", "4")).code == 0
    assert load_toml(again / "config.toml") == load_toml(first / "config.toml")
    history = without_seconds(read_history(first / "history.csv"))
    assert without_seconds(read_history(again / "history.csv")) == history
    assert without_seconds(read_history(other_seed / "history.csv")) != history  # the seed does matter
    assert_same_weights(weights_of(again), weights_of(first))
    assert read_json(again / "metrics.json")["test_accuracy"] == read_json(first / "metrics.json")["test_accuracy"]


# ---------------------------------------------------------------- resuming


def interrupt_after_epoch(monkeypatch, epochs_done):
    """Make the trainer raise KeyboardInterrupt (as Ctrl-C would) when it starts the next epoch."""
    real_epoch = Trainer._epoch

    def epoch(self, *args):
        if len(self.history) == epochs_done:
            raise KeyboardInterrupt
        return real_epoch(self, *args)

    monkeypatch.setattr(Trainer, "_epoch", epoch)


@pytest.mark.parametrize("flags, stop_after", [
    (["--dropout", "0.2"], 2),  # sgd with Nesterov momentum: velocities and the dropout generator must resume
    (["--optimizer", "adam", "--lr", "0.003"], 2),  # Adam: moments and step counts must resume
    # Patience, interrupted right after its best epoch: the best weights must come back from the checkpoint.
    (["--stop", "patience", "--stop-k", "2", "--lr", "0.3", "--schedule", "constant"], "best"),
], ids=["sgd-dropout", "adam", "patience"])
def test_an_interrupted_then_resumed_run_ends_identical_to_an_uninterrupted_run(
        cli, tiny, tmp_path, monkeypatch, flags, stop_after):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    args = [*flags, "--epochs", "6"]
    assert cli(tiny_train_args(tiny, straight, *args)).code == 0
    if stop_after == "best":
        stop_after = read_json(straight / "metrics.json")["best_epoch"]
        assert 1 < stop_after < len(read_history(straight / "history.csv"))  # else the case proves nothing

    interrupt_after_epoch(monkeypatch, stop_after)
    result = cli(tiny_train_args(tiny, interrupted, *args))
    assert result.code == 130 and result.err == "mnistlab: interrupted\n"
    assert [r["epoch"] for r in read_history(interrupted / "history.csv")] == list(range(1, stop_after + 1))
    assert (interrupted / "checkpoint.safetensors").exists()
    assert not (interrupted / "model.safetensors").exists() and not (interrupted / "metrics.json").exists()
    monkeypatch.undo()

    result = cli(["train", "--resume", interrupted])
    assert result.code == 0, result.err
    assert f"resuming {interrupted} after epoch {stop_after}" in result.out
    assert without_seconds(read_history(interrupted / "history.csv")) == \
        without_seconds(read_history(straight / "history.csv"))
    assert_same_weights(weights_of(interrupted), weights_of(straight))
    a, b = read_json(straight / "metrics.json"), read_json(interrupted / "metrics.json")
    for key in ("stop_reason", "epochs", "test_accuracy", "best_epoch"):
        assert b.get(key) == a.get(key), key


def test_a_cnn_run_repeats_bit_for_bit_with_its_seed_and_resumes_exactly(cli, tiny, tmp_path, monkeypatch):
    """Conv, batch norm (its running statistics are saved state), pooling and dropout, with Nesterov
    momentum: the same seed gives the same run, and an interrupted run resumes to the same end."""
    straight, again, interrupted = tmp_path / "straight", tmp_path / "again", tmp_path / "interrupted"
    args = ["--epochs", "3", "--threads", "1"]
    assert cli(tiny_cnn_args(tiny, straight, *args)).code == 0
    assert cli(tiny_cnn_args(tiny, again, *args)).code == 0
    history = without_seconds(read_history(straight / "history.csv"))
    assert without_seconds(read_history(again / "history.csv")) == history
    assert_same_weights(weights_of(again), weights_of(straight))
    network, _ = load_model(straight / "model.safetensors")
    assert np.abs(network.tensors()["bn.1.mean"]).sum() > 0  # the running statistics moved and were saved

    interrupt_after_epoch(monkeypatch, 1)
    assert cli(tiny_cnn_args(tiny, interrupted, *args)).code == 130
    monkeypatch.undo()
    result = cli(["train", "--resume", interrupted])
    assert result.code == 0, result.err
    assert without_seconds(read_history(interrupted / "history.csv")) == history
    assert_same_weights(weights_of(interrupted), weights_of(straight))


def test_mnistlab_test_of_a_cnn_agrees_with_its_metrics(cli, trained_cnn, tiny):
    result = cli(["test", "--weights", trained_cnn / "model.safetensors", "--data", tiny.test_csv, "--json"])
    assert result.code == 0, result.err
    assert json.loads(result.out)["accuracy"] == read_json(trained_cnn / "metrics.json")["test_accuracy"]


def test_resuming_a_finished_run_changes_nothing_and_says_so(cli, trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()}
    result = cli(["train", "--resume", run])
    assert result.code == 0
    assert "run already finished (max epochs (2)); nothing to do" in result.out
    assert f"resuming {run}" not in result.out and "training [" not in result.out
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()} == before  # not one byte


def test_resuming_a_run_that_finished_training_but_not_its_files_writes_them(cli, trained, tmp_path):
    """Killed after the last checkpoint, before model and metrics: resuming evaluates and saves, trains nothing."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "model.safetensors").unlink()
    (run / "metrics.json").unlink()
    result = cli(["train", "--resume", run])
    assert result.code == 0, result.err
    assert "training finished (max epochs (2)); saving its results" in result.out
    assert_same_weights(weights_of(run), weights_of(trained))
    assert read_json(run / "metrics.json")["test_accuracy"] == read_json(trained / "metrics.json")["test_accuracy"]
    assert read_history(run / "history.csv") == read_history(trained / "history.csv")


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_the_start(cli, tiny, tmp_path, monkeypatch):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert cli(tiny_train_args(tiny, straight)).code == 0
    interrupt_after_epoch(monkeypatch, 0)
    assert cli(tiny_train_args(tiny, stopped)).code == 130
    monkeypatch.undo()
    assert [p.name for p in stopped.iterdir()] == ["config.toml"]
    assert_one_line_error(cli(tiny_train_args(tiny, stopped)), "already holds a run", f"--resume {stopped}")
    result = cli(["train", "--resume", stopped])
    assert result.code == 0, result.err
    assert "no checkpoint yet; starting again from its config.toml" in result.out
    assert_same_weights(weights_of(stopped), weights_of(straight))


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_resuming_removes_the_temporary_files_a_killed_run_left_and_keeps_a_live_writers(
        cli, tiny, tmp_path, monkeypatch):
    run = tmp_path / "run"
    interrupt_after_epoch(monkeypatch, 1)
    assert cli(tiny_train_args(tiny, run)).code == 130
    monkeypatch.undo()
    pid = dead_pid()
    stale = [run / f".checkpoint.safetensors.{pid}.0a1b2c3d.tmp", run / f".history.csv.{pid}.deadbeef.tmp"]
    live = run / ".metrics.json.1.00000000.tmp"  # process 1 is always running
    for path in stale + [live]:
        path.write_bytes(b"\0" * 1000)
    assert cli(["train", "--resume", run]).code == 0
    assert not any(p.exists() for p in stale)
    assert live.exists()


# ---------------------------------------------------------------- run folders are claimed exclusively


@pytest.mark.parametrize("name", RUN_FILES)
def test_a_new_run_refuses_a_folder_that_holds_any_file_of_a_run(cli, tiny, tmp_path, name):
    out = tmp_path / "run"
    out.mkdir()
    (out / name).write_text("someone else's\n")
    assert_one_line_error(cli(tiny_train_args(tiny, out)), out, "already holds a run")
    assert [p.name for p in out.iterdir()] == [name] and (out / name).read_text() == "someone else's\n"


def test_a_new_run_may_use_an_existing_empty_folder_and_clears_stale_temporaries(cli, tiny, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    stale = out / f".config.toml.{dead_pid()}.0a1b2c3d.tmp"
    stale.write_text("x")
    assert cli(tiny_train_args(tiny, out)).code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(RUN_FILES)


def test_of_many_runs_claiming_one_folder_at_once_exactly_one_gets_it(tmp_path):
    out, barrier, outcomes = tmp_path / "run", threading.Barrier(8), []

    def claim(k):
        barrier.wait()
        try:
            claim_folder(out, f"seed = {k}\n")
            outcomes.append(k)
        except InputError:
            outcomes.append(None)

    threads = [threading.Thread(target=claim, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [k for k in outcomes if k is not None]
    assert len(winners) == 1 and len(outcomes) == 8
    assert (out / "config.toml").read_text() == f"seed = {winners[0]}\n"
    assert [p.name for p in out.iterdir()] == ["config.toml"]  # no claim's temp file is left


def test_unique_names_move_on_to_the_next_free_one(tmp_path):
    base = tmp_path / "runs" / "20260101-120000"
    got = [claim_folder(base, "", unique=True) for _ in range(3)]
    assert [p.name for p in got] == ["20260101-120000", "20260101-120000-2", "20260101-120000-3"]


def test_two_trainings_started_together_with_the_default_out_get_a_folder_each(tiny, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    procs = [subprocess.Popen([sys.executable, "-m", "mnistlab", *tiny_train_args(tiny, "x")[:-2], "--seed", str(seed)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for seed in (1, 2)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2
    seeds = set()
    for folder in folders:
        assert sorted(p.name for p in folder.iterdir()) == sorted(RUN_FILES)
        seed = load_toml(folder / "config.toml").seed
        _, meta = load_model(folder / "model.safetensors")
        assert meta["seed"] == seed and meta["metrics"] == read_json(folder / "metrics.json")
        seeds.add(seed)
    assert seeds == {1, 2}  # each folder holds one run, whole


# ---------------------------------------------------------------- train --replace (what make run does)


def test_replace_trains_again_and_swaps_the_new_run_in_only_once_it_has_finished(cli, tiny, tmp_path):
    out = tmp_path / "runs" / "default"
    assert cli(tiny_train_args(tiny, out, "--seed", "1")).code == 0
    old = {name: (out / name).read_bytes() for name in RUN_FILES}
    seen = []

    def while_training(new_dir):  # after every epoch of the new run: the old one is still whole
        seen.append(new_dir)
        assert {name: (out / name).read_bytes() for name in RUN_FILES} == old

    from mnistlab.config import RunConfig
    from mnistlab.run import replace_run
    config = RunConfig(data=str(tiny.train_csv), test_data=str(tiny.test_csv), hidden=(16,), epochs=2, seed=2)
    logged = []
    result = replace_run(config, out, log=logged.append, after_epoch=while_training)
    assert len(seen) == 2 and all(d.parent == out.parent and d.name.startswith(".default.") for d in seen)
    assert result.out_dir == out and load_toml(out / "config.toml").seed == 2
    assert (out / "model.safetensors").read_bytes() != old["model.safetensors"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["default"]  # no temporary folder left
    assert any("replaced once this run has finished" in line for line in logged)
    assert any(f"replaced the run in {out}" in line for line in logged)


def test_replace_into_a_new_folder_just_trains_there(cli, tiny, tmp_path):
    out = tmp_path / "runs" / "default"
    result = cli(tiny_train_args(tiny, out, "--replace"))
    assert result.code == 0, result.err
    assert sorted(p.name for p in out.iterdir()) == sorted(RUN_FILES) and "replaced" not in result.out


def test_a_replace_killed_mid_way_leaves_the_old_run_untouched_and_the_next_one_cleans_up(cli, tiny, tmp_path):
    out = tmp_path / "runs" / "default"
    assert cli(tiny_train_args(tiny, out)).code == 0
    old = {name: (out / name).read_bytes() for name in RUN_FILES}
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab", *tiny_train_args(tiny, out, "--replace", "--epochs",
                                                                                "100000")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list(out.parent.glob(".default.*.new/history.csv")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(out.parent.glob(".default.*.new/history.csv")), "the new run never finished an epoch"
    finally:
        proc.kill()
        proc.wait()
    assert {name: (out / name).read_bytes() for name in RUN_FILES} == old
    assert cli(tiny_train_args(tiny, out, "--replace", "--seed", "5")).code == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["default"]  # the killed run's folder is gone
    assert load_toml(out / "config.toml").seed == 5


def test_a_replace_stopped_by_ctrl_c_leaves_the_old_run_and_no_new_folder(cli, tiny, tmp_path):
    out = tmp_path / "runs" / "default"
    assert cli(tiny_train_args(tiny, out)).code == 0
    old = {name: (out / name).read_bytes() for name in RUN_FILES}

    def ctrl_c(new_dir):
        raise KeyboardInterrupt

    from mnistlab.config import RunConfig
    from mnistlab.run import replace_run
    config = RunConfig(data=str(tiny.train_csv), test_data=str(tiny.test_csv), hidden=(16,), epochs=2)
    with pytest.raises(KeyboardInterrupt):
        replace_run(config, out, log=lambda line: None, after_epoch=ctrl_c)
    assert {name: (out / name).read_bytes() for name in RUN_FILES} == old
    assert sorted(p.name for p in out.parent.iterdir()) == ["default"]


def test_replace_refuses_a_folder_that_is_not_a_run_and_needs_out(cli, tiny, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    assert_one_line_error(cli(tiny_train_args(tiny, folder, "--replace")), folder, "not a run folder")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert_one_line_error(cli(["train", *tiny.data_flags, "--epochs", "1", "--replace"]),
                          "--replace goes with --out")
    assert_one_line_error(cli(["train", "--resume", folder, "--replace"]), "drop --replace")


def test_resuming_a_folder_without_a_checkpoint_exits_2_naming_it(cli, tmp_path):
    assert_one_line_error(cli(["train", "--resume", tmp_path]), tmp_path, "no checkpoint.safetensors")


def test_resuming_after_the_training_data_changed_exits_2_and_keeps_the_checkpoint(cli, tiny, tmp_path, monkeypatch):
    train_csv = tmp_path / "train.csv"
    shutil.copy(tiny.train_csv, train_csv)
    run = tmp_path / "run"
    interrupt_after_epoch(monkeypatch, 1)
    args = ["train", "--data", train_csv, "--test-data", tiny.test_csv, "--hidden", "16", "--epochs", "3",
            "--out", run]
    assert cli(args).code == 130
    monkeypatch.undo()
    checkpoint = (run / "checkpoint.safetensors").read_bytes()
    lines = train_csv.read_text().splitlines()
    train_csv.write_text("\n".join(lines[1:]) + "\n")  # one image fewer
    result = cli(["train", "--resume", run])
    assert_one_line_error(result, run / "checkpoint.safetensors", "other data")
    assert (run / "checkpoint.safetensors").read_bytes() == checkpoint
    assert not (run / "model.safetensors").exists()


def test_a_damaged_checkpoint_exits_2_naming_it(cli, trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "checkpoint.safetensors").write_bytes(b"\x00" * 50)
    assert_one_line_error(cli(["train", "--resume", run]), run / "checkpoint.safetensors")


# ---------------------------------------------------------------- divergence


def test_a_diverging_run_exits_1_keeps_its_history_and_saves_no_weights(cli, tiny, tmp_path):
    out = tmp_path / "run"
    # The rate is sane for epoch 1, then multiplied by 1e20: the weights overflow in epoch 2.
    result = cli(tiny_train_args(tiny, out, "--epochs", "5", "--schedule", "step", "--step-size", "1",
                                 "--gamma", "1e20"))
    assert result.code == 1
    assert result.err == ""  # no traceback, and no overflow warnings either
    assert "diverged at epoch 2: no weights saved" in result.out
    assert len([line for line in result.out.splitlines() if line.startswith("epoch")]) == 1
    assert [r["epoch"] for r in read_history(out / "history.csv")] == [1]
    assert not (out / "model.safetensors").exists()
    metrics = read_json(out / "metrics.json")
    assert metrics["diverged"] is True
    assert metrics["stop_reason"] == "diverged at epoch 2"
    assert metrics["test_accuracy"] is None and metrics["epochs"] == 1


def test_a_huge_learning_rate_with_random_init_ends_as_diverged_in_a_real_process(tiny, tmp_path):
    out = tmp_path / "run"
    result = run_subprocess(tiny_train_args(tiny, out, "--lr", "1e30", "--init", "random"))
    assert result.code == 1
    assert "Traceback" not in result.err and "Warning" not in result.err
    assert "diverged at epoch 1" in result.out
    assert (out / "history.csv").read_text().splitlines() == [",".join(HISTORY_FIELDS)]
    assert not (out / "model.safetensors").exists()
    assert read_json(out / "metrics.json")["stop_reason"] == "diverged at epoch 1"


# ---------------------------------------------------------------- fine-tuning


def test_fine_tuning_with_a_tiny_rate_starts_from_the_saved_weights(cli, trained, tiny, tmp_path):
    base = trained / "model.safetensors"
    tuned, fresh = tmp_path / "tuned", tmp_path / "fresh"
    flags = ["--epochs", "1", "--lr", "1e-9"]
    assert cli(tiny_train_args(tiny, tuned, *flags, "--init-from", base)).code == 0
    assert cli(tiny_train_args(tiny, fresh, *flags)).code == 0

    network, meta = load_model(tuned / "model.safetensors")
    assert network.sizes == meta["sizes"] == [784, 16, 10]
    for after, before in zip(weights_of(tuned), weights_of(trained)):
        assert np.allclose(after, before, atol=1e-6)
    assert read_json(tuned / "metrics.json")["test_accuracy"] == pytest.approx(
        read_json(trained / "metrics.json")["test_accuracy"], abs=0.01)
    tuned_loss = read_history(tuned / "history.csv")[0]["train_loss"]
    fresh_loss = read_history(fresh / "history.csv")[0]["train_loss"]
    assert tuned_loss < fresh_loss - 0.3  # a fresh net starts near ln 10 = 2.3
    # The first epoch's loss is the saved model's own loss on the training split.
    train_x, train_y, *_ = load_data(load_toml(tuned / "config.toml"))
    base_loss, _ = load_model(base)[0].evaluate(train_x, train_y.astype(np.intp))
    assert tuned_loss == pytest.approx(base_loss, rel=1e-4)
    assert load_toml(tuned / "config.toml").init_from == str(base)


@pytest.mark.parametrize("flags, must_mention", [
    (["--hidden", "64"], "the network's hidden is 16, not 64"),
    (["--hidden", "16,16"], "the network's hidden is 16, not 16,16"),
    (["--activation", "tanh"], "the network's activation is relu, not tanh"),
])
def test_fine_tuning_refuses_settings_that_contradict_the_loaded_network(
        cli, trained, tiny, tmp_path, flags, must_mention):
    out = tmp_path / "tuned"
    result = cli(tiny_train_args(tiny, out, "--init-from", trained / "model.safetensors", *flags))
    assert_one_line_error(result, trained / "model.safetensors", must_mention)
    assert not out.exists()


def test_fine_tuning_records_the_loaded_networks_architecture_not_the_defaults(cli, trained, tiny, tmp_path):
    out = tmp_path / "tuned"
    args = ["train", *tiny.data_flags, "--epochs", "1", "--init-from", trained / "model.safetensors", "--out", out]
    assert cli(args).code == 0  # no --hidden: the default 800,800 is not what is trained
    config = load_toml(out / "config.toml")
    assert (config.hidden, config.activation) == ((16,), "relu")
    _, meta = load_model(out / "model.safetensors")
    assert meta["config"]["hidden"] == [16] and meta["sizes"] == [784, 16, 10]
    assert cli(["train", "--config", out / "config.toml", "--out", tmp_path / "again"]).code == 0  # and repeats


def test_fine_tuning_with_an_ordinary_rate_improves_on_the_saved_model(cli, trained, tiny, tmp_path):
    tuned = tmp_path / "tuned"
    assert cli(tiny_train_args(tiny, tuned, "--epochs", "3", "--init-from", trained / "model.safetensors")).code == 0
    first_tuned = read_history(tuned / "history.csv")[0]["train_loss"]
    assert first_tuned < read_history(trained / "history.csv")[-1]["train_loss"]


# ---------------------------------------------------------------- the same results as before the layer refactor


def reference_runs():
    """tests/data/reference/make.py's RUNS: name -> settings."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_reference", REFERENCE / "make.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RUNS


REFERENCE = SRC.parent / "tests" / "data" / "reference"


@pytest.mark.parametrize("name, settings", list(reference_runs().items()))
def test_a_run_gives_the_bit_identical_history_and_weights_of_the_reference_run(tiny, tmp_path, name, settings):
    from safetensors.numpy import load_file

    from mnistlab import api

    run = api.train(out=tmp_path / name, log=None, data=str(tiny.train_csv), test_data=str(tiny.test_csv),
                    **settings)
    ours, theirs = (read_history(path / "history.csv") for path in (run.out_dir, REFERENCE / name))
    assert without_seconds(ours) == without_seconds(theirs)  # floats parsed from repr: equal means bit-equal
    mine, reference = (load_file(path / "model.safetensors") for path in (run.out_dir, REFERENCE / name))
    assert sorted(mine) == sorted(reference)
    for tensor in reference:
        assert mine[tensor].tobytes() == reference[tensor].tobytes(), tensor


def moved_checkpoint(source, folder, tiny):
    """A copy of a checkpoint whose config names the tiny CSVs where this session wrote them (the same
    data, as its fingerprint shows: only the path differs from where it was made)."""
    import json as json_module

    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(source, "numpy") as f:
        meta = json_module.loads(f.metadata()["mnistlab"])
    meta["config"].update(data=str(tiny.train_csv), test_data=str(tiny.test_csv))
    folder.mkdir()
    save_file(load_file(source), folder / "checkpoint.safetensors", metadata={"mnistlab": json_module.dumps(meta)})
    return folder


@pytest.mark.parametrize("name", ["sgd-nesterov", "adam"])
def test_a_checkpoint_of_the_old_format_resumes_to_the_reference_runs_exact_end(tiny, tmp_path, name):
    """checkpoint-epoch1.safetensors: the reference run stopped after epoch 1 by the code before layers
    had names (mnistlab-checkpoint/1: vW.0, mW.0, step.0, best as a list)."""
    from safetensors.numpy import load_file

    from mnistlab.run import resume_run

    folder = moved_checkpoint(REFERENCE / name / "checkpoint-epoch1.safetensors", tmp_path / name, tiny)
    resume_run(folder, log=lambda message: None)
    ours, theirs = (read_history(path / "history.csv") for path in (folder, REFERENCE / name))
    assert without_seconds(ours) == without_seconds(theirs)  # epoch 1's row comes from the checkpoint
    mine, reference = (load_file(path / "model.safetensors") for path in (folder, REFERENCE / name))
    assert all(mine[tensor].tobytes() == reference[tensor].tobytes() for tensor in reference)
