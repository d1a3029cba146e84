"""The `mnistlab` command: every bad data file ends in one stderr line naming file and place, exit
status 2, no traceback and no partial output; --help works for every command."""

import json
import os
import subprocess
import sys

import pytest

from conftest import (SRC, assert_no_run_output, assert_one_line_error, read_history, read_json, run_subprocess,
                      tiny_train_args, without_seconds, write_idx, write_idx_folder)

# ---------------------------------------------------------------- bad CSV files

BAD_LINE = 3  # the faulty row of each bad CSV below (1-based, no header)


def csv_lines(tiny, rows=4):
    """The first ``rows`` rows of the tiny test set as CSV lines (label first)."""
    images, labels = tiny.dataset.test_images, tiny.dataset.test_labels
    return [[str(labels[i])] + [str(v) for v in images[i]] for i in range(rows)]


def spoil(cells, case):
    """Break one row of cells the way ``case`` says; return what the error must mention."""
    if case == "wrong column count":
        del cells[-1]
        return ["expected 785 columns", "got 784"]
    if case == "non-numeric cell":
        cells[101] = "abc"
        return ["column 102 (pixel100)", "'abc' is not a number"]
    if case == "pixel outside 0..255":
        cells[101] = "256"
        return ["column 102 (pixel100)", "256 is outside 0..255"]
    if case == "label outside 0..9":
        cells[0] = "10"
        return ["column 1 (label)", "10 is outside 0..9"]
    raise AssertionError(case)


CSV_CASES = ["wrong column count", "non-numeric cell", "pixel outside 0..255", "label outside 0..9"]


def write_bad_csv(tiny, path, case):
    rows = csv_lines(tiny)
    must_mention = spoil(rows[BAD_LINE - 1], case)
    path.write_text("".join(",".join(r) + "\n" for r in rows))
    return [f"{path}:{BAD_LINE}:", *must_mention]


@pytest.mark.parametrize("case", CSV_CASES)
def test_train_on_a_csv_with_a_bad_row_exits_2_naming_file_line_and_field_and_writes_nothing(
        cli, tiny, tmp_path, case):
    bad = tmp_path / "train.csv"
    must_mention = write_bad_csv(tiny, bad, case)
    out = tmp_path / "run"
    result = cli(["train", "--data", bad, "--test-data", tiny.test_csv, "--hidden", "16", "--out", out])
    assert_one_line_error(result, *must_mention)
    assert_no_run_output(out)
    assert not out.exists()


def test_test_command_takes_a_run_folder_as_load_and_draw_do(cli, trained, tiny):
    by_folder = cli(["test", "--weights", trained, "--data", tiny.test_csv, "--json"])
    by_file = cli(["test", "--weights", trained / "model.safetensors", "--data", tiny.test_csv, "--json"])
    assert by_folder.code == 0, by_folder.err
    assert json.loads(by_folder.out) == json.loads(by_file.out)


def test_test_command_with_several_weights_prints_each_members_accuracy_and_the_committees(cli, trained,
                                                                                         trained_cnn, tiny):
    import mnistlab
    result = cli(["test", "--weights", trained, trained_cnn, "--data", tiny.test_csv])
    assert result.code == 0, result.err
    committee = mnistlab.load([trained, trained_cnn]).evaluate(tiny.dataset.test_images, tiny.dataset.test_labels)
    lines = result.out.splitlines()
    assert lines[0] == "committee of 2 models (the mean of their probabilities):"
    for line, run in zip(lines[1:3], (trained, trained_cnn)):
        accuracy = read_json(run / "metrics.json")["test_accuracy"]
        assert line.split()[0] == f"{100 * accuracy:.2f}%" and line.endswith(f"  {run}")
    assert lines[3].split()[0] == f"{100 * committee['accuracy']:.2f}%" and lines[3].endswith("the committee")
    assert f"accuracy {100 * committee['accuracy']:.2f}% on 100 images" in result.out
    as_json = cli(["test", "--weights", trained, trained_cnn, "--data", tiny.test_csv, "--json"])
    assert json.loads(as_json.out) == committee


def test_test_command_with_one_weights_file_prints_no_committee(cli, trained, tiny):
    result = cli(["test", "--weights", trained, "--data", tiny.test_csv, "--json"])
    assert "members" not in json.loads(result.out)
    assert "committee" not in cli(["test", "--weights", trained, "--data", tiny.test_csv]).out


def test_a_committee_whose_members_disagree_on_classes_exits_2_in_one_line(cli, trained, tmp_path):
    from mnistlab.arch import resolve
    from mnistlab.nn import Network
    from mnistlab.weights import save_model
    save_model(tmp_path / "twelve.safetensors", Network(resolve("fc8", 784, 12)), seed=0)
    assert_one_line_error(cli(["test", "--weights", trained, tmp_path / "twelve.safetensors"]),
                          "committee", "twelve.safetensors", "predicts 12 classes", "members must agree")
    assert_one_line_error(cli(["test", "--weights", trained, tmp_path / "missing"]), "missing", "no such weights file")


