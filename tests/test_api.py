"""The Python API: mnistlab.train returns a Run, mnistlab.load a Model that predicts from images in any
of the accepted forms, mnistlab.load_mnist the bundled set; bad arguments raise the CLI's errors."""

import subprocess
import sys

import numpy as np
import pytest

import mnistlab
from conftest import SRC, read_history, read_json
from mnistlab.run import resume_run


@pytest.fixture(scope="module")
def run(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "nb"
    return mnistlab.train(hidden=[16], epochs=2, data=str(tiny.train_csv), test_data=str(tiny.test_csv),
                          out=out, log=None)


@pytest.fixture(scope="module")
def images(tiny):
    return tiny.dataset.test_images.reshape(-1, 28, 28)  # uint8 (100, 28, 28)


# ---------------------------------------------------------------- train


def test_train_returns_the_runs_folder_metrics_history_and_model(run):
    assert run.out_dir.name == "nb"
    assert run.metrics == read_json(run.out_dir / "metrics.json")
    assert isinstance(run.metrics["test_accuracy"], float) and 0.25 < run.metrics["test_accuracy"] <= 1
    assert run.history == read_history(run.out_dir / "history.csv")
    assert [r["epoch"] for r in run.history] == [1, 2]
    assert set(run.history[0]) >= {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert run.model.sizes == [784, 16, 10]
    assert run.model.metadata["metrics"] == run.metrics


def test_train_takes_the_toml_keys_and_records_them_in_config_toml(run):
    text = (run.out_dir / "config.toml").read_text()
    assert "hidden = [16]\n" in text and "epochs = 2\n" in text


@pytest.mark.parametrize("settings, field, must_mention", [
    ({"lr": 0}, "lr", "lr = 0.0: must be a positive number"),
    ({"hidden": [16.5]}, "hidden", "not a valid list of int"),
    ({"activation": "gelu"}, "activation", "expected one of relu"),
    ({"learning_rate": 0.1}, "learning_rate", "unknown key 'learning_rate'"),
    ({"epochs": True}, "epochs", "not a valid int"),
])
def test_bad_settings_raise_a_value_error_naming_the_field_and_write_nothing(tmp_path, settings, field, must_mention):
    with pytest.raises(ValueError, match="train\\(\\)") as caught:
        mnistlab.train(out=tmp_path / "run", log=None, **settings)
    assert isinstance(caught.value, mnistlab.InputError)
    assert caught.value.field == field
    assert must_mention in str(caught.value)
    assert not (tmp_path / "run").exists()


def test_a_single_hidden_size_may_be_given_as_a_number(tiny, tmp_path):
    run = mnistlab.train(hidden=8, epochs=1, data=str(tiny.train_csv), test_data=str(tiny.test_csv),
                         out=tmp_path / "run", log=None)
    assert run.model.sizes == [784, 8, 10]


def test_train_logs_each_epoch_to_the_given_function(tiny, tmp_path):
    lines = []
    mnistlab.train(hidden=[8], epochs=2, data=str(tiny.train_csv), test_data=str(tiny.test_csv),
                   out=tmp_path / "run", log=lines.append)
    assert [line.split()[1] for line in lines if line.startswith("epoch")] == ["1/2", "2/2"]


# ---------------------------------------------------------------- load, predict


def test_predict_gives_the_same_labels_for_every_accepted_form_of_the_images(run, images):
    model = mnistlab.load(run.out_dir / "model.safetensors")
    expected = model.network.predict(images.reshape(-1, 784).astype(np.float32) / 255)
    flat = images.reshape(-1, 784)
    for form in (images, flat, flat.astype(np.float32) / 255, images.astype(np.float64) / 255,
                 flat.astype(np.int64), flat.tolist()):
        assert np.array_equal(model.predict(form), expected)
    assert model.predict(images).shape == (100,)


def test_predict_proba_rows_sum_to_one_and_agree_with_predict(run, images):
    model = mnistlab.load(run.out_dir)  # a run folder: its model.safetensors
    proba = model.predict_proba(images)
    assert proba.shape == (100, 10)
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-12) and (proba >= 0).all()
    assert np.array_equal(proba.argmax(axis=1), model.predict(images))


def test_a_single_image_gives_one_label_and_one_row_of_probabilities(run, images):
    model = run.model
    for image in (images[3], images[3].reshape(784), images[3] / 255.0):
        assert model.predict(image) == model.predict(images)[3]
        assert isinstance(model.predict(image), int)
        assert np.allclose(model.predict_proba(image), model.predict_proba(images)[3])


def test_evaluate_reports_what_the_test_command_does(run, tiny, cli):
    import json
    result = cli(["test", "--weights", run.out_dir / "model.safetensors", "--data", tiny.test_csv, "--json"])
    assert run.model.evaluate(tiny.dataset.test_images, tiny.dataset.test_labels) == json.loads(result.out)


@pytest.mark.parametrize("bad, must_mention", [
    (np.full((2, 28, 28), 255.0), "float pixels must be in [0, 1]"),
    (np.zeros((2, 27, 27), np.uint8), "does not fit the network's 784 inputs"),
    (np.zeros((2, 100)), "does not fit"),
    (np.full((2, 784), -1), "integer pixels must be in 0..255"),
    (np.full((2, 784), np.nan), "NaN"),
    (np.full((2, 784), "a"), "dtype"),
])
def test_images_that_do_not_fit_raise_a_value_error_saying_why(run, bad, must_mention):
    with pytest.raises(ValueError, match="images") as caught:
        run.model.predict(bad)
    assert must_mention in str(caught.value)


def test_a_cnn_trains_from_the_api_and_its_loaded_model_predicts_as_the_run_did(tiny, tmp_path, images):
    from conftest import TINY_CNN

    cnn = mnistlab.train(arch=TINY_CNN, epochs=1, augment="none", data=str(tiny.train_csv),
                         test_data=str(tiny.test_csv), out=tmp_path / "cnn", log=None)
    model = mnistlab.load(tmp_path / "cnn")
    assert model.arch == cnn.model.arch == TINY_CNN and model.sizes is None
    labels = model.predict(images)
    np.testing.assert_array_equal(labels, cnn.model.predict(images))
    assert (labels == tiny.dataset.test_labels).mean() == cnn.metrics["test_accuracy"]
    assert model.predict(images[0]) == labels[0]  # one image


def test_load_of_a_checkpoint_says_it_is_one_and_which_file_to_use(run):
    with pytest.raises(ValueError, match="is a training checkpoint.*model.safetensors"):
        mnistlab.load(run.out_dir / "checkpoint.safetensors")


def test_load_mnist_gives_the_bundled_set_as_image_arrays():
    mnist = mnistlab.load_mnist()
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.test_images.shape == (10000, 28, 28)
    assert mnist.train_images.dtype == np.uint8 and mnist.train_labels.shape == (60000,)
    assert set(np.unique(mnist.test_labels)) == set(range(10))


# ---------------------------------------------------------------- the package stays light


def test_importing_mnistlab_loads_neither_numpy_nor_the_network():
    code = ("import sys, mnistlab; "
            "print(sorted(m for m in sys.modules if m in ('numpy', 'mnistlab.nn', 'mnistlab.api')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)},
                         check=True).stdout
    assert out.strip() == "[]"


def test_mnistlab_train_stays_the_function_after_the_training_loop_module_is_imported():
    import mnistlab
    from mnistlab.trainer import Trainer
    assert callable(mnistlab.train) and mnistlab.train.__module__ == "mnistlab.api"
    assert Trainer.__module__ == "mnistlab.trainer"


def test_resuming_an_api_run_that_finished_does_nothing(run):
    before = {p.name: p.read_bytes() for p in run.out_dir.iterdir()}
    result = resume_run(run.out_dir, log=lambda m: None)
    assert result.metrics == run.metrics
    assert {p.name: p.read_bytes() for p in run.out_dir.iterdir()} == before


# ---------------------------------------------------------------- hostile input (issue 21)


@pytest.mark.parametrize("labels, must_mention", [
    (np.array(["7", "2"] * 50), "expected integer classes 0..9"),
    (np.r_[1.5, 2.0, np.zeros(98)], "expected integer classes 0..9, got float64 values (1.5, 2.0, 0.0, ...)"),
    (np.full(100, 10), "expected classes 0..9, got 10..10"),
])
def test_evaluate_refuses_text_fractional_and_out_of_range_labels_in_one_clear_error(run, images, labels,
                                                                                       must_mention):
    with pytest.raises(mnistlab.InputError) as caught:
        run.model.evaluate(images, labels)
    assert str(caught.value).startswith("labels: ") and must_mention in str(caught.value)


def test_evaluate_of_an_empty_set_is_a_clear_error_and_whole_number_float_labels_are_fine(run, images, tiny):
    with pytest.raises(mnistlab.InputError, match="images: none given"):
        run.model.evaluate(images[:0], [])
    labels = tiny.dataset.test_labels
    assert run.model.evaluate(images, labels.astype(float)) == run.model.evaluate(images, labels)


def test_predicting_0_1_integer_images_warns_that_they_are_read_as_0_255(run, images):
    with pytest.warns(UserWarning, match="largest value is 1"):
        run.model.predict((images > 128).astype(np.int64))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # uint8 0-255 and floats 0-1 say nothing
        run.model.predict(images)
        run.model.predict((images > 128).astype(np.float32))


def test_train_with_an_array_as_data_says_data_must_be_a_path_in_one_short_line(images, tmp_path):
    with pytest.raises(mnistlab.InputError) as caught:
        mnistlab.train(data=images, epochs=1, out=tmp_path / "run", log=None)
    message = str(caught.value)
    assert "data must be a path" in message and "ndarray" in message
    assert "\n" not in message and len(message) < 250 and caught.value.field == "data"
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- committees


@pytest.fixture(scope="module")
def members(run, trained, trained_cnn):
    """Three finished runs on the tiny data: two MLPs (16 units, different seeds) and a CNN."""
    return [run.out_dir, trained, trained_cnn]


def write_model(path, arch, features, classes):
    """A model file of an untrained ``arch`` network taking ``features`` inputs and predicting ``classes``."""
    from mnistlab.arch import resolve
    from mnistlab.nn import Network
    from mnistlab.weights import save_model

    save_model(path, Network(resolve(arch, features, classes)), seed=0)
    return path


def test_a_committee_predicts_the_class_of_the_mean_of_its_members_probabilities(members, images):
    committee = mnistlab.load(members)
    assert isinstance(committee, mnistlab.Committee) and len(committee.members) == 3
    each = [mnistlab.load(path).predict_proba(images) for path in members]
    mean = sum(each) / 3
    np.testing.assert_allclose(committee.predict_proba(images), mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(committee.predict(images), mean.argmax(axis=1))
    assert not all(np.array_equal(p.argmax(axis=1), mean.argmax(axis=1)) for p in each)  # not one member's answer


def test_a_committee_takes_every_form_of_images_a_model_does(members, images):
    committee = mnistlab.load(members)
    expected = committee.predict(images)
    flat = images.reshape(-1, 784)
    for form in (flat, flat.astype(np.float32) / 255, images.reshape(-1, 1, 28, 28), flat.tolist()):
        np.testing.assert_array_equal(committee.predict(form), expected)
    assert committee.predict(images[5]) == expected[5] and isinstance(committee.predict(images[5]), int)
    assert committee.predict_proba(images[5]).shape == (10,)
    with pytest.raises(ValueError, match="float pixels must be in"):
        committee.predict(np.full((2, 784), 2.0))


def test_a_committee_of_one_is_that_model_and_a_committee_gives_the_same_answers_in_small_chunks(members, images):
    assert isinstance(mnistlab.load(members[:1]), mnistlab.Model)
    committee = mnistlab.load(members)
    x, _ = committee.inputs(images)
    whole = committee.probabilities(x)  # float32 products of 7 rows and of 100 round differently: rtol 1e-5
    np.testing.assert_allclose(committee.probabilities(x, chunk=7), whole, rtol=1e-5)
    chunked = np.concatenate([logits for _, logits in committee.chunks(x, chunk=7)])
    np.testing.assert_allclose(np.exp(chunked), whole, rtol=1e-5)


def test_committee_evaluate_reports_its_accuracy_and_each_members_from_one_pass(members, tiny):
    committee = mnistlab.load(members)
    images, labels = tiny.dataset.test_images, tiny.dataset.test_labels
    result = committee.evaluate(images, labels)
    assert result["accuracy"] == (committee.predict(images) == labels).mean()
    assert [m["name"] for m in result["members"]] == [str(p) for p in members]
    for member, path in zip(result["members"], members):
        alone = mnistlab.load(path).evaluate(images, labels)
        assert member["accuracy"] == alone["accuracy"] == read_json(path / "metrics.json")["test_accuracy"]
        assert member["loss"] == pytest.approx(alone["loss"], rel=1e-6)
    mean = committee.predict_proba(images)
    assert result["loss"] == pytest.approx(-np.log(mean[np.arange(len(labels)), labels]).mean(), rel=1e-9)
    assert sum(map(sum, result["confusion_matrix"])) == len(labels)


def test_a_committee_describes_its_members(members):
    committee = mnistlab.load(members)
    assert committee.describe() == "committee of 3 (784-16-10, conv4k3-bn-pool2-conv6k3s2-drop0.2-fc16)"
    assert committee.parameter_count == sum(mnistlab.load(p).parameter_count for p in members)
    assert committee.classes == 10 and committee.features == 784
    assert [m["seed"] for m in committee.metadata["committee"]] == [mnistlab.load(p).metadata["seed"] for p in members]


@pytest.mark.parametrize("arch, features, classes, must_mention", [
    ("fc8", 100, 10, "takes 100 inputs and predicts 10 classes"),
    ("fc8", 784, 12, "takes 784 inputs and predicts 12 classes"),
])
def test_members_that_disagree_on_inputs_or_classes_are_refused_in_one_line(members, tmp_path, arch, features,
                                                                            classes, must_mention):
    odd = write_model(tmp_path / "odd.safetensors", arch, features, classes)
    with pytest.raises(mnistlab.InputError, match="committee") as caught:
        mnistlab.load([members[0], odd])
    assert must_mention in str(caught.value) and str(odd) in str(caught.value) and "\n" not in str(caught.value)


def test_load_of_no_model_or_a_missing_member_is_a_clear_error(members, tmp_path):
    with pytest.raises(mnistlab.InputError, match="no model given"):
        mnistlab.load([])
    with pytest.raises(mnistlab.InputError, match="no such weights file"):
        mnistlab.load([members[0], tmp_path / "missing.safetensors"])


def test_committee_names_keep_an_existing_path_with_commas_whole(tmp_path):
    """Study run folders have commas in their names (runs/augment=zoom,rotate,shift/seed0): `draw --weights` and
    bench_draw must read such a folder as one model, and split only names that are not paths."""
    from mnistlab.errors import InputError
    from mnistlab.inference import committee_names
    folder = tmp_path / "augment=zoom,rotate,shift" / "seed0"
    folder.mkdir(parents=True)
    assert committee_names(str(folder)) == [str(folder)]
    assert committee_names(f"{tmp_path}/a.safetensors,{tmp_path}/b.safetensors") == [
        f"{tmp_path}/a.safetensors", f"{tmp_path}/b.safetensors"]
    assert committee_names("pretrained") == ["pretrained"]
    with pytest.raises(InputError, match="empty name between commas"):
        committee_names("a,,b")
