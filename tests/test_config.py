"""Run configuration: TOML files and flags map onto RunConfig; every bad value is one stderr line
naming the file or flag and the key, exit status 2, and no run folder."""

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SRC, assert_one_line_error, tiny_train_args
from mnistlab.config import CHOICES, FIELDS, RunConfig, load_toml, updated, validate
from mnistlab.errors import InputError
from mnistlab.config import to_toml as config_toml

# ---------------------------------------------------------------- bad config files through the CLI

BAD_TOML = [
    ("learning_rate = 0.1\n", ["unknown key 'learning_rate'"]),
    ("lr = 0\n", ["lr = 0.0", "must be a positive number"]),
    ("lr = -0.5\n", ["lr = -0.5", "must be a positive number"]),
    ("batch_size = 0\n", ["batch_size = 0", "must be a positive number"]),
    ("batch_size = -8\n", ["batch_size = -8", "must be a positive number"]),
    ("hidden = [0]\n", ["hidden = (0,)", "positive integers"]),
    ("hidden = [32, 0]\n", ["hidden = (32, 0)", "positive integers"]),
    ("hidden = []\n", ["hidden = ()", "positive integers"]),
    ("stop_k = 2.5\n", ["stop_k = 2.5", "not a valid int"]),
    ("activation = \"gelu\"\n", ["activation = 'gelu'", "expected one of relu"]),
    ("momentum = 1.0\n", ["momentum = 1.0", "must be in [0, 1)"]),
    ("nesterov = \"yes\"\n", ["nesterov = 'yes'", "not a valid bool"]),
    ("seed = -1\n", ["seed = -1", "must be >= 0"]),
    ("weight_decay = nan\n", ["weight_decay = nan"]),
    ("stop = \"patience\"\nval_fraction = 0.0\n", ["stop = 'patience'", "needs a validation set"]),
    ("lr = 0.1\nlr = 0.2\n", ["not valid TOML"]),
    ("lr = \n", ["not valid TOML"]),
]


@pytest.mark.parametrize("text, must_mention", BAD_TOML, ids=[t.strip() for t, _ in BAD_TOML])
def test_a_config_file_with_a_bad_entry_exits_2_naming_file_and_key_and_writes_no_run(
        cli, tiny, tmp_path, text, must_mention):
    config = tmp_path / "run.toml"
    config.write_text("epochs = 1\n" + text)
    out = tmp_path / "run"
    result = cli(tiny_train_args(tiny, out, "--config", config))
    assert_one_line_error(result, f"{config}:", *must_mention)
    assert not out.exists()


BAD_FLAGS = [
    (["--lr", "0"], ["--lr = 0.0", "must be a positive number"]),
    (["--lr=-1"], ["--lr = -1.0", "must be a positive number"]),
    (["--lr", "abc"], ["--lr = 'abc'", "not a valid float"]),
    (["--lr", "nan"], ["--lr = nan", "must be a positive number"]),
    (["--batch-size", "0"], ["--batch-size = 0", "must be a positive number"]),
    (["--batch-size", "1.5"], ["--batch-size = '1.5'", "not a valid int"]),
    (["--hidden", "0"], ["--hidden = (0,)", "positive integers"]),
    (["--hidden", "16,0"], ["--hidden = (16, 0)", "positive integers"]),
    (["--hidden", "16,x"], ["--hidden = ['16', 'x']", "not a valid"]),
    (["--hidden", ","], ["--hidden = ()", "positive integers"]),
    (["--epochs", "0"], ["--epochs = 0", "must be a positive number"]),
    (["--dropout", "1"], ["--dropout = 1.0", "must be in [0, 1)"]),
    (["--val-fraction", "-0.1"], ["--val-fraction = -0.1", "must be in [0, 1)"]),
    (["--optimizer", "rmsprop"], ["--optimizer = 'rmsprop'", "expected one of sgd, adam"]),
    (["--stop", "sometimes"], ["--stop = 'sometimes'", "expected one of none"]),
    (["--threads", "0"], ["--threads = 0", "must be a positive integer"]),
    (["--seed", "-1"], ["--seed = -1", "must be >= 0"]),
    (["--weight-decay", "-0.1"], ["--weight-decay = -0.1", "must be >= 0"]),
    (["--weight-decay", "inf"], ["--weight-decay = inf"]),
]