@pytest.mark.parametrize("case", CSV_CASES)
def test_test_command_on_a_csv_with_a_bad_row_exits_2_naming_file_line_and_field(
        cli, trained, tiny, tmp_path, case):
    bad = tmp_path / "test.csv"
    must_mention = write_bad_csv(tiny, bad, case)
    result = cli(["test", "--weights", trained / "model.safetensors", "--data", bad, "--json"])
    assert_one_line_error(result, *must_mention)
    assert result.out == ""


def test_train_with_a_bad_test_csv_names_the_test_file_and_writes_nothing(cli, tiny, tmp_path):
    bad = tmp_path / "test.csv"
    must_mention = write_bad_csv(tiny, bad, "pixel outside 0..255")
    out = tmp_path / "run"
    result = cli(["train", "--data", tiny.train_csv, "--test-data", bad, "--hidden", "16", "--out", out])
    assert_one_line_error(result, *must_mention)
    assert not out.exists()


def test_an_empty_csv_exits_2_saying_the_file_is_empty_for_train_and_for_test(cli, trained, tiny, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    out = tmp_path / "run"
    result = cli(["train", "--data", empty, "--test-data", tiny.test_csv, "--out", out])
    assert_one_line_error(result, f"{empty}: empty file")
    assert not out.exists()
    result = cli(["test", "--weights", trained / "model.safetensors", "--data", empty])
    assert_one_line_error(result, f"{empty}: empty file")


def test_a_csv_training_file_without_a_test_file_exits_2_asking_for_one(cli, tiny, tmp_path):
    result = cli(["train", "--data", tiny.train_csv, "--out", tmp_path / "run"])
    assert_one_line_error(result, tiny.train_csv, "needs a CSV test file")
    assert not (tmp_path / "run").exists()


def test_a_missing_data_file_exits_2_naming_it(cli, trained, tmp_path):
    missing = tmp_path / "nope.csv"
    result = cli(["test", "--weights", trained / "model.safetensors", "--data", missing])
    assert_one_line_error(result, f"{missing}: no such file")


# ---------------------------------------------------------------- bad IDX files


def idx_folder(tiny, tmp_path):
    return write_idx_folder(tmp_path / "idx", tiny.dataset)


def test_a_truncated_idx_images_file_exits_2_naming_it_and_the_sizes(cli, trained, tiny, tmp_path):
    folder = idx_folder(tiny, tmp_path)
    images = folder / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])
    result = cli(["test", "--weights", trained / "model.safetensors", "--data", images])
    assert_one_line_error(result, images, "truncated", "100x28x28 = 78400 bytes, found 78300")


def test_an_idx_file_with_the_wrong_magic_number_exits_2_naming_it(cli, trained, tiny, tmp_path):
    folder = idx_folder(tiny, tmp_path)
    labels = folder / "t10k-labels-idx1-ubyte"
    labels.write_bytes(b"\x12\x34" + labels.read_bytes()[2:])
    result = cli(["test", "--weights", trained / "model.safetensors", "--data", folder])
    assert_one_line_error(result, labels, "not an IDX file", "magic 1234")


def test_train_on_an_idx_folder_with_a_truncated_file_exits_2_and_writes_nothing(cli, tiny, tmp_path):
    folder = idx_folder(tiny, tmp_path)
    images = folder / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    out = tmp_path / "run"
    result = cli(["train", "--data", folder, "--hidden", "16", "--epochs", "1", "--out", out])
    assert_one_line_error(result, images, "truncated")
    assert not out.exists()


def test_an_idx_folder_of_the_tiny_set_trains_like_its_csv_files(cli, tiny, tmp_path):
    folder = idx_folder(tiny, tmp_path)
    from_idx = cli(["train", "--data", folder, "--hidden", "16", "--epochs", "1", "--augment", "none",
                    "--out", tmp_path / "a"])
    from_csv = cli(tiny_train_args(tiny, tmp_path / "b", "--epochs", "1"))
    assert from_idx.code == from_csv.code == 0
    assert without_seconds(read_history(tmp_path / "a" / "history.csv")) == \
        without_seconds(read_history(tmp_path / "b" / "history.csv"))


# ---------------------------------------------------------------- data export-csv


def test_export_csv_from_a_folder_with_a_bad_idx_file_exits_2_and_writes_no_csv(cli, tiny, tmp_path):
    folder = idx_folder(tiny, tmp_path)
    test_images = folder / "t10k-images-idx3-ubyte"
    write_idx(test_images, tiny.dataset.test_images[:50].reshape(-1, 28, 28))  # 50 images, 100 labels
    target = tmp_path / "csv"
    result = cli(["data", "export-csv", target, "--data", folder])
    assert_one_line_error(result, test_images, "50 images", "100 labels")
    assert not target.exists() or list(target.iterdir()) == []


