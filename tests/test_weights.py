"""Weights files: a save/load round trip is bit-identical and keeps the metadata; writes are atomic;
a damaged or inconsistent file is one stderr line naming it, exit status 2."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import mnistlab.weights as weights_module
from conftest import assert_one_line_error, read_json, tiny_train_args
from mnistlab.config import RunConfig, load_toml
from mnistlab.data import fingerprint, load_csv
from mnistlab.errors import InputError
from mnistlab.nn import Network
from mnistlab.files import write_json
from mnistlab.build import build_trainer
from mnistlab.checkpoint import read_checkpoint, restore
from mnistlab.weights import FORMAT, load_model, read_metadata, save_model


def small_network(seed=0, sizes=(784, 16, 10), activation="tanh"):
    return Network.initialized(list(sizes), "he", np.random.default_rng(seed), activation, dropout=0.2)


INFO = {"init": "he", "config": RunConfig(hidden=(16,), activation="tanh").to_dict(), "seed": 7,
        "metrics": {"test_accuracy": 0.5, "epochs": 3, "stop_reason": "max epochs (3)"},
        "data_sha256": "ab" * 32}


# ---------------------------------------------------------------- round trip


def test_save_then_load_gives_bit_identical_weights_and_biases(tmp_path):
    network = small_network()
    network.biases[0][:] = np.linspace(-1, 1, 16, dtype=np.float32)  # not all zero, so biases are checked
    save_model(tmp_path / "m.safetensors", network, **INFO)
    loaded, _ = load_model(tmp_path / "m.safetensors")
    assert loaded.sizes == [784, 16, 10]
    for a, b in zip(loaded.weights + loaded.biases, network.weights + network.biases):
        assert a.dtype == b.dtype == np.float32
        assert np.array_equal(a, b)


def test_save_then_load_keeps_sizes_activation_config_seed_metrics_and_fingerprint(tmp_path):
    save_model(tmp_path / "m.safetensors", small_network(), **INFO)
    loaded, meta = load_model(tmp_path / "m.safetensors")
    assert loaded.activation_name == "tanh"
    assert meta["format"] == FORMAT
    assert meta["sizes"] == [784, 16, 10]
    assert meta["activation"] == "tanh"
    assert meta["dropout"] == 0.2
    assert meta["init"] == "he"
    assert meta["seed"] == 7
    assert meta["metrics"] == INFO["metrics"]
    assert meta["data_sha256"] == "ab" * 32
    assert RunConfig(**{**meta["config"], "hidden": tuple(meta["config"]["hidden"])}) == \
        RunConfig(hidden=(16,), activation="tanh")
    assert "pixel / 255" in meta["normalisation"]


def test_a_loaded_network_predicts_exactly_what_the_saved_one_did(tmp_path, tiny):
    network = small_network()
    save_model(tmp_path / "m.safetensors", network, **INFO)
    loaded, _ = load_model(tmp_path / "m.safetensors")
    x = tiny.dataset.test_images.astype(np.float32) / 255
    assert np.array_equal(loaded.logits(x), network.logits(x))


def test_a_trained_models_metadata_matches_its_run_folder(trained, tiny):
    _, meta = load_model(trained / "model.safetensors")
    assert meta["metrics"] == read_json(trained / "metrics.json")
    assert meta["config"] == {**load_toml(trained / "config.toml").to_dict(), "hidden": [16]}
    assert meta["seed"] == 0 and meta["sizes"] == [784, 16, 10]
    assert meta["metrics"]["data_sha256"] == fingerprint(*load_csv(tiny.train_csv))


# ---------------------------------------------------------------- atomic writes


def test_saving_leaves_only_the_target_file_in_the_folder(tmp_path):
    save_model(tmp_path / "m.safetensors", small_network(), **INFO)
    save_model(tmp_path / "m.safetensors", small_network(1), **INFO)  # and replacing it
    write_json(tmp_path / "metrics.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "metrics.json"]


@pytest.mark.parametrize("interruption", [OSError(28, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk full", "ctrl-c"])
def test_a_write_that_fails_half_way_leaves_the_previous_file_intact_and_no_temp_file(
        tmp_path, monkeypatch, interruption):
    path = tmp_path / "m.safetensors"
    save_model(path, small_network(0), **INFO)
    before = path.read_bytes()

    def half_write(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"dense.0")  # the start of a safetensors header
        raise interruption

    monkeypatch.setattr(weights_module, "save_file", half_write)
    with pytest.raises(type(interruption)):
        save_model(path, small_network(1), **INFO)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    monkeypatch.undo()
    loaded, _ = load_model(path)
    assert np.array_equal(loaded.weights[0], small_network(0).weights[0])


def test_a_json_write_that_fails_half_way_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"test_accuracy": 0.9})
    with pytest.raises(TypeError):
        write_json(path, {"test_accuracy": 0.5, "oops": object()})  # json.dump fails after writing a prefix
    assert read_json(path) == {"test_accuracy": 0.9}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_saved_files_get_the_usual_permissions_not_the_temp_files_private_ones(tmp_path):
    old = os.umask(0o022)
    try:
        save_model(tmp_path / "m.safetensors", small_network(), **INFO)
        write_json(tmp_path / "metrics.json", {})
    finally:
        os.umask(old)
    assert oct((tmp_path / "m.safetensors").stat().st_mode & 0o777) == oct(0o644)
    assert oct((tmp_path / "metrics.json").stat().st_mode & 0o777) == oct(0o644)


# ---------------------------------------------------------------- damaged files through `mnistlab test`


def model_copy(trained, tmp_path):
    path = tmp_path / "model.safetensors"
    shutil.copy(trained / "model.safetensors", path)
    return path


def test_a_truncated_weights_file_exits_2_naming_it(cli, trained, tiny, tmp_path):
    path = model_copy(trained, tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = cli(["test", "--weights", path, "--data", tiny.test_csv])
    assert_one_line_error(result, f"{path}: not a readable safetensors file")
    assert result.out == ""


def test_a_weights_file_with_a_corrupted_header_exits_2_naming_it(cli, trained, tiny, tmp_path):
    path = model_copy(trained, tmp_path)
    raw = bytearray(path.read_bytes())
    raw[8:40] = b"#" * 32  # garbage inside the JSON header
    path.write_bytes(bytes(raw))
    result = cli(["test", "--weights", path, "--data", tiny.test_csv])
    assert_one_line_error(result, f"{path}: not a readable safetensors file")


def test_a_file_of_random_bytes_given_as_weights_exits_2(cli, tiny, tmp_path):
    path = tmp_path / "random.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    assert_one_line_error(cli(["test", "--weights", path, "--data", tiny.test_csv]), path)


def test_a_missing_weights_file_exits_2_naming_it(cli, tiny, tmp_path):
    path = tmp_path / "nope.safetensors"
    assert_one_line_error(cli(["test", "--weights", path, "--data", tiny.test_csv]), f"{path}: no such weights file")


def hand_made(path, tensors, meta):
    save_file({k: np.asarray(v, np.float32) for k, v in tensors.items()}, str(path),
              metadata=None if meta is None else {"mnistlab": json.dumps(meta)})
    return path


def layers(*sizes):
    tensors = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        tensors[f"dense.{i}.weight"] = np.zeros((fan_in, fan_out))
        tensors[f"dense.{i}.bias"] = np.zeros(fan_out)
    return tensors


META = {"format": FORMAT, "activation": "relu"}


@pytest.mark.parametrize("tensors, meta, must_mention", [
    (layers(784, 16, 10), {**META, "sizes": [784, 32, 10]},
     ["tensor dense.0.weight has shape (784, 16)", "metadata sizes [784, 32, 10] need (784, 32)"]),
    (layers(784, 16, 10), {**META, "sizes": [784, 16, 16, 10]}, ["dense.1.weight has shape (16, 10)"]),
    (layers(784, 16, 10), {**META, "sizes": [784, 10]}, ["dense.0.weight has shape (784, 16)"]),
    ({k: v for k, v in layers(784, 16, 10).items() if k != "dense.1.bias"}, {**META, "sizes": [784, 16, 10]},
     ["tensor dense.1.bias missing"]),
    ({**layers(784, 16, 10), "dense.2.weight": np.zeros((10, 10))}, {**META, "sizes": [784, 16, 10]},
     ["tensors ['dense.2.weight'] not described by its metadata"]),
    (layers(784, 16, 10), None, ["no mnistlab metadata"]),
    (layers(784, 16, 10), {**META, "sizes": [784, 16, 10], "activation": "swish"}, ["unknown activation 'swish'"]),
    (layers(784, 16, 10), {"format": FORMAT, "sizes": [784, 16, 10]}, ["metadata is damaged"]),
    ({}, {**META, "sizes": [784]}, ["sizes [784]"]),
    (layers(784, 16, 10), {**META, "sizes": [784, 16, 10], "activation": ["relu"]}, ["unknown activation"]),
    (layers(784, 16, 10), [784, 16, 10], ["metadata is damaged"]),
], ids=["hidden size disagrees", "one layer too many", "one layer too few", "missing tensor", "extra tensor",
        "no metadata", "unknown activation", "no activation", "one size and no tensors",
        "activation not a string", "metadata not an object"])
def test_weights_that_disagree_with_their_metadata_exit_2_naming_file_and_tensor(
        cli, tiny, tmp_path, tensors, meta, must_mention):
    path = hand_made(tmp_path / "w.safetensors", tensors, meta)
    result = cli(["test", "--weights", path, "--data", tiny.test_csv])
    assert_one_line_error(result, f"{path}:", *must_mention)


def test_weights_with_nan_values_exit_2(cli, tiny, tmp_path):
    tensors = layers(784, 16, 10)
    tensors["dense.1.weight"][3, 4] = np.nan
    path = hand_made(tmp_path / "w.safetensors", tensors, {**META, "sizes": [784, 16, 10]})
    assert_one_line_error(cli(["test", "--weights", path, "--data", tiny.test_csv]), path, "NaN")


def test_weights_for_a_different_image_size_exit_2_naming_both_files(cli, tiny, tmp_path):
    path = hand_made(tmp_path / "w.safetensors", layers(100, 16, 10), {**META, "sizes": [100, 16, 10]})
    result = cli(["test", "--weights", path, "--data", tiny.test_csv])
    assert_one_line_error(result, tiny.test_csv, "784 pixels", f"{path} expects 100")


def test_load_model_raises_input_error_not_a_crash_on_a_checkpoint_file(trained):
    with pytest.raises(InputError, match="checkpoint.safetensors"):
        load_model(trained / "checkpoint.safetensors")


# ---------------------------------------------------------------- damaged files through `train --init-from`


def test_train_init_from_a_damaged_weights_file_exits_2_and_writes_no_run(cli, trained, tiny, tmp_path):
    path = model_copy(trained, tmp_path)
    path.write_bytes(path.read_bytes()[:100])
    out = tmp_path / "run"
    result = cli(tiny_train_args(tiny, out, "--init-from", path))
    assert_one_line_error(result, f"{path}: not a readable safetensors file")
    assert not out.exists()


def test_train_init_from_weights_for_another_input_size_exits_2_and_writes_no_run(cli, tiny, tmp_path):
    path = hand_made(tmp_path / "w.safetensors", layers(100, 16, 10), {**META, "sizes": [100, 16, 10]})
    out = tmp_path / "run"
    result = cli(tiny_train_args(tiny, out, "--init-from", path))
    assert_one_line_error(result, path, "[100, 16, 10]", "784 inputs")
    assert not out.exists()


# ---------------------------------------------------------------- weights that do not fit the data


def test_weights_for_fewer_classes_than_the_data_has_exit_2_naming_both(cli, tiny, tmp_path):
    path = hand_made(tmp_path / "w.safetensors", layers(784, 16, 5), {**META, "sizes": [784, 16, 5]})
    result = cli(["test", "--weights", path, "--data", tiny.test_csv])
    assert_one_line_error(result, tiny.test_csv, "labels up to 9", f"{path} predicts 5 classes (0..4)")


def test_weights_that_do_not_fit_the_bundled_test_set_name_it_not_none(cli, tmp_path):
    path = hand_made(tmp_path / "w.safetensors", layers(100, 16, 10), {**META, "sizes": [100, 16, 10]})
    result = cli(["test", "--weights", path])
    assert_one_line_error(result, "bundled MNIST test set", "784 pixels", f"{path} expects 100")
    assert "None" not in result.err


def test_a_checkpoint_given_to_test_says_it_is_one_and_names_the_model_file(cli, trained, tiny):
    result = cli(["test", "--weights", trained / "checkpoint.safetensors", "--data", tiny.test_csv])
    assert_one_line_error(result, "is a training checkpoint", str(trained / "model.safetensors"), "--resume")


# ---------------------------------------------------------------- format versions


DATA = Path(__file__).resolve().parent / "data"


def test_every_file_names_its_layout_and_version(trained):
    assert read_metadata(trained / "model.safetensors")["format"] == "mnistlab-mlp/1"
    assert read_metadata(trained / "checkpoint.safetensors")["format"] == "mnistlab-checkpoint/1"


def test_a_model_file_written_by_the_previous_version_still_loads():
    """tests/data/model-v1.safetensors was written by mnistlab before checkpoint.py (commit c5803f8)."""
    network, meta = load_model(DATA / "model-v1.safetensors")
    assert network.sizes == [6, 5, 3] and network.activation_name == "tanh"
    assert np.array_equal(network.biases[0], np.linspace(-1, 1, 5, dtype=np.float32))
    assert meta["config"]["hidden"] == [5] and meta["metrics"]["test_accuracy"] == 0.5


def test_a_checkpoint_written_by_the_previous_version_restores_into_a_trainer():
    """tests/data/checkpoint-v1.safetensors (no format field) was written by run.save_checkpoint at c5803f8:
    a [6, 5, 3] tanh network after 2 epochs of SGD with patience, best epoch 2."""
    state = read_checkpoint(DATA / "checkpoint-v1.safetensors")
    assert state.data_sha256 == "cd" * 32 and state.stop_reason == "max epochs (2)" and len(state.history) == 2
    config = RunConfig(**{**state.config, "hidden": tuple(state.config["hidden"])})
    trainer = build_trainer(config, 6, classes=3)
    restore(state, trainer)
    assert trainer.best.epoch == 2 and trainer.best.val_loss == pytest.approx(1.2849745482206345)
    assert [w.shape for w in trainer.best.weights] == [(6, 5), (5, 3)]
    assert set(trainer.optimizer.velocity) == {0, 1}
    assert trainer.history == state.history and trainer.stop_reason == "max epochs (2)"


@pytest.mark.parametrize("fmt, must_mention", [
    ("mnistlab-mlp/2", ["format 'mnistlab-mlp/2' is newer", "upgrade mnistlab"]),
    ("mnistlab-cnn/1", ["unknown file format 'mnistlab-cnn/1'"]),
    ("mnistlab-mlp/x", ["unknown file format"]),
])
def test_a_file_of_an_unknown_or_newer_format_exits_2_saying_so(cli, tiny, tmp_path, fmt, must_mention):
    path = hand_made(tmp_path / "w.safetensors", layers(784, 16, 10), {**META, "format": fmt, "sizes": [784, 16, 10]})
    assert_one_line_error(cli(["test", "--weights", path, "--data", tiny.test_csv]), path, *must_mention)


def test_a_model_file_given_as_a_checkpoint_is_refused_naming_it(trained):
    with pytest.raises(InputError, match="is a model file, not a training checkpoint"):
        read_checkpoint(trained / "model.safetensors")


def test_a_model_file_replaced_while_it_is_read_never_mixes_two_files(tmp_path):
    import threading
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_model(first, small_network(0, (784, 16, 10)), **INFO)
    save_model(second, small_network(1, (784, 48, 10)), **INFO)
    target, tmp = tmp_path / "model.safetensors", tmp_path / "model.tmp"
    shutil.copy(first, target)
    stop = threading.Event()

    def swap():  # atomic renames, as atomic_write does, alternating the two models
        i = 0
        while not stop.is_set():
            shutil.copy((first, second)[i % 2], tmp)
            os.replace(tmp, target)
            i += 1
    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        sizes = [load_model(target)[0].sizes[1] for _ in range(1500)]
    finally:
        stop.set()
        swapper.join()
    assert set(sizes) == {16, 48}  # both were read, each whole: no error mixing one's metadata and the other's tensors
