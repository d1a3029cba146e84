"""Tests for mnistlab.data: the bundled MNIST, IDX and CSV loading, every rejected input, and the array helpers."""

import gzip
import hashlib
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mnistlab.data import (
    Dataset,
    bundled_mnist_dir,
    class_spread_warning,
    export_csv,
    fingerprint,
    load_csv,
    load_dataset,
    load_idx,
    load_images_labels,
    one_hot,
    split_validation,
    to_float,
)
from mnistlab.errors import InputError

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
RAW_TRAIN_IMAGES_FILE_MD5 = "6bbc9ace898e44ae57da46a324031adb"  # the whole gunzipped IDX file, 16-byte header included
TRAIN_IMAGES_PAYLOAD_MD5 = "6510e85a72c3e9475c492d559d3770d2"  # images.tobytes(), i.e. the file minus its header
HEADER = "label," + ",".join(f"pixel{i}" for i in range(784))
MNIST_NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    return load_dataset()


@pytest.fixture(scope="module")
def small(mnist) -> Dataset:
    """200 train and 100 test images taken from the bundled MNIST."""
    return Dataset(mnist.train_images[:200], mnist.train_labels[:200], mnist.test_images[:100], mnist.test_labels[:100])


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Write a uint8 array as an IDX file (gzipped when gz) the way the MNIST files are laid out."""
    raw = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def write_mnist_folder(folder: Path, data: Dataset, gz: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = [data.train_images.reshape(-1, 28, 28), data.train_labels,
              data.test_images.reshape(-1, 28, 28), data.test_labels]
    for name, array in zip(MNIST_NAMES, arrays):
        write_idx(folder / (name + ".gz" if gz else name), array, gz)
    return folder


def csv_row(label="3", pixel="0") -> str:
    return ",".join([str(label)] + [str(pixel)] * 784)


def assert_same(images, labels, expected_images, expected_labels):
    assert images.dtype == np.uint8 and labels.dtype == np.uint8
    np.testing.assert_array_equal(images, expected_images)
    np.testing.assert_array_equal(labels, expected_labels)


# ---------------------------------------------------------------- the bundled MNIST


def test_bundled_mnist_has_60000_train_and_10000_test_images_of_784_pixels(mnist):
    assert mnist.train_images.shape == (60000, 784) and mnist.train_labels.shape == (60000,)
    assert mnist.test_images.shape == (10000, 784) and mnist.test_labels.shape == (10000,)
    assert mnist.train_images.dtype == mnist.test_labels.dtype == np.uint8
    assert "bundled MNIST" in mnist.source


def test_bundled_mnist_has_the_published_label_counts(mnist):
    assert np.bincount(mnist.train_labels, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist.test_labels, minlength=10).tolist() == TEST_COUNTS


def test_bundled_train_images_are_byte_for_byte_the_raw_idx_payload(mnist):
    raw = gzip.decompress((bundled_mnist_dir() / "train-images-idx3-ubyte.gz").read_bytes())
    assert hashlib.md5(raw).hexdigest() == RAW_TRAIN_IMAGES_FILE_MD5
    assert raw[16:] == mnist.train_images.tobytes()
    assert hashlib.md5(mnist.train_images.tobytes()).hexdigest() == TRAIN_IMAGES_PAYLOAD_MD5


def test_bundled_mnist_dir_is_a_folder_holding_the_four_gzipped_files():
    folder = bundled_mnist_dir()
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".gz")) == sorted(n + ".gz" for n in MNIST_NAMES)


# ---------------------------------------------------------------- round trips


def test_export_csv_then_load_csv_gives_identical_arrays(small, tmp_path):
    train_csv, test_csv = export_csv(small, tmp_path / "new" / "folder")
    assert (train_csv.name, test_csv.name) == ("mnist_train.csv", "mnist_test.csv")
    assert_same(*load_csv(train_csv), small.train_images, small.train_labels)
    assert_same(*load_csv(test_csv), small.test_images, small.test_labels)


def test_exported_csv_has_no_header_and_puts_the_label_first(small, tmp_path):
    train_csv, _ = export_csv(small, tmp_path)
    first = train_csv.read_text().split("\n")[0].split(",")
    assert len(first) == 785
    assert first == [str(small.train_labels[0])] + [str(v) for v in small.train_images[0]]


def test_export_csv_replaces_existing_files_and_leaves_no_temporary_files(small, tmp_path):
    (tmp_path / "mnist_train.csv").write_text("old")
    export_csv(small, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist_test.csv", "mnist_train.csv"]
    assert len(load_csv(tmp_path / "mnist_train.csv")[1]) == 200


def test_csv_with_a_kaggle_header_row_loads_the_same_arrays(small, tmp_path):
    train_csv, _ = export_csv(small, tmp_path)
    with_header = tmp_path / "kaggle.csv"
    with_header.write_text(HEADER + "\n" + train_csv.read_text())
    assert_same(*load_csv(with_header), small.train_images, small.train_labels)


def test_csv_with_crlf_line_endings_and_no_final_newline_loads(small, tmp_path):
    train_csv, _ = export_csv(small, tmp_path)
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(train_csv.read_bytes().rstrip(b"\n").replace(b"\n", b"\r\n"))
    assert_same(*load_csv(crlf), small.train_images, small.train_labels)


def test_csv_pixels_written_as_whole_number_floats_are_accepted(tmp_path):
    path = tmp_path / "floats.csv"
    path.write_text(csv_row("7.0", "255.0") + "\n" + csv_row("0", "12") + "\n")
    images, labels = load_csv(path)
    assert labels.tolist() == [7, 0]
    assert images[0].tolist() == [255] * 784 and images[1].tolist() == [12] * 784


def quoted(text: str) -> str:
    """Every cell of a CSV text in double quotes, as spreadsheets export."""
    return "\n".join(",".join(f'"{cell}"' for cell in line.split(",")) for line in text.splitlines()) + "\n"


def test_a_csv_whose_every_cell_is_quoted_keeps_its_first_row(small, tmp_path):
    """"5","0",... is a row of numbers, not a header: no row may be dropped."""
    train_csv, _ = export_csv(small, tmp_path)
    path = tmp_path / "quoted.csv"
    path.write_text(quoted(train_csv.read_text()))
    assert_same(*load_csv(path), small.train_images, small.train_labels)


def test_a_quoted_kaggle_header_is_still_a_header(small, tmp_path):
    train_csv, _ = export_csv(small, tmp_path)
    path = tmp_path / "quoted.csv"
    path.write_text(quoted(HEADER) + train_csv.read_text())
    assert_same(*load_csv(path), small.train_images, small.train_labels)


def test_a_bad_quoted_cell_is_named_without_its_quotes(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(quoted(csv_row()) + '"4",' + ",".join(['"x"'] + ['"0"'] * 783) + "\n")
    assert "bad.csv:2: column 2 (pixel0): 'x' is not a number" in rejected(path)


def test_a_csv_with_a_byte_order_mark_blank_lines_and_a_gzip_wrapper_loads(small, tmp_path):
    train_csv, _ = export_csv(small, tmp_path)
    lines = train_csv.read_text().splitlines()
    text = "\ufeff" + lines[0] + "\n   \n" + "\n".join(lines[1:]) + "\n \t\n"
    path = tmp_path / "bom.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert_same(*load_csv(path), small.train_images, small.train_labels)


def test_a_first_row_with_a_few_text_cells_is_an_error_not_a_header(tmp_path):
    """Only a line without any number is a header; anything else is data, checked as such."""
    path = tmp_path / "half.csv"
    path.write_text(",".join(["label"] + ["0"] * 784) + "\n" + csv_row() + "\n")
    assert "half.csv:1: column 1 (label): 'label' is not a number" in rejected(path)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_idx_files_written_plain_or_gzipped_load_back_identically(small, tmp_path, gz):
    folder = write_mnist_folder(tmp_path / "idx", small, gz)
    suffix = ".gz" if gz else ""
    images = load_idx(folder / f"train-images-idx3-ubyte{suffix}")
    assert images.shape == (200, 28, 28)
    assert_same(images.reshape(-1, 784), load_idx(folder / f"train-labels-idx1-ubyte{suffix}"),
                small.train_images, small.train_labels)
    data = load_dataset(folder)
    assert_same(data.train_images, data.train_labels, small.train_images, small.train_labels)
    assert_same(data.test_images, data.test_labels, small.test_images, small.test_labels)
    assert_same(*load_images_labels(folder / f"t10k-images-idx3-ubyte{suffix}"), small.test_images, small.test_labels)


def test_gzip_is_recognised_by_its_magic_bytes_not_by_the_file_name(tmp_path):
    labels = np.array([1, 2, 3], np.uint8)
    assert load_idx(write_idx(tmp_path / "labels.idx", labels, gz=True)).tolist() == [1, 2, 3]
    assert load_idx(write_idx(tmp_path / "labels.gz", labels, gz=False)).tolist() == [1, 2, 3]


def test_a_10000_row_csv_loads_correctly(mnist, tmp_path):
    ten_k = Dataset(mnist.train_images[:10], mnist.train_labels[:10], mnist.test_images, mnist.test_labels)
    _, test_csv = export_csv(ten_k, tmp_path)
    images, labels = load_csv(test_csv)
    assert images.shape == (10000, 784)
    assert_same(images, labels, mnist.test_images, mnist.test_labels)


def test_load_dataset_reads_a_pair_of_csv_files(small, tmp_path):
    train_csv, test_csv = export_csv(small, tmp_path)
    data = load_dataset(train_csv, test_csv)
    assert_same(data.train_images, data.train_labels, small.train_images, small.train_labels)
    assert_same(data.test_images, data.test_labels, small.test_images, small.test_labels)


def test_load_dataset_reads_a_folder_of_exported_csv_files(small, tmp_path):
    export_csv(small, tmp_path)
    data = load_dataset(tmp_path)
    assert_same(data.test_images, data.test_labels, small.test_images, small.test_labels)


def test_load_images_labels_on_a_folder_returns_its_test_split(small, tmp_path):
    folder = write_mnist_folder(tmp_path, small, gz=False)
    assert_same(*load_images_labels(folder), small.test_images, small.test_labels)


@settings(max_examples=25, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 6), st.just(785)), elements=st.integers(0, 255)))
def test_any_uint8_images_survive_a_csv_round_trip(table):
    images, labels = np.ascontiguousarray(table[:, 1:]), table[:, 0] % 10
    with tempfile.TemporaryDirectory() as folder:
        train_csv, _ = export_csv(Dataset(images, labels, images[:1], labels[:1]), folder)
        assert_same(*load_csv(train_csv), images, labels)


# ---------------------------------------------------------------- rejected input


def rejected(path: Path, loader=load_csv) -> str:
    with pytest.raises(InputError) as caught:
        loader(path)
    message = str(caught.value)
    assert path.name in message and "\n" not in message
    return message


def test_a_csv_row_with_the_wrong_column_count_is_rejected_with_its_line(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text(csv_row() + "\n" + csv_row() + ",0\n")
    assert "cols.csv:2:" in rejected(path) and "785 columns" in rejected(path) and "got 786" in rejected(path)


def test_a_non_numeric_csv_cell_is_rejected_with_line_and_column_counting_the_header(tmp_path):
    path = tmp_path / "text.csv"
    cells = csv_row().split(",")
    cells[5] = "abc"
    path.write_text(HEADER + "\n" + csv_row() + "\n" + ",".join(cells) + "\n")
    message = rejected(path)
    assert "text.csv:3:" in message and "column 6 (pixel4)" in message and "'abc' is not a number" in message


@pytest.mark.parametrize("value", ["256", "-1"])
def test_a_pixel_outside_0_to_255_is_rejected_with_line_and_column(tmp_path, value):
    path = tmp_path / "pixel.csv"
    cells = csv_row().split(",")
    cells[784] = value
    path.write_text(csv_row() + "\n" + csv_row() + "\n" + ",".join(cells) + "\n")
    message = rejected(path)
    assert "pixel.csv:3:" in message and "column 785 (pixel783)" in message and f"{value} is outside 0..255" in message


def test_a_label_of_10_is_rejected_with_line_and_column(tmp_path):
    path = tmp_path / "label.csv"
    path.write_text(csv_row(label=10) + "\n")
    message = rejected(path)
    assert "label.csv:1:" in message and "column 1 (label)" in message and "10 is outside 0..9" in message


def test_a_pixel_that_is_not_a_whole_number_is_rejected(tmp_path):
    path = tmp_path / "frac.csv"
    path.write_text(csv_row(pixel="0.5") + "\n")
    assert "frac.csv:1: column 2 (pixel0): 0.5 is not a whole number" in rejected(path)


def test_an_empty_csv_file_is_rejected(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert "empty" in rejected(path)


def test_a_csv_file_with_only_a_header_is_rejected(tmp_path):
    path = tmp_path / "header_only.csv"
    path.write_text(HEADER + "\n")
    assert "only a header" in rejected(path)


def test_a_truncated_idx_file_is_rejected_with_the_sizes(tmp_path):
    path = write_idx(tmp_path / "cut-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    assert "truncated: header says 3x28x28 = 2352 bytes, found 2342" in rejected(path, load_idx)


def test_an_idx_file_with_trailing_bytes_is_rejected(tmp_path):
    path = write_idx(tmp_path / "long-labels-idx1-ubyte", np.zeros(5, np.uint8))
    path.write_bytes(path.read_bytes() + b"\0")
    assert "header says 5 = 5 bytes, found 6" in rejected(path, load_idx)


def test_an_idx_file_with_the_wrong_magic_number_is_rejected(tmp_path):
    path = tmp_path / "magic-labels-idx1-ubyte"
    path.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00")
    assert "not an IDX file: magic 12340801" in rejected(path, load_idx)


def test_a_corrupt_gzip_stream_is_rejected(tmp_path):
    path = write_idx(tmp_path / "bad-labels-idx1-ubyte.gz", np.arange(10, dtype=np.uint8).repeat(100), gz=True)
    path.write_bytes(path.read_bytes()[:30])
    assert "corrupt gzip stream" in rejected(path, load_idx)


def test_images_and_labels_with_different_counts_are_rejected(tmp_path):
    images = write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    message = rejected(images, load_images_labels)
    assert "4 images" in message and "3 labels" in message and "t10k-labels-idx1-ubyte" in message


def test_an_images_file_without_its_labels_file_next_to_it_is_rejected(tmp_path):
    images = write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((4, 28, 28), np.uint8), gz=True)
    assert "t10k-labels-idx1-ubyte" in rejected(images, load_images_labels)


def test_a_folder_missing_one_mnist_file_is_rejected_naming_folder_and_file(small, tmp_path):
    folder = write_mnist_folder(tmp_path / "partial", small, gz=True)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    message = rejected(folder, load_dataset)
    assert str(folder) in message and "t10k-labels-idx1-ubyte" in message


def test_a_csv_training_file_without_a_test_set_is_rejected(small, tmp_path):
    train_csv, _ = export_csv(small, tmp_path)
    with pytest.raises(InputError, match="mnist_train.csv: a training file needs a CSV test file, an IDX images file"):
        load_dataset(train_csv)


@pytest.mark.parametrize("gz", [False, True])
def test_a_csv_training_file_takes_an_idx_test_file_or_a_folder_as_its_test_set(small, tmp_path, gz):
    train_csv, _ = export_csv(small, tmp_path / "csv")
    folder = write_mnist_folder(tmp_path / "idx", small, gz=gz)
    test_images = folder / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    for test in (test_images, folder):
        ds = load_dataset(train_csv, test)
        assert_same(ds.test_images, ds.test_labels, small.test_images, small.test_labels)
        assert_same(ds.train_images, ds.train_labels, small.train_images, small.train_labels)


def test_files_are_told_apart_by_content_not_by_name(small, tmp_path):
    """A CSV named .txt and an IDX file named .csv both load; the training file may be IDX too."""
    train_csv, test_csv = export_csv(small, tmp_path / "csv")
    text = tmp_path / "test.txt"
    text.write_bytes(test_csv.read_bytes())
    assert_same(*load_images_labels(text), small.test_images, small.test_labels)
    folder = write_mnist_folder(tmp_path / "idx", small, gz=False)
    ds = load_dataset(folder / "train-images-idx3-ubyte", text)
    assert_same(ds.train_images, ds.train_labels, small.train_images, small.train_labels)


def test_an_idx_labels_file_given_for_images_is_rejected_naming_the_images_file(small, tmp_path):
    folder = write_mnist_folder(tmp_path / "idx", small, gz=True)
    message = rejected(folder / "t10k-labels-idx1-ubyte.gz", load_images_labels)
    assert "is a labels file" in message and "t10k-images-idx3-ubyte" in message


@pytest.mark.parametrize("split", ["train", "t10k"])
def test_an_idx_set_of_zero_images_is_rejected(small, tmp_path, split):
    empty = Dataset(small.train_images[:0], small.train_labels[:0], small.test_images[:0], small.test_labels[:0])
    folder = write_mnist_folder(tmp_path / "idx", small, gz=False)
    write_idx(folder / f"{split}-images-idx3-ubyte", empty.train_images.reshape(0, 28, 28))
    write_idx(folder / f"{split}-labels-idx1-ubyte", empty.train_labels)
    message = rejected(folder, load_dataset)
    assert f"{split}-images-idx3-ubyte: holds no images" in message


def test_an_empty_idx_labels_file_is_rejected(small, tmp_path):
    folder = write_mnist_folder(tmp_path / "idx", small, gz=False)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"")
    assert "t10k-labels-idx1-ubyte: not an IDX file: only 0 bytes" in rejected(folder, load_dataset)


# ---------------------------------------------------------------- split_validation# ---------------------------------------------------------------- split_validation and array helpers


def numbered(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n images whose first two pixels spell their index, so every row is distinct."""
    images = np.zeros((n, 784), np.uint8)
    images[:, 0], images[:, 1] = np.arange(n) // 256, np.arange(n) % 256
    return images, (np.arange(n) % 10).astype(np.uint8)