def test_export_csv_from_a_good_folder_writes_both_csv_files(cli, tiny, tmp_path):
    folder = idx_folder(tiny, tmp_path)
    result = cli(["data", "export-csv", tmp_path / "csv", "--data", folder])
    assert result.code == 0
    train_lines = (tmp_path / "csv" / "mnist_train.csv").read_text().splitlines()
    assert len(train_lines) == 300
    assert (tmp_path / "csv" / "mnist_test.csv").read_bytes() == tiny.test_csv.read_bytes()


# ---------------------------------------------------------------- bad output folder


def test_an_out_path_that_is_an_existing_file_exits_2_naming_it(cli, tiny, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    result = cli(tiny_train_args(tiny, taken))
    assert_one_line_error(result, taken)
    assert taken.read_text() == "not a folder"


def test_training_into_a_folder_that_already_holds_a_run_exits_2_and_keeps_the_old_run(cli, trained, tiny):
    before = (trained / "model.safetensors").read_bytes()
    result = cli(tiny_train_args(tiny, trained))
    assert_one_line_error(result, trained, "already holds a run", "--resume")
    assert (trained / "model.safetensors").read_bytes() == before


# ---------------------------------------------------------------- real processes


def test_a_real_process_given_a_bad_csv_exits_2_with_one_stderr_line(tiny, tmp_path):
    bad = tmp_path / "test.csv"
    must_mention = write_bad_csv(tiny, bad, "non-numeric cell")
    out = tmp_path / "run"
    result = run_subprocess(["train", "--data", tiny.train_csv, "--test-data", bad, "--out", out])
    assert_one_line_error(result, *must_mention)
    assert result.out == ""
    assert not out.exists()


def test_a_real_process_given_a_bad_flag_value_exits_2_with_one_stderr_line(tmp_path):
    result = run_subprocess(["train", "--batch-size", "0", "--out", tmp_path / "run"])
    assert_one_line_error(result, "--batch-size", "must be a positive number")
    assert not (tmp_path / "run").exists()


def test_a_real_process_given_an_unknown_flag_exits_2_with_one_stderr_line():
    result = run_subprocess(["train", "--learning-rate", "0.1"])
    assert_one_line_error(result, "unrecognized arguments: --learning-rate")


# ---------------------------------------------------------------- flags and help


def test_an_unknown_flag_exits_2_with_one_line_and_no_usage_dump(cli):
    assert_one_line_error(cli(["test", "--weights", "x", "--bogus"]), "--bogus")


def test_no_command_exits_2_with_one_line(cli):
    assert_one_line_error(cli([]), "command")


def test_test_without_weights_exits_2_saying_weights_is_required(cli):
    assert_one_line_error(cli(["test"]), "--weights")


@pytest.mark.parametrize("command, flags", [
    ([], ["train", "test", "data", "--version"]),
    (["train"], ["--config", "--out", "--resume", "--no-progress", "--data", "--test-data", "--hidden",
                 "--activation", "--init", "--optimizer", "--lr", "--momentum", "--batch-size", "--epochs",
                 "--stop", "--stop-k", "--seed", "--init-from", "--threads", "--val-fraction"]),
    (["test"], ["--weights", "--data", "--json"]),
    (["data"], ["export-csv"]),
    (["data", "export-csv"], ["folder", "--data"]),
])
def test_help_of_each_command_exits_0_and_lists_its_flags(cli, command, flags):
    result = cli([*command, "--help"])
    assert result.code == 0
    assert result.err == ""
    for flag in flags:
        assert flag in result.out, flag


def test_train_help_shows_each_default_once_written_as_the_flag_takes_it(cli):
    out = " ".join(cli(["train", "--help"]).out.split())  # undo argparse's line wrapping
    assert "--lr RATE learning rate (default: 0.05)" in out
    assert "--hidden SIZES hidden layer sizes" in out and "--init-from PATH" in out and "--epochs N" in out
    assert "--activation NAME hidden activation: relu, leaky_relu, sigmoid, tanh (default: relu)" in out
    assert " X " not in out  # every placeholder says what goes there
    assert "(default: 800,800)" in out  # --hidden takes 800,800, not a Python tuple
    assert "(default: true)" in out  # --nesterov takes true/false
    assert "(default: bundled MNIST) --test-data" in out  # not followed by a second "(default: None)"
    assert out.endswith("most BLAS threads to use; small networks and batches use one (default: every core)")


def test_version_prints_the_package_version(cli):
    from mnistlab import __version__
    result = cli(["--version"])
    assert result.code == 0 and result.out.strip() == f"mnistlab {__version__}"


def test_resume_with_other_run_flags_exits_2_instead_of_ignoring_them(cli, tmp_path):
    result = cli(["train", "--resume", str(tmp_path / "run"), "--epochs", "9"])
    assert_one_line_error(result, "--resume", "--epochs")


def test_a_reader_that_stops_early_ends_the_output_quietly(trained, tiny):
    """``mnistlab test ... | head -1`` where head has gone: the closed pipe is no error."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab", "test", "--weights", trained / "model.safetensors",
                             "--data", tiny.test_csv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # before the process has written anything: its first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert err == ""
