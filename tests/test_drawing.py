"""mnistlab.data.drawing: drawings and photos turned into MNIST-like 28x28 images."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from mnistlab.data import load_dataset
from mnistlab.data.drawing import BOX, SIZE, from_photo, ink_crop, mnist_like, read_image, resize
from mnistlab.errors import InputError


@pytest.fixture(scope="module")
def digits():
    """The first 50 MNIST test digits, (50, 28, 28) uint8."""
    return load_dataset().test_images[:50].reshape(-1, 28, 28)


def ink_box(image):
    rows, cols = np.nonzero(image.any(axis=1))[0], np.nonzero(image.any(axis=0))[0]
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def draw_on_canvas(digit, scale, top, left, side=280):
    """``digit`` (28, 28) enlarged ``scale`` times (bilinear) and placed at (top, left) of a blank canvas."""
    big = np.clip(ndimage.zoom(digit.astype(float), scale, order=1), 0, 255)
    canvas = np.zeros((side, side))
    canvas[top:top + big.shape[0], left:left + big.shape[1]] = big
    return canvas


def correlation(a, b):
    """Pearson correlation of two images, at the best relative shift of at most one pixel.

    Centring by centre of mass moves by whole pixels, as MNIST did, so a redrawn digit whose centre
    of mass rounds the other way lands one pixel off: the same image for the network's purposes.
    """
    a = a.astype(float)
    return max(float(np.corrcoef(np.roll(a, (dy, dx), axis=(0, 1)).ravel(), b.astype(float).ravel())[0, 1])
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def test_a_blank_canvas_is_nothing_drawn_not_a_guess():
    assert mnist_like(np.zeros((280, 280))) is None
    assert mnist_like(np.zeros((28, 28), np.uint8)) is None


def test_a_tall_bar_is_scaled_to_20_pixels_high_keeping_its_aspect_ratio():
    canvas = np.zeros((500, 500))
    canvas[50:450, 300:400] = 255  # 400 x 100: 4 to 1
    image = mnist_like(canvas)
    assert image.shape == (SIZE, SIZE) and image.dtype == np.uint8
    assert ink_box(image) == (BOX, 5)
    assert image.max() == 255


def test_a_wide_shape_is_scaled_to_20_pixels_wide():
    canvas = np.zeros((300, 600))
    canvas[10:70, 0:600] = 255  # 60 x 600: 1 to 10
    assert ink_box(mnist_like(canvas)) == (2, BOX)


def test_the_centre_of_mass_lands_on_the_centre_as_in_mnist(digits):
    # An L shape drawn in a corner: its box is off-centre once the mass is centred, as in MNIST.
    canvas = np.zeros((280, 280))
    canvas[5:205, 5:45] = 255
    canvas[165:205, 5:125] = 255
    image = mnist_like(canvas)
    cy, cx = ndimage.center_of_mass(image.astype(float))
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    # MNIST's own digits have their centre of mass within half a pixel of (14, 14), like ours.
    centres = np.array([ndimage.center_of_mass(d.astype(float)) for d in digits])
    assert np.abs(centres - 14).max() <= 0.75


def test_shrinking_is_anti_aliased_so_a_thin_line_fades_rather_than_vanishing():
    line = np.zeros((100, 100))
    line[:, 50] = 255  # one pixel wide, shrunk 5x
    small = resize(line, (20, 20))
    assert small.max() < 255 and small[:, 10].min() > 0
    assert small.sum() == pytest.approx(line.sum() / 25, rel=1e-9)  # ink is conserved


def test_an_mnist_digit_comes_back_unchanged(digits):
    for digit in digits:
        assert np.abs(mnist_like(digit).astype(int) - digit).mean() < 1.0


def test_a_moved_and_enlarged_copy_of_an_mnist_digit_maps_back_close_to_the_original(digits):
    rng = np.random.default_rng(0)
    for digit in digits[:20]:
        scale = rng.uniform(2.0, 8.0)
        side = int(np.ceil(28 * scale))
        top, left = rng.integers(0, 300 - side, size=2)
        canvas = draw_on_canvas(digit, scale, top, left, side=300)
        assert correlation(mnist_like(canvas), digit) > 0.9


@settings(max_examples=150, deadline=None)
@given(st.integers(28, 300), st.integers(28, 300), st.integers(1, 60), st.integers(1, 60), st.integers(0, 2**32 - 1),
       st.sampled_from([1, 2, 26, 255]))
def test_the_pages_ink_box_is_read_exactly_as_the_whole_canvas(h, w, bh, bw, seed, faint):
    """What the page sends (the box of pixels > 0, at least 28 a side) gives the same 28x28 image to the last
    bit: strokes anywhere, at the edges, thinner than 28 px, with faint halos below the ink floor."""
    rng = np.random.default_rng(seed)
    canvas = np.zeros((h, w), np.uint8)
    bh, bw = min(bh, h), min(bw, w)
    top, left = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
    blob = rng.integers(0, 256, (bh, bw)) * (rng.random((bh, bw)) < 0.4)
    canvas[top:top + bh, left:left + bw] = blob
    halo = rng.random((h, w)) < 0.002  # stray faint pixels: inside the box sent, outside the ink's
    canvas[halo & (canvas == 0)] = faint
    part = ink_crop(canvas)
    assert min(part.shape) >= min(28, h, w) and np.shares_memory(part, canvas)
    assert part.sum(dtype=np.int64) == canvas.sum(dtype=np.int64)  # every inked pixel is sent
    whole, sent = mnist_like(canvas), mnist_like(part)
    assert (whole is None) == (sent is None)
    if whole is not None:
        assert np.array_equal(whole, sent)


def test_an_empty_canvas_is_sent_whole_and_a_dot_as_28_by_28():
    canvas = np.zeros((280, 280), np.uint8)
    assert ink_crop(canvas).shape == (280, 280)
    canvas[279, 0] = 200  # in a corner: the box is shifted back inside the canvas
    assert ink_crop(canvas).shape == (28, 28) and ink_crop(canvas)[27, 0] == 200


def test_values_outside_0_to_255_or_not_2d_are_input_errors():
    with pytest.raises(InputError, match="0 .background. to 255"):
        mnist_like(np.full((28, 28), 300.0))
    with pytest.raises(InputError, match="2-D"):
        mnist_like(np.zeros((28, 28, 3)))
    with pytest.raises(InputError, match="0 .background. to 255"):
        mnist_like(np.full((28, 28), np.nan))


def photo_of(digit, rng, side=400):
    """A fake phone photo: dark ink on light paper, unevenly lit, noisy, the digit off-centre."""
    ink = draw_on_canvas(digit, 6.0, 120, 60, side=side) / 255  # 168 px high
    rows = np.linspace(0, 1, side)[:, None]
    paper = 200 + 30 * rows + rng.normal(0, 6, (side, side))  # light gradient + sensor noise
    return np.clip(paper * (1 - 0.75 * ink), 0, 255)


def test_a_photo_of_dark_ink_on_light_paper_is_inverted_cleaned_and_centred(digits):
    rng = np.random.default_rng(1)
    for digit in digits[:10]:
        image = from_photo(photo_of(digit, rng))
        assert correlation(image, digit) > 0.85
        assert image[0].max() == 0 and image[:, 0].max() == 0  # the paper's noise is gone


def test_a_photo_of_light_ink_on_a_dark_board_is_not_inverted(digits):
    rng = np.random.default_rng(2)
    board = 255 - photo_of(digits[0], rng)
    assert correlation(from_photo(board), digits[0]) > 0.85


def test_a_photo_of_blank_paper_is_nothing_drawn():
    rng = np.random.default_rng(3)
    paper = 200 + 30 * np.linspace(0, 1, 300)[:, None] + rng.normal(0, 6, (300, 300))
    assert from_photo(np.clip(paper, 0, 255)) is None


def encoded(array, fmt, mode="L"):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8), mode=mode).save(buffer, format=fmt)
    return buffer.getvalue()


def test_png_and_jpeg_files_are_read_as_grayscale(digits):
    rng = np.random.default_rng(4)
    photo = photo_of(digits[1], rng)
    for fmt in ("PNG", "JPEG"):
        gray = read_image(encoded(photo, fmt))
        assert gray.shape == photo.shape
        assert np.abs(gray - photo).mean() < 4
        assert correlation(from_photo(gray), digits[1]) > 0.85


def test_a_transparent_png_reads_as_ink_on_white_paper(digits):
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = draw_on_canvas(digits[2], 8.0, 30, 30).astype(np.uint8)  # black ink, alpha = coverage
    gray = read_image(encoded(rgba, "PNG", mode="RGBA"))
    assert gray[0, 0] == 255
    assert correlation(from_photo(gray), digits[2]) > 0.85


@pytest.mark.parametrize("data", [b"", b"not an image", b"GIF89a" + bytes(40)])
def test_bytes_that_are_not_a_png_or_jpeg_are_input_errors(data):
    with pytest.raises(InputError, match="image:"):
        read_image(data)


def test_other_image_formats_are_refused_by_name():
    with pytest.raises(InputError, match="GIF files are not accepted"):
        read_image(encoded(np.zeros((30, 30)), "GIF"))


@settings(max_examples=80, deadline=None)
@given(cut=st.integers(0, 2000), flips=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=8),
       fmt=st.sampled_from(["PNG", "JPEG"]))
def test_a_damaged_png_or_jpeg_is_an_input_error_or_an_image_never_a_crash(cut, flips, fmt):
    data = bytearray(encoded(np.arange(64 * 64).reshape(64, 64) % 251, fmt))
    for at, value in flips:
        data[at % len(data)] = value
    try:
        gray = read_image(bytes(data[:len(data) - cut]))
    except InputError:
        return
    from_photo(gray)  # whatever was decoded goes through the photo path without error