def ids(images: np.ndarray) -> np.ndarray:
    return images[:, 0].astype(int) * 256 + images[:, 1]


def test_split_validation_holds_out_the_requested_fraction(mnist):
    parts = split_validation(mnist.train_images, mnist.train_labels, 0.1, np.random.default_rng(0))
    train_x, train_y, val_x, val_y = parts
    assert (len(train_x), len(train_y), len(val_x), len(val_y)) == (54000, 54000, 6000, 6000)


def test_split_validation_parts_are_disjoint_and_together_equal_the_input():
    images, labels = numbered(1000)
    train_x, train_y, val_x, val_y = split_validation(images, labels, 0.25, np.random.default_rng(1))
    assert set(ids(train_x)).isdisjoint(ids(val_x))
    assert sorted(np.concatenate([ids(train_x), ids(val_x)])) == list(range(1000))
    np.testing.assert_array_equal(train_y, ids(train_x) % 10)  # labels stay with their images
    np.testing.assert_array_equal(val_y, ids(val_x) % 10)


def test_split_validation_with_the_same_seed_gives_the_same_split_and_another_seed_a_different_one():
    images, labels = numbered(500)
    first = split_validation(images, labels, 0.2, np.random.default_rng(42))[2]
    again = split_validation(images, labels, 0.2, np.random.default_rng(42))[2]
    other = split_validation(images, labels, 0.2, np.random.default_rng(43))[2]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(ids(first), ids(other))


