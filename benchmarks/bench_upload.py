"""The server time of hostile photo uploads: what one POST /api/predict with a PNG or JPEG can cost.

Each upload is decoded and read as the server does (``drawing.read_image`` then ``drawing.from_photo``),
in this process, several times; the median seconds per upload are printed, or the one-line refusal.
The uploads: the issue's 62 kB 7000x7000 PNG (white, a digit-sized black square), the largest PNGs the
server accepts (2048x2048: white RGBA, 16-bit grey, and incompressible grey noise, about 4 MB, under the
8 MB body limit), a 2048x2048 palette PNG, a 7000x7000 JPEG, and a phone photo's 4032x3024 JPEG.

Run:  PYTHONPATH=src python3 benchmarks/bench_upload.py [--repeats N]
(compare versions with PYTHONPATH=OLD/src; MNISTLAB_SHARE_CORES=0 keeps BLAS's thread count fixed)
"""

import argparse
import io
import statistics
import time

import numpy as np
from PIL import Image

from mnistlab.data import drawing
from mnistlab.errors import InputError


def encoded(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def uploads():
    rng = np.random.default_rng(0)
    big = np.full((7000, 7000), 255, np.uint8)
    big[3000:4000, 3400:3600] = 0
    side = 2048
    ink = np.full((side, side), 255, np.uint8)
    ink[800:1300, 950:1100] = 0
    rgba = np.dstack([ink, ink, ink, np.full_like(ink, 255)])
    yield "PNG 7000x7000 white, one stroke", encoded(Image.fromarray(big), "PNG", optimize=True)
    yield "PNG 2048x2048 RGBA", encoded(Image.fromarray(rgba, "RGBA"), "PNG")
    yield "PNG 2048x2048 16-bit grey", encoded(Image.fromarray(ink.astype(np.uint16) * 257), "PNG")
    yield "PNG 2048x2048 grey noise", encoded(Image.fromarray(rng.integers(0, 256, (side, side), np.uint8)), "PNG")
    yield "PNG 2048x2048 palette", encoded(Image.fromarray(ink).convert("P"), "PNG")
    yield "JPEG 7000x7000", encoded(Image.fromarray(big), "JPEG", quality=90)
    photo = np.full((3024, 4032), 230, np.uint8)
    photo[1000:2000, 1900:2100] = 30
    yield "JPEG 4032x3024 (a phone photo)", encoded(Image.fromarray(photo), "JPEG", quality=90)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'upload':34} {'kB':>7} {'median s':>9}  result")
    for name, data in uploads():
        times, outcome = [], ""
        for _ in range(args.repeats):
            started = time.perf_counter()
            try:
                image28 = drawing.from_photo(drawing.read_image(data))
                outcome = "nothing found" if image28 is None else "read"
            except InputError as e:
                outcome = f"refused: {e}"
            times.append(time.perf_counter() - started)
        print(f"{name:34} {len(data) / 1000:7.1f} {statistics.median(times):9.4f}  {outcome}", flush=True)


if __name__ == "__main__":
    main()
