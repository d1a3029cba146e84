"""Drawings and photos of a digit made to look like an MNIST image, as the network was trained on.

MNIST's digits were fitted into a 20x20 box (aspect ratio kept, anti-aliased) and placed in 28x28 so
that their centre of mass falls on the centre. ``mnist_like(canvas)`` does the same to a drawing
(0 = background, 255 = ink, any size); ``from_photo(gray)`` first turns a photo or scan of dark ink
on light paper into such a canvas; ``read_image(data)`` decodes a PNG or JPEG file (needs Pillow).
The web page, its tests and the robustness benchmark all go through these functions.
"""

import functools

import numpy as np

from ..errors import InputError

SIZE = 28  # the image side the network sees
BOX = 20  # the longer side of the digit inside it, as in MNIST
INK_FLOOR = 0.1  # a pixel counts towards the digit's box from this fraction of the brightest one
CENTRE = 14.0  # MNIST's centre of mass, in (row, column) pixel indices: 14.0 +- 0.3 over its training set
PHOTO_SIDE = 256  # photos are shrunk to at most this side first: plenty for one digit, and fast
IMAGE_FORMATS = ("PNG", "JPEG")
# Limits checked from the file's header, before any pixel is decoded. A photo of one digit needs no
# more than about 2,000 px a side; a PNG is decoded whole (a 62 kB 7000x7000 one cost 1.8 s), a JPEG
# at 1/2 to 1/8 of its size (draft), so a phone's 4032x3024 photo decodes at 504x378.
MAX_DECODED_SIDE = 2048
MAX_IMAGE_PIXELS = 50_000_000  # a JPEG over this is refused even though it would decode reduced


@functools.lru_cache(maxsize=512)
def resample_matrix(n_in, n_out):
    """(n_out, n_in) weights that resize a line of n_in pixels to n_out with a triangle filter.

    When shrinking, the triangle is widened to cover every input pixel (anti-aliasing, as Pillow's
    bilinear filter does), so a thin stroke fades rather than vanishing between samples. Kept once
    made (read-only): a drawing page asks for the same few sizes again and again.
    """
    scale = n_out / n_in
    support = max(1.0, 1.0 / scale)  # half-width of the triangle, in input pixels
    centres = (np.arange(n_out) + 0.5) / scale - 0.5  # (n_out,) in input coordinates
    weights = np.maximum(0.0, 1.0 - np.abs(np.arange(n_in)[None, :] - centres[:, None]) / support)
    weights /= weights.sum(axis=1, keepdims=True)
    weights.flags.writeable = False
    return weights


def resize(image, shape):
    """``image`` (h, w) resized to ``shape`` (rows, columns) with the anti-aliased triangle filter."""
    return resample_matrix(image.shape[0], shape[0]) @ image @ resample_matrix(image.shape[1], shape[1]).T


def checked_canvas(canvas, where="canvas"):
    """A float64 (h, w) array of values in 0..255, or InputError naming what is wrong."""
    try:
        a = np.asarray(canvas, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected a 2-D array of numbers") from None
    if a.ndim != 2 or 0 in a.shape:
        raise InputError(f"{where}: expected a 2-D array of numbers, got shape {a.shape}")
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 255:
        raise InputError(f"{where}: values must be numbers from 0 (background) to 255 (ink)")
    return a


def mnist_like(canvas):
    """The (28, 28) uint8 image MNIST would have made of ``canvas``, or None when nothing is drawn.

    ``canvas`` (h, w): 0 = background, 255 = ink. Steps: crop to the ink's bounding box (pixels of at
    least a tenth of the brightest); scale the
    longer side to 20 px keeping the aspect ratio (anti-aliased); place in 28x28 with the centre of
    mass at (14, 14), moved by whole pixels as MNIST was.
    """
    # A uint8 canvas (what the web page sends) is valid as it is: no float copy of the whole canvas.
    is_bytes = isinstance(canvas, np.ndarray) and canvas.dtype == np.uint8 and canvas.ndim == 2 and canvas.size
    a = canvas if is_bytes else checked_canvas(canvas)
    peak = a.max()
    if peak <= 0:
        return None
    # The box is that of the ink proper: a faint halo (blur, anti-aliasing, a scan's shadow) would
    # widen it and shrink the digit. Cropping by pixels > 0 cost 4.7 points of accuracy on the
    # robustness benchmark's redrawn test digits; at 10% of the brightest pixel, 0 on MNIST's own.
    floor = INK_FLOOR * float(peak)  # a row (column) holds ink where its brightest pixel reaches it
    rows, cols = np.flatnonzero(a.max(axis=1) >= floor), np.flatnonzero(a.max(axis=0) >= floor)
    crop = a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float64)
    h, w = crop.shape
    scale = BOX / max(h, w)
    digit = resize(crop, (max(1, round(h * scale)), max(1, round(w * scale))))
    # A thin stroke drawn on a large canvas comes out faint once shrunk; MNIST's strokes are full
    # ink, so the brightest pixel is stretched back to 255.
    digit *= 255.0 / digit.max()
    mass = digit.sum()
    cy = digit.sum(axis=1) @ np.arange(digit.shape[0]) / mass  # the centre of mass, (row, column)
    cx = digit.sum(axis=0) @ np.arange(digit.shape[1]) / mass
    top, left = round(CENTRE - cy), round(CENTRE - cx)
    out = np.zeros((SIZE, SIZE))
    # Paste with clipping: a lopsided shape's box can be pushed past the edge, as in MNIST.
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + digit.shape[0], SIZE), min(left + digit.shape[1], SIZE)
    out[r0:r1, c0:c1] = digit[r0 - top:r1 - top, c0 - left:c1 - left]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def ink_crop(canvas, min_side=SIZE):
    """The part of ``canvas`` (h, w) the drawing page sends: the box of its pixels > 0, widened to at least
    ``min_side`` a side and shifted back inside the canvas (the whole canvas when nothing is drawn). It is
    a view. ``mnist_like`` reads it as it reads the whole canvas: its own crop, at a tenth of the brightest
    pixel, lies inside this box, and the brightest pixel is in it. The page's inkBox (static/app.js) is
    the same rule."""
    canvas = np.asarray(canvas)
    rows, cols = np.flatnonzero(canvas.max(axis=1) > 0), np.flatnonzero(canvas.max(axis=0) > 0)
    if not len(rows):
        return canvas

    def widen(first, last, size):
        side = min(size, max(min_side, last - first + 1))
        start = max(0, min(first, size - side))
        return slice(start, start + side)

    return canvas[widen(rows[0], rows[-1], canvas.shape[0]), widen(cols[0], cols[-1], canvas.shape[1])]