def test_split_validation_with_fraction_0_gives_empty_validation_arrays():
    images, labels = numbered(50)
    train_x, train_y, val_x, val_y = split_validation(images, labels, 0.0, np.random.default_rng(0))
    assert val_x.shape == (0, 784) and val_y.shape == (0,)
    np.testing.assert_array_equal(train_x, images)


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5, float("nan")])
def test_split_validation_rejects_a_fraction_outside_0_to_1(fraction):
    images, labels = numbered(10)
    with pytest.raises(InputError, match="fraction"):
        split_validation(images, labels, fraction, np.random.default_rng(0))


def test_to_float_maps_0_255_to_float32_0_1():
    result = to_float(np.array([[0, 51, 255]], np.uint8))
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, [[0.0, 0.2, 1.0]], rtol=1e-7)


def test_one_hot_puts_a_single_1_in_each_label_column():
    result = one_hot(np.array([3, 0, 9], np.uint8))
    assert result.dtype == np.float32 and result.shape == (3, 10)
    assert result.sum(axis=1).tolist() == [1, 1, 1] and result.argmax(axis=1).tolist() == [3, 0, 9]
    assert one_hot(np.array([1]), classes=3).tolist() == [[0, 1, 0]]


def test_fingerprint_is_the_sha256_of_both_arrays_and_changes_with_one_label(small):
    expected = hashlib.sha256(small.train_images.tobytes() + small.train_labels.tobytes()).hexdigest()
    assert fingerprint(small.train_images, small.train_labels) == expected
    changed = small.train_labels.copy()
    changed[0] = (changed[0] + 1) % 10
    assert fingerprint(small.train_images, changed) != expected


