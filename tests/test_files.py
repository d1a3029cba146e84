"""Atomic writes: a failed write leaves the old file as it was and no temporary file behind."""

import json
import math
import os
import subprocess
import sys

import pytest

from mnistlab.files import atomic_write, remove_stale_temporaries, write_json, write_text


def test_a_write_that_fails_halfway_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "history.csv"
    write_text(target, "old\n")

    def half_then_crash(tmp):
        with open(tmp, "w") as f:
            f.write("new, but only ha")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, half_then_crash)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["history.csv"]


def test_write_json_creates_missing_folders_and_writes_nan_as_null(tmp_path):
    target = tmp_path / "a" / "b" / "metrics.json"
    write_json(target, {"val_loss": math.nan, "test_accuracy": 0.98, "runs": [math.inf, 1]})
    assert json.loads(target.read_text()) == {"val_loss": None, "test_accuracy": 0.98, "runs": [None, 1]}


def test_stale_temporaries_of_dead_writers_are_removed_and_others_kept(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead, alive = proc.pid, os.getppid()
    (tmp_path / f".model.safetensors.{dead}.0a1b2c3d.tmp").write_text("half")
    (tmp_path / f".history.csv.{alive}.0a1b2c3d.tmp").write_text("being written")
    (tmp_path / ".notes.tmp").write_text("not ours")
    (tmp_path / "history.csv").write_text("kept")
    assert remove_stale_temporaries(tmp_path) == [f".model.safetensors.{dead}.0a1b2c3d.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        sorted([f".history.csv.{alive}.0a1b2c3d.tmp", ".notes.tmp", "history.csv"])


def test_a_failed_write_names_the_target_not_the_temporary_file(tmp_path):
    with pytest.raises(OSError) as error:
        write_text("/proc/x.txt", "text")
    assert error.value.filename == "/proc/x.txt"
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError) as error:
        write_text(tmp_path / "folder", "text")
    assert error.value.filename == str(tmp_path / "folder") and list((tmp_path / "folder").iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["folder"]
