"""A folder of collected drawings (data/collection.py): MNIST-format files read back by the loaders and
by `mnistlab test`, deletes, the size cap, and no drawing lost when a process is killed mid-save."""

import csv
import gzip
import io
import os
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from conftest import SRC

from mnistlab.data import load_dataset, load_images_labels
from mnistlab.data.collection import IMAGES, INDEX, LABELS, Collection, CollectionFull, summary
from mnistlab.data.idx import load_idx


@pytest.fixture(scope="module")
def digits():
    data = load_dataset()
    return data.test_images[:20].reshape(-1, 28, 28), data.test_labels[:20]


def fill(collection, digits, count):
    images, labels = digits
    records = []
    for i in range(count):
        canvas = np.kron(images[i], np.ones((5, 5), np.uint8))  # a 140x140 "canvas"
        probabilities = np.eye(10)[labels[i]] * 0.9 + 0.01
        records.append(collection.add(images[i], canvas, int(labels[i]), int(labels[i]), probabilities,
                                      "default/model.safetensors", "s1"))
    return records


def test_kept_drawings_are_an_mnist_format_set_read_back_by_the_loaders(tmp_path, digits):
    collection = Collection(tmp_path / "drawings")
    records = fill(collection, digits, 5)
    assert [r["id"] for r in records] == [1, 2, 3, 4, 5]
    raw = gzip.decompress((tmp_path / "drawings" / IMAGES).read_bytes())
    assert raw[:4] == b"\x00\x00\x08\x03" and int.from_bytes(raw[4:8], "big") == 5
    images = load_idx(tmp_path / "drawings" / IMAGES)
    assert np.array_equal(images, digits[0][:5])
    assert np.array_equal(load_idx(tmp_path / "drawings" / LABELS), digits[1][:5])
    x, y = load_images_labels(tmp_path / "drawings")  # the folder itself, as `mnistlab test --data` reads it
    assert x.shape == (5, 784) and np.array_equal(y, digits[1][:5])
    with open(tmp_path / "drawings" / INDEX, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["label"]) for r in rows] == list(digits[1][:5])
    assert rows[0]["session"] == "s1" and float(rows[0][f"p{digits[1][0]}"]) == pytest.approx(0.91)


def test_the_raw_canvas_is_kept_beside_the_28x28_image(tmp_path, digits):
    collection = Collection(tmp_path / "d")
    fill(collection, digits, 1)
    assert np.array_equal(collection.canvas(1), np.kron(digits[0][0], np.ones((5, 5), np.uint8)))


def test_a_deleted_drawing_leaves_the_files_and_a_reopened_folder_agrees(tmp_path, digits):
    collection = Collection(tmp_path / "d")
    fill(collection, digits, 4)
    assert collection.delete(2) and not collection.delete(2)
    again = Collection(tmp_path / "d")
    images, labels, records = again.arrays()
    assert [r["id"] for r in records] == [1, 3, 4]
    assert np.array_equal(labels, digits[1][[0, 2, 3]])
    assert np.array_equal(load_idx(tmp_path / "d" / IMAGES), digits[0][[0, 2, 3]])
    assert again.add(digits[0][5], digits[0][5], 1, 1, np.full(10, 0.1))["id"] == 5


def test_clear_removes_every_drawing(tmp_path, digits):
    collection = Collection(tmp_path / "d")
    fill(collection, digits, 3)
    assert collection.clear() == 3
    assert collection.arrays()[0].shape == (0, 28, 28)
    assert load_idx(tmp_path / "d" / LABELS).shape == (0,)


def test_two_collections_on_one_folder_see_each_others_drawings(tmp_path, digits):
    first, second = Collection(tmp_path / "d"), Collection(tmp_path / "d")
    fill(first, digits, 2)
    record = second.add(digits[0][3], digits[0][3], 7, 1, np.full(10, 0.1))
    assert record["id"] == 3
    assert [r["id"] for r in first.arrays()[2]] == [1, 2, 3]


