"""Fine-tuning on a drawings folder (finetune.py): batches mixed with MNIST in the asked proportion, a run
folder the drawing page lists, MNIST and drawings accuracy before and after in metrics.json."""

import numpy as np
import pytest

from conftest import assert_one_line_error, read_json

from mnistlab.data import load_dataset
from mnistlab.data.augment import Augmentation
from mnistlab.data.collection import Collection
from mnistlab.finetune import FinetuneData, is_drawings_folder, mixed_epoch
from mnistlab.web.models import model_files


def drawings_folder(path, images, labels, invert=True):
    """A collected-drawings folder of MNIST digits, every other one inverted (unlike MNIST)."""
    collection = Collection(path)
    for i, (image, label) in enumerate(zip(images, labels)):
        shown = 255 - image if invert and i % 2 else image
        collection.add(shown.reshape(28, 28), shown.reshape(28, 28), int(label), 0, np.full(10, 0.1))
    return path


@pytest.fixture(scope="module")
def mnist():
    return load_dataset()


def fake_data(n_draw, n_mnist):
    """Drawings all 1.0 with label 1, MNIST all 0.0 with label 0: each row tells where it came from."""
    empty = np.zeros((0, 784), np.float32)
    return FinetuneData(np.ones((n_draw, 784), np.float32), np.ones(n_draw, np.intp), empty, np.zeros(0, np.intp),
                        np.zeros((n_mnist, 784), np.float32), np.zeros(n_mnist, np.intp), empty,
                        np.zeros(0, np.intp), empty, np.zeros(0, np.intp), "", "")


@pytest.mark.parametrize("mix, batch, from_mnist", [(0.8, 64, 51), (0.5, 10, 5), (0.0, 8, 0)])
def test_every_batch_holds_the_asked_share_of_mnist_images(mix, batch, from_mnist):
    xs, ys = mixed_epoch(fake_data(100, 1000), batch, mix, np.random.default_rng(0))
    per_batch = batch - from_mnist
    assert len(xs) == -(-100 // per_batch) * batch
    batches = ys.reshape(-1, batch)
    assert (batches[:, :from_mnist] == 0).all() and (batches[:, from_mnist:] == 1).all()
    assert np.array_equal(xs[:, 0].reshape(-1, batch), batches.astype(np.float32))


def test_each_drawing_comes_once_an_epoch_before_any_comes_twice():
    data = fake_data(10, 50)
    data = data._replace(draw_x=np.arange(10, dtype=np.float32)[:, None].repeat(784, 1))
    xs, _ = mixed_epoch(data, 4, 0.5, np.random.default_rng(1))  # 2 drawings a batch, 5 batches
    drawn = xs.reshape(-1, 4, 784)[:, 2:, 0].ravel()
    assert sorted(drawn) == list(range(10))


def test_the_drawings_are_augmented_and_the_mnist_part_is_not(mnist):
    digits = mnist.test_images[:8].astype(np.float32) / 255
    data = fake_data(8, 8)._replace(draw_x=digits, mnist_x=digits)
    xs, _ = mixed_epoch(data, 4, 0.5, np.random.default_rng(2), Augmentation(("rotate",), rotate=30))
    batches = xs.reshape(-1, 4, 784)
    assert all(any(np.array_equal(row, d) for d in digits) for row in batches[:, :2].reshape(-1, 784))
    assert not any(np.array_equal(row, d) for row in batches[:, 2:].reshape(-1, 784) for d in digits)


def test_a_mix_that_leaves_no_room_for_a_drawing_is_refused():
    from mnistlab.errors import InputError
    with pytest.raises(InputError, match="no room"):
        mixed_epoch(fake_data(10, 10), 8, 0.97, np.random.default_rng(0))


def test_train_on_a_drawings_folder_fine_tunes_and_reports_mnist_and_drawings_before_and_after(
        cli, trained, tmp_path, mnist):
    tune = drawings_folder(tmp_path / "tune", mnist.test_images[:120], mnist.test_labels[:120])
    other = drawings_folder(tmp_path / "other", mnist.test_images[200:260], mnist.test_labels[200:260])
    assert is_drawings_folder(tune) and not is_drawings_folder(tmp_path)
    runs = tmp_path / "runs"
    result = cli(["train", "--init-from", str(trained / "model.safetensors"), "--data", str(tune),
                  "--test-data", str(other), "--mix", "0.5", "--epochs", "8", "--lr", "0.05",
                  "--augment", "shift", "--val-fraction", "0.25", "--out", str(runs / "tuned")])
    assert result.code == 0, result.err
    assert "MNIST test accuracy" in result.out and "drawings, test set" in result.out
    metrics = read_json(runs / "tuned" / "metrics.json")
    assert metrics["drawings"] == {"train": 90, "val": 30, "test": 60} and metrics["mix"] == 0.5
    for key in ("test_accuracy", "drawings_val_accuracy", "drawings_test_accuracy"):
        assert 0 <= metrics[key] <= 1 and 0 <= metrics["before"][key] <= 1
    # Half of these drawings are inverted, which the tiny model never saw: fine-tuning must help on
    # the held-out writers' set too.
    assert metrics["drawings_test_accuracy"] > metrics["before"]["drawings_test_accuracy"] + 0.1
    assert runs / "tuned" / "model.safetensors" in model_files(runs)  # the page's model list offers it
    assert (runs / "tuned" / "config.toml").read_text().count("mix = 0.5") == 1
    tested = cli(["test", "--weights", str(runs / "tuned" / "model.safetensors"), "--data", str(other), "--json"])
    assert tested.code == 0


def test_fine_tuning_without_init_from_is_one_line(cli, tmp_path, mnist):
    tune = drawings_folder(tmp_path / "tune", mnist.test_images[:10], mnist.test_labels[:10])
    result = cli(["train", "--data", str(tune), "--out", str(tmp_path / "run")])
    assert_one_line_error(result, "--init-from")
    assert not (tmp_path / "run").exists()
