"""Augmentation: shapes, dtypes and ranges kept, seeded, each transform visible, identities, modes."""

import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from mnistlab.data import load_dataset, to_float
from mnistlab.data.augment import (TRANSFORMS, Augmentation, affine_parameters, elastic_fields, expand,
                                   warp)
from mnistlab.data.prefetch import EpochImages, epoch_rng
from mnistlab.errors import InputError


@pytest.fixture(scope="module")
def digits():
    """300 real MNIST training images, uint8 (300, 784), and their labels."""
    ds = load_dataset(None)
    return ds.train_images[:300].copy(), ds.train_labels[:300].copy()


ALL = Augmentation(TRANSFORMS)


@pytest.mark.parametrize("shape", [(300, 784), (300, 28, 28)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_augmentation_keeps_shape_dtype_and_range(digits, shape, dtype):
    images = digits[0] if dtype == np.uint8 else to_float(digits[0])
    images = images.reshape(shape)
    out = ALL.apply(images, np.random.default_rng(0))
    assert out.shape == images.shape and out.dtype == images.dtype
    top = 255 if dtype == np.uint8 else 1
    assert out.min() >= 0 and out.max() <= top
    assert out.max() > 0.5 * top  # still digits, not a blank


def test_same_seed_gives_identical_images_and_another_seed_other_images(digits):
    first = ALL.apply(digits[0], np.random.default_rng(7))
    again = ALL.apply(digits[0], np.random.default_rng(7))
    other = ALL.apply(digits[0], np.random.default_rng(8))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("name", TRANSFORMS)
def test_each_transform_changes_the_images_measurably(digits, name):
    images = to_float(digits[0])
    out = Augmentation((name,)).apply(images, np.random.default_rng(0))
    change = np.abs(out - images).mean(axis=1)  # mean absolute change per image, of full scale
    assert change.mean() > 0.01
    # Strengths are drawn per image, so a few come out small (a 0.5 degree turn, squares on background)
    assert (change > 0.002).mean() > 0.8, f"{name} left {(change <= 0.002).mean():.0%} of images as they were"


@pytest.mark.parametrize("strengths", [{"rotate": 0}, {"zoom": 0}, {"shear": 0}, {"shift": 0},
                                       {"elastic_alpha": 0}])
def test_zero_strength_geometric_transforms_are_the_identity(digits, strengths):
    name = {"elastic_alpha": "elastic"}.get(next(iter(strengths)), next(iter(strengths)))
    images = to_float(digits[0])
    out = Augmentation((name,), **strengths).apply(images, np.random.default_rng(0))
    np.testing.assert_allclose(out, images, atol=1e-6)


def test_rotation_by_zero_zoom_by_one_and_alpha_zero_together_are_the_identity_on_uint8(digits):
    aug = Augmentation(("rotate", "zoom", "elastic"), rotate=0, zoom=0, elastic_alpha=0)
    assert np.array_equal(aug.apply(digits[0], np.random.default_rng(0)), digits[0])


def test_warp_agrees_with_scipy_map_coordinates():
    rng = np.random.default_rng(1)
    images = rng.random((40, 28, 28), dtype=np.float32)
    matrices, offsets = affine_parameters(40, rng, rotate=30, zoom=0.3, shear=20, shift=5)
    fields = elastic_fields(40, rng, alpha=34, sigma=4)
    out = warp(images, matrices, offsets, fields)
    rows, cols = np.mgrid[0:28, 0:28] - 13.5
    for i in range(40):
        source = [matrices[i, k, 0] * rows + matrices[i, k, 1] * cols + 13.5 + offsets[i, k] + fields[i, k]
                  for k in range(2)]
        expected = map_coordinates(images[i], source, order=1, mode="grid-constant", cval=0)
        np.testing.assert_allclose(out[i], expected, atol=1e-5)


def test_a_shift_moves_the_digit_by_whole_pixels(digits):
    images = to_float(digits[0][:1]).reshape(1, 28, 28)
    out = warp(images, np.eye(2)[None], np.array([[2.0, -3.0]]))  # read 2 rows down, 3 columns left
    np.testing.assert_allclose(out[0, :-2, 3:], images[0, 2:, :-3], atol=1e-6)


def test_elastic_fields_have_simards_spread():
    """Same standard deviation as uniform noise on [-1, 1] smoothed by scipy's Gaussian, times alpha."""
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(0)
    ours = elastic_fields(2000, rng, alpha=34, sigma=4)
    simard = 34 * gaussian_filter(rng.uniform(-1, 1, (4000, 28, 28)), (0, 4, 4), mode="reflect")
    assert ours.std() == pytest.approx(simard.std(), rel=0.05)
    # and as smooth: neighbouring displacements nearly equal
    assert np.abs(np.diff(ours, axis=-1)).mean() == pytest.approx(np.abs(np.diff(simard, axis=-1)).mean(), rel=0.1)


def test_offline_expansion_multiplies_the_set_by_copies_plus_one_and_keeps_labels(digits):
    images, labels = digits
    aug = Augmentation(("rotate", "elastic"))
    out, out_labels = expand(images, labels, aug, 3, np.random.default_rng(0))
    assert out.shape == (4 * 300, 784) and out_labels.shape == (4 * 300,)
    assert np.array_equal(out[:300], images)  # the originals first
    assert np.array_equal(out_labels, np.tile(labels, 4))
    assert not np.array_equal(out[300:600], out[600:900])  # each copy its own variants


def test_offline_expansion_one_each_gives_each_copy_one_transform_in_the_order_named(digits):
    images, labels = digits
    aug = Augmentation(("zoom", "rotate", "blur", "squares"))
    out, _ = expand(images, labels, aug, 4, np.random.default_rng(0), one_each=True)
    rng = np.random.default_rng(0)  # the same draws, one transform at a time
    alone = [aug.only(name).apply(images, rng) for name in ("zoom", "rotate", "blur", "squares")]
    for k, expected in enumerate(alone, 1):
        assert np.array_equal(out[k * 300:(k + 1) * 300], expected), k
    assert np.array_equal(out[900:1200], aug.only("blur").apply(images, np.random.default_rng(9)))  # blur draws nothing
    assert not np.array_equal(out[300:600], aug.apply(images, np.random.default_rng(0)))  # not composed
    cycled, _ = expand(images, labels, Augmentation(("blur", "squares")), 3, np.random.default_rng(1), one_each=True)
    assert np.array_equal(cycled[300:600], cycled[900:1200])  # copy 3 is blur again (deterministic)


def test_apply_leaves_the_input_untouched(digits):
    images = to_float(digits[0])
    before = images.copy()
    ALL.apply(images, np.random.default_rng(0))
    assert np.array_equal(images, before)


def test_online_worker_gives_the_same_images_as_the_synchronous_path(digits):
    images = to_float(digits[0])
    aug = Augmentation(("zoom", "rotate", "elastic", "noise"))
    with EpochImages(images, aug, seed=[5, 3]) as online:
        epochs = [online.epoch(e).copy() for e in range(3)]
    for e, got in enumerate(epochs):
        assert np.array_equal(got, aug.apply(images, epoch_rng([5, 3], e)))
    assert not np.array_equal(epochs[0], epochs[1])  # fresh variants every epoch


def test_online_resume_at_a_later_epoch_gives_that_epochs_images(digits):
    images = to_float(digits[0])
    aug = Augmentation(("rotate",))
    with EpochImages(images, aug, seed=1) as online:
        online.epoch(0)  # the worker now prepares epoch 1
        jumped = online.epoch(5).copy()
    assert np.array_equal(jumped, aug.apply(images, epoch_rng(1, 5)))


def test_resample_is_the_drawing_pages_shrink_and_enlarge_at_a_random_side(digits):
    """Each image equals, to float32 rounding, the preprocessing's own resize to some side in [14, 28] and back;
    the sides vary and cover the range; no strength is the identity."""
    from mnistlab.data.drawing import resize
    images = to_float(digits[0])[:200].reshape(-1, 28, 28)
    out = Augmentation(("resample",), resample=0.5).apply(images, np.random.default_rng(1))
    sides = []
    for image, got in zip(images, out):
        errors = {side: np.abs(resize(resize(image.astype(np.float64), (side, side)), (28, 28)) - got).max()
                  for side in range(14, 29)}
        side = min(errors, key=errors.get)
        assert errors[side] < 1e-5, errors[side]
        sides.append(side)
    assert min(sides) == 14 and max(sides) == 28 and len(set(sides)) == 15
    np.testing.assert_array_equal(Augmentation(("resample",), resample=0.0).apply(images, np.random.default_rng(1)),
                                  images)


def test_all_means_the_nine_transforms_of_the_augmentation_study():
    from mnistlab.config import augment_names
    assert augment_names("all") == ("thickness", "zoom", "rotate", "shear", "shift", "elastic", "blur", "squares",
                                     "noise")


@pytest.mark.parametrize("settings", [{"transforms": ("twist",)}, {"rotate": -1.0}, {"zoom": 1.0},
                                      {"resample": 1.0}, {"resample": -0.1},
                                      {"squares": 1.5}, {"square_size": 0}, {"elastic_sigma": float("nan")}])
def test_bad_settings_are_input_errors(settings):
    with pytest.raises(InputError, match="augment: "):
        Augmentation(**settings)


def test_images_of_another_size_are_an_input_error():
    with pytest.raises(InputError, match=r"\(n, 784\)"):
        ALL.apply(np.zeros((3, 100), np.uint8), np.random.default_rng(0))


def test_preview_writes_a_labelled_grid_png(digits, tmp_path):
    from mnistlab.data.preview import preview
    path = preview(tmp_path / "sub" / "grid.png", digits[0], digits[1], count=2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image
    height, width, _ = matplotlib.image.imread(path).shape
    assert width > 4 * height  # 12 columns (original, 9 transforms, 2 combinations) of 2 rows


# ---------------------------------------------------------------- in a training run (config, run, cli)


def test_an_online_augmented_run_is_reproducible_and_recorded(cli, tiny, tmp_path):
    from conftest import tiny_train_args
    from mnistlab.config import load_toml
    from mnistlab.weights import load_model
    runs = []
    for name in ("a", "b"):
        result = cli(tiny_train_args(tiny, tmp_path / name, "--augment", "rotate,elastic", "--rotate", "12"))
        assert result.code == 0, result.err
        assert "augmenting (online): rotate, elastic" in result.out
        runs.append(load_model(tmp_path / name / "model.safetensors")[0])
    plain = cli(tiny_train_args(tiny, tmp_path / "plain"))
    assert plain.code == 0
    assert all(np.array_equal(x, y) for x, y in zip(runs[0].tensors().values(), runs[1].tensors().values()))
    plain_weight = load_model(tmp_path / "plain" / "model.safetensors")[0].tensors()["dense.0.weight"]
    assert not np.array_equal(runs[0].tensors()["dense.0.weight"], plain_weight)
    config = load_toml(tmp_path / "a" / "config.toml")
    assert (config.augment, config.augment_mode, config.rotate) == ("rotate,elastic", "online", 12.0)


def test_an_offline_augmented_run_trains_on_the_set_times_copies_plus_one(cli, tiny, tmp_path):
    from conftest import tiny_train_args
    result = cli(tiny_train_args(tiny, tmp_path / "run", "--augment", "all", "--augment-mode", "offline",
                                 "--augment-copies", "2"))
    assert result.code == 0, result.err
    assert "810 train, 30 validation images" in result.out  # 270 training images, 3 times


def test_an_offline_one_each_run_trains_on_one_variant_per_named_transform(cli, tiny, tmp_path):
    from conftest import tiny_train_args
    from mnistlab.config import load_toml
    result = cli(tiny_train_args(tiny, tmp_path / "run", "--augment", "zoom,blur", "--augment-mode", "offline",
                                 "--augment-copies", "2", "--augment-copy", "one_each"))
    assert result.code == 0, result.err
    assert "810 train, 30 validation images" in result.out
    assert load_toml(tmp_path / "run" / "config.toml").augment_copy == "one_each"


def test_one_each_copies_without_offline_augmentation_is_refused(cli, tiny, tmp_path):
    from conftest import tiny_train_args
    result = cli(tiny_train_args(tiny, tmp_path / "run", "--augment", "zoom", "--augment-mode", "online",
                                 "--augment-copy", "one_each"))
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "mnistlab: error: flag: --augment-copy = 'one_each': applies to offline augmentation only "
        "(augment_mode = offline)"]
    assert not (tmp_path / "run").exists()


def test_a_bad_augmentation_setting_is_one_line_and_exit_2(cli, tiny, tmp_path):
    from conftest import tiny_train_args
    result = cli(tiny_train_args(tiny, tmp_path / "run", "--augment", "rotate,twist"))
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "mnistlab: error: flag: --augment = 'rotate,twist': unknown transform 'twist' (known: thickness, zoom, "
        "rotate, shear, shift, elastic, resample, blur, squares, noise; or all, none)"]


def test_augment_preview_command_writes_the_png(cli, tmp_path):
    result = cli(["augment-preview", "--out", tmp_path / "grid.png", "--count", "2"])
    assert result.code == 0 and "grid.png" in result.out
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"


def test_the_config_knows_the_transforms_and_their_defaults():
    import dataclasses

    from mnistlab.config import AUGMENT_NAMES, AUGMENT_STRENGTHS, FIELDS
    from mnistlab.data.augment import TRANSFORMS, Augmentation
    assert AUGMENT_NAMES == TRANSFORMS
    defaults = {f.name: f.default for f in dataclasses.fields(Augmentation) if f.name != "transforms"}
    assert set(AUGMENT_STRENGTHS) == set(defaults)
    assert {name: FIELDS[name].default for name in AUGMENT_STRENGTHS} == defaults


@pytest.mark.parametrize("args, fragment", [
    (["--out", "x.bogus"], "unknown image format 'bogus'"),
    (["--count", "0"], "--count 0"),
    (["--count", "-3"], "--count -3"),
    (["--count", "100000"], "--count 100000"),
    (["--seed", "-1"], "--seed -1"),
    (["--out", "dir/"], "is a folder"),
])
def test_augment_preview_checks_every_argument_up_front_in_one_line(cli, tmp_path, monkeypatch, args, fragment):
    from conftest import assert_one_line_error
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir").mkdir()
    result = cli(["augment-preview", *args])
    assert_one_line_error(result, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"] and not any((tmp_path / "dir").iterdir())


def test_augment_preview_writes_svg_by_its_suffix_and_says_which_folders_it_made(cli, tmp_path):
    out = tmp_path / "new" / "grid.svg"
    result = cli(["augment-preview", "--out", out, "--count", "1"])
    assert result.code == 0, result.err
    assert out.read_bytes().startswith(b"<?xml") and f"created folder {tmp_path / 'new'}/" in result.out