def test_past_the_size_cap_a_drawing_is_refused_and_nothing_is_written(tmp_path, digits):
    collection = Collection(tmp_path / "d", max_bytes=6_000)
    with pytest.raises(CollectionFull, match="full"):
        fill(collection, digits, 20)
    kept = len(collection.arrays()[2])
    assert 0 < kept < 20
    assert len(list((tmp_path / "d" / "items").iterdir())) == kept


def test_a_bad_label_or_image_is_refused(tmp_path, digits):
    collection = Collection(tmp_path / "d")
    with pytest.raises(ValueError, match="label"):
        collection.add(digits[0][0], digits[0][0], 10, 1, np.full(10, 0.1))
    with pytest.raises(ValueError, match="image"):
        collection.add(np.zeros((27, 28), np.uint8), digits[0][0], 1, 1, np.full(10, 0.1))
    assert collection.arrays()[2] == []


def test_the_zip_holds_the_idx_pair_the_index_and_the_items(tmp_path, digits):
    collection = Collection(tmp_path / "d")
    fill(collection, digits, 2)
    names = zipfile.ZipFile(io.BytesIO(collection.zip_bytes())).namelist()
    assert set(names) == {f"drawings/{IMAGES}", f"drawings/{LABELS}", f"drawings/{INDEX}",
                          "drawings/items/000001.npz", "drawings/items/000002.npz"}


def test_the_summary_counts_per_digit_and_scores_the_answers_for_the_set_and_a_session():
    records = [{"label": 3, "session": "a"}, {"label": 3, "session": "b"}, {"label": 5, "session": "a"}]
    result = summary(records, [3, 8, 5], session="a")
    assert result["all"]["count"] == 3 and result["all"]["per_digit"][3] == 2
    assert result["all"]["accuracy"] == pytest.approx(2 / 3)
    assert result["all"]["per_digit_accuracy"][3] == 0.5 and result["all"]["per_digit_accuracy"][0] is None
    assert result["session"]["count"] == 2 and result["session"]["accuracy"] == 1.0


KILLER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    import mnistlab.data.collection as c
    stage = sys.argv[2]
    if stage == "item":  # while the new drawing's own file is being written
        real = c.atomic_write
        def atomic_write(path, write):
            def half(tmp):
                open(tmp, "wb").write(b"PK half a file")
                os.kill(os.getpid(), signal.SIGKILL)
            return real(path, half if "items" in str(path) else write)
        c.atomic_write = atomic_write
    elif stage == "idx":  # while the IDX pair is being written, after the item was kept
        def stage_(path, data):
            open(path.with_name(f".{path.name}.{os.getpid()}.beef.tmp"), "wb").write(data[:100])
            os.kill(os.getpid(), signal.SIGKILL)
        c._stage = stage_
    elif stage == "between":  # between the two renames of the IDX pair
        real_replace = os.replace
        calls = []
        def replace(a, b):
            calls.append(b)
            if "labels" in str(b):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(a, b)
        c.os.replace = replace
    elif stage == "index":  # while index.csv is being written
        from mnistlab.files import atomic_write
        def write_text(path, text):
            def half(tmp):
                open(tmp, "w").write(text[:10])
                os.kill(os.getpid(), signal.SIGKILL)
            atomic_write(path, half)
        c.write_text = write_text
    collection = c.Collection(sys.argv[1])
    image = np.full((28, 28), 200, np.uint8)
    collection.add(image, image, 4, 4, np.full(10, 0.1))
""")


@pytest.mark.parametrize("stage", ["item", "idx", "between", "index"])
def test_a_kill_9_during_a_save_loses_no_earlier_drawing(tmp_path, digits, stage):
    folder = tmp_path / "d"
    fill(Collection(folder), digits, 3)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", KILLER, str(folder), stage], env=env, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    reopened = Collection(folder)
    images, labels, records = reopened.arrays()
    kept = [r["id"] for r in records]
    assert kept[:3] == [1, 2, 3] and len(kept) in (3, 4)  # the drawing being saved is there whole or not at all
    assert np.array_equal(images[:3], digits[0][:3])
    assert not [p.name for p in folder.rglob("*.tmp")]  # the killed writer's temp files are gone
    x, y = load_images_labels(folder)
    assert len(x) == len(kept) and np.array_equal(y[:3], digits[1][:3])