@pytest.mark.parametrize("flags, must_mention", BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_a_bad_flag_value_exits_2_naming_the_setting_and_writes_no_run(cli, tiny, tmp_path, flags, must_mention):
    out = tmp_path / "run"
    result = cli(tiny_train_args(tiny, out, *flags))
    assert_one_line_error(result, "flag:", *must_mention)
    assert not out.exists()


def test_a_missing_config_file_exits_2_naming_it(cli, tiny, tmp_path):
    missing = tmp_path / "missing.toml"
    result = cli(tiny_train_args(tiny, tmp_path / "run", "--config", missing))
    assert_one_line_error(result, f"{missing}: cannot read")


def test_a_bad_flag_is_caught_before_any_data_is_read(cli, tmp_path):
    # The data paths do not exist: the flag's error, not the data's, is the one reported.
    result = cli(["train", "--data", tmp_path / "none.csv", "--test-data", tmp_path / "none2.csv",
                  "--lr", "0", "--out", tmp_path / "run"])
    assert_one_line_error(result, "lr = 0.0")


# ---------------------------------------------------------------- files and flags combined


def test_flags_override_the_config_file(cli, tiny, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("epochs = 3\nlr = 0.01\nhidden = [8]\n")
    out = tmp_path / "run"
    assert cli(tiny_train_args(tiny, out, "--config", config)).code == 0  # --hidden 16 --epochs 2
    saved = load_toml(out / "config.toml")
    assert (saved.epochs, saved.lr, saved.hidden) == (2, 0.01, (16,))


def test_a_config_file_may_put_its_keys_in_a_train_table(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[train]\nlr = 0.2\nhidden = [32, 16]\nnesterov = false\n")
    assert load_toml(path) == RunConfig(lr=0.2, hidden=(32, 16), nesterov=False)


def test_an_empty_config_file_gives_the_defaults(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("")
    assert load_toml(path) == RunConfig()


def test_hidden_sizes_may_be_written_as_a_comma_separated_string(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('hidden = "64, 32"\n')
    assert load_toml(path).hidden == (64, 32)


def test_whole_number_floats_are_accepted_for_integer_settings_and_bools_are_not():
    assert updated(RunConfig(), {"epochs": 3.0}, "x").epochs == 3
    with pytest.raises(InputError, match="epochs = True: not a valid int"):
        updated(RunConfig(), {"epochs": True}, "x")


# ---------------------------------------------------------------- config.toml written by a run reads back


def test_the_saved_config_toml_reads_back_as_the_same_config(tmp_path):
    config = RunConfig(data="/some where/train.csv", test_data="t.csv", hidden=(32, 16), activation="tanh",
                       init="xavier", dropout=0.25, optimizer="adam", lr=3e-4, momentum=0.0, nesterov=False,
                       weight_decay=1e-05, batch_size=8, schedule="step", step_size=3, gamma=0.5, epochs=7,
                       stop="plateau", stop_k=2, plateau_window=4, plateau_tolerance=0.01, seed=42,
                       init_from="base/model.safetensors", threads=2)
    path = tmp_path / "config.toml"
    path.write_text(config_toml(config))
    assert load_toml(path) == config


@settings(max_examples=60, deadline=None)
@given(lr=st.floats(min_value=1e-12, max_value=1e6, allow_nan=False, allow_infinity=False),
       hidden=st.lists(st.integers(1, 4096), min_size=1, max_size=4))
def test_any_valid_learning_rate_and_hidden_sizes_survive_the_toml_round_trip_exactly(tmp_path_factory, lr, hidden):
    config = RunConfig(lr=lr, hidden=tuple(hidden))
    path = tmp_path_factory.mktemp("toml") / "config.toml"
    path.write_text(config_toml(config))
    assert load_toml(path) == config


def test_validate_returns_a_valid_config_unchanged():
    config = RunConfig(hidden=(16,), epochs=2)
    assert validate(config) is config


def test_every_default_is_valid():
    assert validate(RunConfig()) == RunConfig()
    assert dataclasses.asdict(RunConfig())["hidden"] == (800, 800)


# ---------------------------------------------------------------- one source for every setting


def test_hidden_sizes_that_are_not_whole_numbers_are_refused_in_a_file_as_on_the_command_line(cli, tiny, tmp_path):
    config = tmp_path / "run.toml"
    for text in ("hidden = [16.5]\n", "hidden = [16, true]\n", 'hidden = "16.5"\n', "hidden = {a = 1}\n"):
        config.write_text(text)
        assert_one_line_error(cli(tiny_train_args(tiny, tmp_path / "run", "--config", config)),
                              f"{config}: hidden =", "not a valid list of int")
    assert load_toml(_written(tmp_path, "hidden = [16.0, 8]\n")).hidden == (16, 8)  # whole floats, as for ints
    assert_one_line_error(cli(tiny_train_args(tiny, tmp_path / "run", "--hidden", "32.5")), "--hidden")
    assert not (tmp_path / "run").exists()


def _written(tmp_path, text, name="run.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("content, must_mention", [
    (np.random.default_rng(0).bytes(300), "not valid TOML"),
    ("lr = 0.1 # caf\xe9\n".encode("latin-1"), "not valid TOML"),
    (b"\xff\xfe" + "lr = 0.1\n".encode("utf-16-le"), "not valid TOML"),
], ids=["random bytes", "latin-1 text", "utf-16"])
def test_a_config_file_that_is_not_utf8_text_exits_2_naming_it(cli, tiny, tmp_path, content, must_mention):
    config = tmp_path / "run.toml"
    config.write_bytes(content)
    result = cli(tiny_train_args(tiny, tmp_path / "run", "--config", config))
    assert_one_line_error(result, f"{config}: {must_mention}")
    assert not (tmp_path / "run").exists()


def test_a_folder_given_as_config_file_exits_2_naming_it(cli, tiny, tmp_path):
    result = cli(tiny_train_args(tiny, tmp_path / "run", "--config", tmp_path))
    assert_one_line_error(result, f"{tmp_path}: cannot read")


def test_every_setting_has_a_help_text_a_placeholder_a_flag_and_a_toml_key(cli):
    help_out = " ".join(cli(["train", "--help"]).out.split())
    for name, f in FIELDS.items():
        metavar = f.metadata["metavar"]
        assert f.metadata["help"] and metavar.isupper() and metavar != "X", name
        assert f"--{name.replace('_', '-')} {metavar} {f.metadata['help']}" in help_out, name
    assert set(RunConfig().to_dict()) == set(FIELDS)  # the TOML keys


def test_the_config_choices_are_the_names_in_the_registries():
    from mnistlab.nn import ACTIVATIONS, INITIALIZERS, OPTIMIZERS, SCHEDULES
    from mnistlab.stopping import STOPPING
    assert CHOICES == {"activation": tuple(ACTIVATIONS), "init": tuple(INITIALIZERS),
                       "optimizer": tuple(OPTIMIZERS), "schedule": tuple(SCHEDULES), "stop": tuple(STOPPING),
                       "augment_mode": ("online", "offline"), "augment_copy": ("composed", "one_each")}


def test_library_defaults_agree_with_the_run_config():
    from mnistlab.data import split_validation
    from mnistlab.nn import Sgd, make_schedule
    from mnistlab.stopping import make_stopping

    def defaults(fn):
        return {k: p.default for k, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}

    c = RunConfig()
    assert defaults(Sgd) == {"momentum": c.momentum, "nesterov": c.nesterov, "weight_decay": c.weight_decay}
    assert defaults(make_schedule) == {"step_size": c.step_size, "gamma": c.gamma}
    assert defaults(make_stopping) == {"k": c.stop_k, "window": c.plateau_window, "tolerance": c.plateau_tolerance}
    assert defaults(split_validation)["fraction"] == c.val_fraction


def test_the_config_module_and_the_cli_load_no_network_code():
    """What keeps `mnistlab --help` fast (measured: 0.07 s, against 0.57 s when config imported nn)."""
    code = ("import sys, mnistlab.cli; "
            "print(sorted(m for m in sys.modules if m in ('numpy', 'mnistlab.nn', 'mnistlab.run', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SRC)}, check=True).stdout
    assert out.strip() == "[]"


def test_an_input_error_is_a_value_error_naming_the_field():
    with pytest.raises(ValueError) as caught:
        validate(RunConfig(lr=-1.0), "x.toml")
    assert isinstance(caught.value, InputError) and caught.value.field == "lr"


# ---------------------------------------------------------------- --print-config and the example config


def test_print_config_prints_every_default_as_toml_that_reads_back(cli, tmp_path):
    result = cli(["train", "--print-config"])
    assert result.code == 0 and result.err == ""
    for name in FIELDS:
        assert f"{name} = " in result.out, name
    assert load_toml(_written(tmp_path, result.out)) == RunConfig()


def test_print_config_shows_the_config_file_and_flags_applied(cli, tmp_path):
    config = _written(tmp_path, "lr = 0.2\nhidden = [32]\n")
    result = cli(["train", "--config", config, "--epochs", "3", "--print-config"])
    assert load_toml(_written(tmp_path, result.out, "printed.toml")) == RunConfig(lr=0.2, hidden=(32,), epochs=3)
    assert not (tmp_path / "runs").exists()


def test_the_example_config_file_is_the_printed_default_config(cli):
    example = Path(__file__).resolve().parents[1] / "examples" / "config.toml"
    assert example.read_text() == cli(["train", "--print-config"]).out
    assert load_toml(example) == RunConfig()
