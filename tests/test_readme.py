"""The README's usage examples work as written: every command of the ```sh blocks in its Usage section,
run in order in a fresh empty folder with ``mnistlab`` on the PATH, exits 0. ``mnistlab`` there is
installed as ``make run`` installs it (``make install`` into a virtual environment of its own, built once
per session; no test extras), so a dependency the package forgets to declare fails here. ``make run``'s
own commands run twice in one folder, as a user runs it again.

Conventions for README.md (read at run time, so they hold for whatever it says then):
- Every line of a ```sh block under ``## Usage`` is a command, run as written by bash; blank lines and
  lines that are only a comment are skipped; a line ending in ``\\`` continues on the next.
- A command whose trailing comment ends in ``(long)`` is shown but not run (e.g. a full-size training).
- The commands run in the order written, each in the same fresh folder: a file a command uses must be
  made by an earlier one (``mnistlab data export-csv csv/`` before ``--data csv/mnist_test.csv``).
- Each command must finish within COMMAND_SECONDS (a hang guard), so examples that are run use small settings
  (``--epochs 1 --hidden 64``); the long ones carry ``(long)``.
"""

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COMMAND_SECONDS = 120  # a guard against a hung command, not a speed target: this VM is often loaded
LONG = re.compile(r"#.*\(long\)\s*$")


def usage_commands(text):
    """The commands of the ```sh blocks in the README's Usage section, in order."""
    section = re.search(r"^## Usage\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not section:
        return []
    commands = []
    for block in re.findall(r"^```sh\s*$(.*?)^```\s*$", section.group(1), re.M | re.S):
        pending = ""
        for line in block.splitlines():
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            line, pending = pending + line, ""
            stripped = line.strip()
            if not stripped or stripped.startswith("#") or LONG.search(stripped):
                continue
            commands.append(stripped)
    return commands


def test_usage_commands_are_found_with_their_conventions():
    text = ("## Usage\n```sh\nmnistlab a  # one\n\n# a comment\nmnistlab b \\\n  --c  # (long)\n"
            "mnistlab d\n```\n## Other\n```sh\nmnistlab e\n```\n")
    assert usage_commands(text) == ["mnistlab a  # one", "mnistlab d"]


def run(command, cwd, env):
    """(exit status, output) of one command; a command over time is stopped with all it started."""
    proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=COMMAND_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out
    return proc.returncode, out


@pytest.fixture(scope="session")
def user_bin(tmp_path_factory):
    """The bin folder of a virtual environment made by ``make install``, as ``make run`` makes .venv."""
    if not shutil.which("make"):
        pytest.skip("no make on this machine")
    venv = tmp_path_factory.mktemp("user") / "venv"
    proc = subprocess.run(["make", "-C", str(ROOT), "install", f"VENV={venv}"], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"make install failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return venv / "bin"


def user_env(bin_dir):
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_the_readme_usage_examples_run_in_order_in_a_fresh_folder(tmp_path, user_bin):
    commands = usage_commands(README.read_text())
    assert commands, "README.md has no ```sh block in a '## Usage' section"
    for command in commands:
        code, out = run(command, tmp_path, user_env(user_bin))
        assert code is not None, f"README command took over {COMMAND_SECONDS} s: {command}\n{out[-2000:]}"
        assert code == 0, f"README command exited {code}: {command}\n{out[-2000:]}"


def make_run_commands(makefile_text):
    """The commands of the Makefile's ``run`` recipe, as written (``$(BIN)``, ``$(RUN_DIR)`` unexpanded)."""
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile_text, re.M)
    return [line.strip() for line in recipe.group(1).splitlines()] if recipe else []


def test_make_runs_commands_run_twice_in_one_folder_and_the_second_replaces_the_first(tmp_path, user_bin, tiny):
    commands = make_run_commands((ROOT / "Makefile").read_text())
    assert len(commands) == 2 and "train" in commands[0] and "test" in commands[1], commands
    small = " ".join(["--hidden 16 --epochs 2", *map(str, tiny.data_flags)])  # the same code path, small
    commands = [c.replace("$(BIN)/", f"{user_bin}/").replace("$(RUN_DIR)", "runs/default") for c in commands]
    commands[0] += " " + small
    outputs = []
    for seed in (1, 2):
        for command in commands:
            code, out = run(command + (f" --seed {seed}" if command is commands[0] else ""), tmp_path,
                            user_env(user_bin))
            assert code == 0, f"make run's {command} exited {code} (round {seed}):\n{out[-2000:]}"
            outputs.append(out)
        assert f'seed = {seed}' in (tmp_path / "runs" / "default" / "config.toml").read_text()
    assert "replaced" not in outputs[0] and "replaced the run in runs/default" in outputs[2]
    assert "accuracy" in outputs[3]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["default"]
