"""Data augmentation: random distortions of batches of 28x28 images, seeded, vectorised over the batch.

``Augmentation(("rotate", "elastic"), rotate=10).apply(images, rng)`` returns distorted copies of
``images``; ``expand(images, labels, augmentation, copies, rng)`` is the offline mode (the set plus ``copies``
variants of every image) and ``prefetch.EpochImages`` the online one (fresh variants every epoch,
prepared in a worker thread while the network trains).

Images come in as uint8 (0..255) or float (0..1), shaped (n, 784) or (n, 28, 28), and go out with the
same dtype, shape and range; the work is done in float32. Every random number comes from the
``np.random.Generator`` passed in, so the same generator state gives the same images, bit for bit.

Whatever the order of names, the transforms run in one fixed order (``TRANSFORMS``): thickness, the
geometric ones (zoom, rotate, shear, shift, elastic) as ONE bilinear interpolation over a composed
coordinate field, resample, blur, squares, noise. Composing matters for speed: one interpolation per chunk of images costs the
same for an affine map as for affine + elastic, where separate passes would each cost it (and blur
the image each time).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import InputError

SIDE = 28
GEOMETRIC = ("zoom", "rotate", "shear", "shift", "elastic")
TRANSFORMS = ("thickness", *GEOMETRIC, "resample", "blur", "squares", "noise")  # the order they are applied in
CHUNK = 256  # images per pass: the working arrays (a few 256 x 784 float32) stay in cache
_CENTRE = (SIDE - 1) / 2
_TILE = SIDE + 2  # each image padded with a one-pixel zero border inside the stacked interpolation input


@dataclass(frozen=True)
class Augmentation:
    """Which transforms to apply and how strongly; defaults from the literature (see each field).

    Random draws are per image and uniform in the ranges given: an image is rotated by an angle in
    [-rotate, rotate] degrees, scaled by a factor in [1 - zoom, 1 + zoom], and so on.
    """

    transforms: tuple[str, ...] = ()
    rotate: float = 10.0  # degrees (Ciresan et al. 2010 used 7.5-15)
    zoom: float = 0.1  # relative scale change (Ciresan: 15-20%)
    shear: float = 10.0  # degrees of horizontal shear
    shift: float = 2.0  # pixels, each axis
    elastic_alpha: float = 34.0  # displacement scale, pixels (Simard et al. 2003: 34 with sigma 4)
    elastic_sigma: float = 4.0  # smoothing of the random displacement field, pixels
    thickness: int = 1  # pixels of stroke width added (grey dilation) or taken (erosion), half the images each
    resample: float = 0.5  # shrunk to a side from 28 (1 - resample) to 28 px and enlarged back (a digit drawn small)
    blur: float = 1.0  # Gaussian sigma, pixels, the same for every image
    squares: int = 2  # black squares per image (cutout)
    square_size: int = 6  # their side, pixels
    noise: float = 0.1  # standard deviation of Gaussian pixel noise, as a fraction of full scale

    def __post_init__(self):
        object.__setattr__(self, "transforms", tuple(self.transforms))
        bad = problem(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        if bad:
            raise InputError(f"augment: {bad[0]} = {getattr(self, bad[0])!r}: {bad[1]}")

    def only(self, *transforms):
        """The same strengths with other transforms (``aug.only("rotate")``: rotation alone)."""
        return dataclasses.replace(self, transforms=transforms)

    def apply(self, images, rng):
        """Distorted copies of ``images`` (uint8 0..255 or float 0..1; (n, 784) or (n, 28, 28))."""
        images = np.asarray(images)
        out = np.empty_like(images)
        self.apply_into(images, out, rng)
        return out

    def apply_into(self, images, out, rng):
        """``apply`` writing into ``out`` (same shape and dtype as ``images``), chunk by chunk."""
        n = len(images)
        if images.shape[1:] not in ((SIDE * SIDE,), (SIDE, SIDE)):
            raise InputError(f"augment: images of shape {images.shape}: expected (n, 784) or (n, 28, 28)")
        if out.shape != images.shape or out.dtype != images.dtype:
            raise ValueError("out must have the images' shape and dtype")
        flat_in = images.reshape(n, SIDE, SIDE)
        flat_out = out.reshape(n, SIDE, SIDE)
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            batch = _to_unit_float(flat_in[start:stop])
            batch = self._distort(batch, rng)
            _from_unit_float(batch, flat_out[start:stop])
        return out

    def _distort(self, x, rng):
        """x: (n, 28, 28) float32 in [0, 1] -> distorted, same shape (may be x itself, modified)."""
        chosen = set(self.transforms)
        if "thickness" in chosen and self.thickness:  # first: crisp strokes erode more gently
            x = thickness(x, self.thickness, rng)
        if chosen & set(GEOMETRIC):
            x = warp(x, *self._coordinate_parts(len(x), rng, chosen))
        if "resample" in chosen and self.resample:
            x = resample(x, self.resample, rng)
        if "blur" in chosen and self.blur:
            x = blur(x, self.blur)
        if "squares" in chosen and self.squares:
            x = black_squares(x, self.squares, self.square_size, rng)
        if "noise" in chosen and self.noise:
            x = pixel_noise(x, self.noise, rng)
        return x

    def _coordinate_parts(self, n, rng, chosen):
        """(matrices (n, 2, 2), offsets (n, 2), displacement fields (n, 2, 28, 28) or None)."""
        def amount(name, strength):
            return strength if name in chosen else 0.0
        matrices, offsets = affine_parameters(n, rng, amount("rotate", self.rotate), amount("zoom", self.zoom),
                                              amount("shear", self.shear), amount("shift", self.shift))
        fields = None
        if "elastic" in chosen and self.elastic_alpha:
            fields = elastic_fields(n, rng, self.elastic_alpha, self.elastic_sigma)
        return matrices, offsets, fields


def problem(transforms, **strengths):
    """(setting name, what is wrong) for the first bad Augmentation setting, or None."""
    values = {f.name: f.default for f in dataclasses.fields(Augmentation)}
    values.update(strengths, transforms=tuple(transforms))
    unknown = [t for t in values["transforms"] if t not in TRANSFORMS]
    if unknown:
        return "transforms", f"unknown transform {unknown[0]!r} (known: {', '.join(TRANSFORMS)})"
    for name in ("rotate", "zoom", "shear", "shift", "elastic_alpha", "elastic_sigma", "blur", "noise"):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
            return name, "must be a number >= 0"
    if values["zoom"] >= 1:
        return "zoom", "must be below 1 (scale in [1 - zoom, 1 + zoom])"
    value = values["resample"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        return "resample", "must be a number from 0 to below 1 (the side taken off, as a fraction of 28 px)"
    if "elastic" in values["transforms"] and values["elastic_sigma"] <= 0:
        return "elastic_sigma", "must be > 0"
    for name, low in (("thickness", 0), ("squares", 0), ("square_size", 1)):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < low:
            return name, f"must be an integer >= {low}"
    return None


def _to_unit_float(images):
    if images.dtype == np.uint8:
        return images.astype(np.float32) * np.float32(1 / 255)
    return images.astype(np.float32)  # a copy: the transforms may work in place


def _from_unit_float(x, out):
    if out.dtype == np.uint8:
        np.clip(x * 255 + 0.5, 0, 255, out=x)  # round half up; then the cast truncates
        out[...] = x
    else:
        out[...] = x


# Geometric transforms ------------------------------------------------------------------------------

def affine_parameters(n, rng, rotate=0.0, zoom=0.0, shear=0.0, shift=0.0):
    """Per-image maps from an output pixel to where it is read in the input, about the image centre.

    Returns matrices (n, 2, 2) and offsets (n, 2), in (row, column) order: the pixel at p is read at
    ``matrices @ (p - centre) + centre + offsets``. Drawn uniformly: angle in [-rotate, rotate]
    degrees, scale in [1 - zoom, 1 + zoom], shear angle in [-shear, shear] degrees, offsets in
    [-shift, shift] pixels. All four draws are made whatever the strengths, so a strength of 0 changes
    no other transform's random numbers.
    """
    angle = np.radians(rng.uniform(-rotate, rotate, n))
    scale = rng.uniform(1 - zoom, 1 + zoom, n)
    skew = np.tan(np.radians(rng.uniform(-shear, shear, n)))
    offsets = rng.uniform(-shift, shift, (n, 2))
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale  # reading at 1/scale enlarges by scale
    # rotation @ shear, where shear reads column x + skew * row
    matrices = np.empty((n, 2, 2))
    matrices[:, 0, 0] = cos
    matrices[:, 0, 1] = -sin
    matrices[:, 1, 0] = sin
    matrices[:, 1, 1] = cos
    matrices[:, :, 0] += skew[:, None] * matrices[:, :, 1]
    return matrices, offsets


@lru_cache(maxsize=16)
def _smoothing_factor(sigma):
    """B (28, r) with B @ B.T close to G @ G.T, G the 1-D Gaussian smoothing matrix (reflecting edges).

    Simard's field is G @ U @ G.T for a (28, 28) field U of independent uniform noise. For Gaussian
    noise Z of the same variance, B @ Z_r @ B.T with Z_r (r, r) has the same covariance as G @ Z @ G.T
    (G = U S V.T, and V.T Z V is again independent noise), and r is small because a sigma of 4 leaves
    few frequencies: 7 of 28 keep 99.99% of the field's variance. So a field costs two tiny products
    instead of a 2-D Gaussian filter (33 taps per pixel per axis). Over many pixels uniform noise
    smoothed this much is Gaussian anyway.
    """
    from scipy.ndimage import gaussian_filter1d
    g = gaussian_filter1d(np.eye(SIDE), sigma, axis=0, mode="reflect", truncate=4.0)
    u, s, _ = np.linalg.svd(g)
    energy = np.cumsum(s ** 2) / np.sum(s ** 2)
    rank = int(np.searchsorted(energy ** 2, 0.9999)) + 1  # 2-D variance kept: energy squared
    return np.ascontiguousarray(u[:, :rank] * s[:rank])


def elastic_fields(n, rng, alpha, sigma):
    """Random smooth displacement fields (n, 2, 28, 28) in pixels, Simard et al. (2003) style.

    Each of the 2n fields is white noise of variance 1/3 (that of uniform noise on [-1, 1]) smoothed
    by a Gaussian of ``sigma`` pixels and scaled by ``alpha``; see ``_smoothing_factor``.
    """
    b = _smoothing_factor(float(sigma)).astype(np.float32)  # (28, r)
    r = b.shape[1]
    z = rng.standard_normal((2 * n, r, r), dtype=np.float32)
    z *= np.float32(alpha / math.sqrt(3))
    fields = b @ z @ b.T  # (2n, 28, 28)
    return fields.reshape(n, 2, SIDE, SIDE)


_ROWS, _COLS = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) - np.float32(_CENTRE)  # (28, 28) each


def warp(images, matrices, offsets, fields=None):
    """Read each image at its affine (+ elastic) source coordinates: one bilinear interpolation.

    images (n, 28, 28) float32, matrices (n, 2, 2), offsets (n, 2), fields (n, 2, 28, 28) or None.
    Outside the image reads as 0. Bilinear interpolation written out in NumPy rather than
    ``scipy.ndimage.map_coordinates(order=1)``, which computes the same values (the tests check it
    to 1e-5) but took 20 us an image here, against 7 us for this (coordinates included): it is
    generic N-d spline code, per point. Here each image gets a one-pixel zero border, each pixel of
    it the four corner values of its cell as one 16-byte record, and a source point costs one gather
    and a few passes over contiguous float32 arrays.
    """
    n = len(images)
    # Source coordinates inside each bordered (30, 30) tile: M @ (p - centre) + centre + 1 + offset.
    m = matrices.astype(np.float32)
    shift = (offsets + (_CENTRE + 1)).astype(np.float32)
    rows = m[:, 0, 0, None, None] * _ROWS
    rows += m[:, 0, 1, None, None] * _COLS
    rows += shift[:, 0, None, None]
    cols = m[:, 1, 0, None, None] * _ROWS
    cols += m[:, 1, 1, None, None] * _COLS
    cols += shift[:, 1, None, None]
    if fields is not None:
        rows += fields[:, 0]
        cols += fields[:, 1]
    # Beyond the border every corner is 0 anyway; clipping keeps reads inside the image's own tile
    # (a point on the far edge reads the next tile's border with weight 0).
    np.clip(rows, 0, _TILE - 1, out=rows)
    np.clip(cols, 0, _TILE - 1, out=cols)
    top, left = rows.astype(np.int32), cols.astype(np.int32)  # truncation = floor: all >= 0
    rows -= top  # now the fractions
    cols -= left
    top *= _TILE
    top += left
    top += (np.arange(n, dtype=np.int32) * (_TILE * _TILE))[:, None, None]  # flat index of each cell
    # Per cell of the bordered stack: (a, b - a, c - a, a - b - c + d) for corners a b / c d, so that
    # the value at fractions (fy, fx) is q0 + fx q1 + fy (q2 + fx q3). One extra tile at the end holds
    # the last cells' lower and right neighbours.
    padded = np.zeros((n + 1) * _TILE * _TILE + _TILE + 1, np.float32)
    padded[:n * _TILE * _TILE].reshape(n, _TILE, _TILE)[:, 1:-1, 1:-1] = images
    cells = n * _TILE * _TILE
    a, b = padded[:cells], padded[1:cells + 1]
    c, d = padded[_TILE:cells + _TILE], padded[_TILE + 1:cells + _TILE + 1]
    quad = np.empty((cells, 4), np.float32)
    np.subtract(b, a, out=quad[:, 1])
    np.subtract(c, a, out=quad[:, 2])
    np.subtract(d, c, out=quad[:, 3])
    quad[:, 3] -= quad[:, 1]
    quad[:, 0] = a
    q = np.take(quad.view(np.complex128).ravel(), top)  # one 16-byte gather per output pixel
    q = q.view(np.float32).reshape(n, SIDE, SIDE, 4)
    out = q[..., 3] * cols
    out += q[..., 2]
    out *= rows
    cols *= q[..., 1]
    out += cols
    out += q[..., 0]
    return out


# Pixel transforms ----------------------------------------------------------------------------------

def thickness(images, pixels, rng):
    """Strokes ``pixels`` wider or narrower: grey dilation or erosion, chosen per image (half each).

    The footprint is a quarter disc of radius ``pixels`` (1: a 2x2 corner), which moves each stroke's
    edge on one side only: a full disc would take 2 pixels off MNIST's 2-3 pixel strokes and erase thin
    digits.
    """
    from scipy.ndimage import grey_dilation, grey_erosion
    rows, cols = np.mgrid[0:pixels + 1, 0:pixels + 1]
    footprint = (rows ** 2 + cols ** 2 <= pixels ** 2)[None]  # (1, p + 1, p + 1): not across images
    thicker = rng.random(len(images)) < 0.5
    out = np.empty_like(images)
    if thicker.any():
        out[thicker] = grey_dilation(images[thicker], footprint=footprint)
    if (~thicker).any():
        out[~thicker] = grey_erosion(images[~thicker], footprint=footprint)
    return out


def resample(images, amount, rng):
    """Each image shrunk to a random side from ceil(28 (1 - amount)) to 28 pixels (uniform over the integers)
    and enlarged back to 28, both with the anti-aliased triangle filter of the drawing page's preprocessing
    (``drawing.resample_matrix``): what that preprocessing does to a digit drawn small on the canvas. Strokes
    soften and widen, thin gaps close. One 28x28 product on each side per image, grouped by side."""
    from .drawing import resample_matrix
    low = max(2, math.ceil(SIDE * (1 - amount)))
    sides = rng.integers(low, SIDE + 1, len(images))
    for side in np.unique(sides):
        if side == SIDE:
            continue
        chosen = np.flatnonzero(sides == side)
        there_and_back = (resample_matrix(side, SIDE) @ resample_matrix(SIDE, side)).astype(np.float32)
        images[chosen] = there_and_back @ images[chosen] @ there_and_back.T
    return images


def blur(images, sigma):
    """Gaussian blur of ``sigma`` pixels over every image (not across images)."""
    from scipy.ndimage import gaussian_filter
    return gaussian_filter(images, (0, sigma, sigma), mode="constant", output=np.float32)


def black_squares(images, count, size, rng):
    """Set ``count`` squares of ``size`` pixels per image to 0 (cutout), centred within the central 20x20."""
    n = len(images)
    centres = rng.integers(4, SIDE - 4, (2, n, count))  # where MNIST's digits are
    first = centres - size // 2
    axis = np.arange(SIDE)
    inside = (axis >= first[..., None]) & (axis < first[..., None] + size)  # (2, n, count, 28)
    covered = (inside[0][:, :, :, None] & inside[1][:, :, None, :]).any(axis=1)  # (n, 28, 28)
    images[covered] = 0
    return images


def pixel_noise(images, std, rng):
    """Add Gaussian noise of ``std`` (fraction of full scale) to every pixel; clip to [0, 1]."""
    noise = rng.standard_normal(images.shape, dtype=np.float32)
    noise *= np.float32(std)
    images += noise
    return np.clip(images, 0, 1, out=images)


# Offline mode --------------------------------------------------------------------------------------

def expand(images, labels, augmentation, copies, rng, one_each=False):
    """The offline mode: (images, labels) followed by ``copies`` distorted variants of every image.

    Returns arrays (copies + 1) times as long: the originals first, then the first variant of every
    image, then the second, ...; labels repeated alike. Each variant applies all of ``augmentation``'s
    transforms together; with ``one_each``, variant k applies only its k-th transform (in the order
    named, cycling): ``zoom,rotate,blur,squares`` with 4 copies gives one zoomed, one rotated, one
    blurred and one squared copy of every image.
    """
    if isinstance(copies, bool) or int(copies) != copies or copies < 0:
        raise InputError(f"augment: copies = {copies!r}: must be an integer >= 0")
    images = np.asarray(images)
    n = len(images)
    out = np.empty((n * (copies + 1), *images.shape[1:]), images.dtype)
    out[:n] = images
    names = augmentation.transforms
    for k in range(1, copies + 1):
        variant = augmentation.only(names[(k - 1) % len(names)]) if one_each and names else augmentation
        variant.apply_into(images, out[k * n:(k + 1) * n], rng)
    return out, np.tile(np.asarray(labels), copies + 1)