def test_dataset_refuses_arrays_of_the_wrong_type_or_shape():
    images, labels = numbered(3)
    with pytest.raises(ValueError):
        Dataset(images.astype(np.float32), labels, images, labels)
    with pytest.raises(ValueError):
        Dataset(images, labels[:2], images, labels)


@pytest.mark.parametrize("labels,expected", [
    ([3] * 50, "every training label is 3: the network can only learn to answer 3"),
    ([0, 1] * 25, "the training labels cover 2 of 10 classes (no 2, 3, 4, 5, 6, 7, 8, 9): the network can never "
                  "answer those"),
    (list(range(9)) * 10, "the training labels cover 9 of 10 classes (no 9): the network can never answer that class"),
    (list(range(10)) * 20 + [0] * 300, "labels 1 (20), 2 (20), 3 (20), 4 (20), 5 (20), 6 (20), 7 (20), 8 (20), 9 (20) "
                                       "have fewer than 10% as many training examples as 0 (320)"),
])
def test_a_training_set_missing_classes_or_nearly_gets_a_warning_saying_which(labels, expected):
    assert class_spread_warning(np.array(labels, np.uint8)).startswith(expected)


def test_the_mnist_training_set_gets_no_class_spread_warning(mnist):
    assert class_spread_warning(mnist.train_labels) is None


def test_cached_datasets_are_loaded_once_and_read_only(tmp_path, monkeypatch):
    import mnistlab.data.sources as sources
    calls = []
    real = sources._load_dataset
    monkeypatch.setattr(sources, "_load_dataset", lambda *a: calls.append(a) or real(*a))
    sources.cache_datasets()
    try:
        first = sources.load_dataset()
        sources.cache_datasets()  # on again, as a sweep worker does before each run: keeps what it holds
        second = sources.load_dataset()
        assert first is second and len(calls) == 1
        with pytest.raises(ValueError):
            first.train_images[0, 0] = 1
    finally:
        sources.cache_datasets(False)
    assert sources.load_dataset() is not first and len(calls) == 2