def otsu_threshold(values):
    """The grey level (0..255) that best splits ``values`` into two classes (Otsu's method)."""
    counts = np.bincount(np.clip(values, 0, 255).astype(np.int64).ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256)
    weight0 = np.cumsum(counts)
    weight1 = weight0[-1] - weight0
    mean0 = np.cumsum(counts * levels) / np.maximum(weight0, 1)
    mean1 = (np.sum(counts * levels) - np.cumsum(counts * levels)) / np.maximum(weight1, 1)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    return int(np.argmax(between))


def photo_ink(gray, min_contrast=40.0):
    """A canvas (0 = background, ink > 0) from a photo or scan ``gray`` (h, w), 0..255 as photographed.

    Inverted when the background is light (dark ink on paper); the paper's uneven light is removed
    (a morphological top-hat: the image minus its opening, which keeps only strokes narrower than a
    quarter of the image); strokes are what stands above Otsu's threshold and ``min_contrast`` grey
    levels, less specks under a tenth of the largest blot; the rest is the paper's noise and becomes 0.
    """
    from scipy import ndimage

    g = checked_canvas(gray, "image")
    if max(g.shape) > PHOTO_SIDE:
        scale = PHOTO_SIDE / max(g.shape)
        g = resize(g, (max(1, round(g.shape[0] * scale)), max(1, round(g.shape[1] * scale))))
    if np.median(g) > 127:
        g = 255.0 - g
    size = max(3, max(g.shape) // 4)
    ink = g - ndimage.grey_opening(g, size=(size, size))
    strokes = ink > max(otsu_threshold(ink), min_contrast)
    if not strokes.any():
        return np.zeros_like(ink)
    labels, count = ndimage.label(strokes)
    if count > 1:
        sizes = np.bincount(labels.ravel())[1:]
        strokes = np.concatenate([[False], sizes >= 0.1 * sizes.max()])[labels]
    # The strokes' soft edges lie below the threshold: keep one pixel around them, less the paper's level.
    paper = np.median(ink[~strokes]) if not strokes.all() else 0.0
    ink = np.where(ndimage.binary_dilation(strokes), np.maximum(ink - paper, 0.0), 0.0)
    return np.clip(ink * (255.0 / max(ink.max(), 1e-9)), 0, 255)


def from_photo(gray):
    """``mnist_like`` of a photo or scan (h, w) of a digit: None when no ink stands out of the paper."""
    return mnist_like(photo_ink(gray))


def read_image(data):
    """Grayscale (h, w) float64 0..255 of a PNG or JPEG file's bytes; transparency counts as white paper."""
    import io

    from PIL import Image, ImageOps

    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in IMAGE_FORMATS:
            raise InputError(f"image: {image.format} files are not accepted, only PNG or JPEG")
        size = f"{image.width}x{image.height}"
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise InputError(f"image: {size} pixels is too large; a digit needs at most "
                             f"{MAX_DECODED_SIDE} px a side")
        image.draft("L", (2 * PHOTO_SIDE, 2 * PHOTO_SIDE))  # JPEG: decode at a reduced size, much faster
        if max(image.size) > MAX_DECODED_SIDE:  # a PNG (or a huge JPEG even at 1/8) decodes too large
            raise InputError(f"image: a {size} {image.format} is too large; a digit needs at most "
                             f"{MAX_DECODED_SIDE} px a side (shrink the photo)")
        ImageOps.exif_transpose(image, in_place=True)  # in place: a copy of a large image cost 0.1 s
        transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = image.convert("RGBA" if transparent else "L")
        factor = max(image.size) // (2 * PHOTO_SIDE)
        if factor > 1:  # a box filter in Pillow first: the float work below then costs 1/factor^2
            image = image.reduce(factor)
        if transparent:
            paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(paper, image).convert("L")
        return np.asarray(image, dtype=np.float64)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001  Pillow's decoders raise many types on damaged or hostile files
        raise InputError(f"image: not a readable PNG or JPEG file ({e.__class__.__name__})") from None
