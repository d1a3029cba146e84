"""The README's usage examples work as written: every command of the ```sh blocks in its Usage section,
run in order in a fresh empty folder with the installed ``mnistlab`` on the PATH, exits 0.

Conventions for README.md (read at run time, so they hold for whatever it says then):
- Every line of a ```sh block under ``## Usage`` is a command, run as written by bash; blank lines and
  lines that are only a comment are skipped; a line ending in ``\\`` continues on the next.
- A command whose trailing comment ends in ``(long)`` is shown but not run (e.g. a full-size training).
- The commands run in the order written, each in the same fresh folder: a file a command uses must be
  made by an earlier one (``mnistlab data export-csv csv/`` before ``--data csv/mnist_test.csv``).
- Each command must finish within COMMAND_SECONDS, so examples that are run use small settings
  (``--epochs 1 --hidden 64``); the long ones carry ``(long)``.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
COMMAND_SECONDS = 30
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


def test_the_readme_usage_examples_run_in_order_in_a_fresh_folder(tmp_path):
    commands = usage_commands(README.read_text())
    assert commands, "README.md has no ```sh block in a '## Usage' section"
    bin_dir = Path(sys.executable).parent
    if not shutil.which("mnistlab", path=str(bin_dir)):
        pytest.skip(f"no mnistlab installed next to {sys.executable} (pip install -e .)")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    for command in commands:
        code, out = run(command, tmp_path, env)
        assert code is not None, f"README command took over {COMMAND_SECONDS} s: {command}\n{out[-2000:]}"
        assert code == 0, f"README command exited {code}: {command}\n{out[-2000:]}"
