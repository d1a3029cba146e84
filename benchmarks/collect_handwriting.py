"""Make a collected-drawings set through the real page: a headless Chromium (Playwright) draws digits of
handwriting that is not MNIST's with the mouse on `mnistlab draw --collect DIR`, and labels each one
with its digit's key, as a person would.

The handwriting: scikit-learn's copy of the UCI "Optical Recognition of Handwritten Digits" test set
(``sklearn.datasets.load_digits``, shipped inside the scikit-learn package, nothing downloaded):
1,797 digits written on forms by 13 people (43 took part; the other 30 wrote the training set),
scanned at 32x32 and shipped as 8x8 counts of inked pixels (0..16). Not MNIST's writers or scans.
scikit-learn ships no writer ids; the rows come in the order of the forms (each form's first 30
boxes read 0123456789 three times), so the first rows and the last rows are taken as two sets of
writers, with 300 rows (about two writers' worth) left unused between them as a margin.

The strokes: each 8x8 digit is scaled up to 32x32 (bilinear), thresholded, thinned to a one-pixel
skeleton (Zhang-Suen), and the skeleton is traced into pen strokes (walking from its ends, then
around loops; junction pixels are shared so strokes meet). The strokes are drawn 7x larger on the
280x280 canvas with the mouse (a move every few pixels), with the brush set to the digit's own
stroke width (inked area / skeleton length, times 7, within the page's 4..40).

    python benchmarks/collect_handwriting.py --out bench-drawings [--tune 900 --test 600]
    python benchmarks/collect_handwriting.py --out bench-drawings --only tune --tune-start 900 --tune 1097

writes bench-drawings/tune/ (first rows) and bench-drawings/test/ (last rows), each a drawings folder
(`mnistlab test --data` and fine-tuning read them). Needs scikit-learn (pip install scikit-learn) and
the test extra (Playwright; Debian's /usr/bin/chromium).
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
UP, CANVAS, SCALE = 32, 280, 7  # skeleton grid, page canvas side, canvas pixels per grid pixel
THRESHOLD = 0.4  # of full ink, on the upscaled digit
NEIGHBOURS = [(-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)]  # 4-neighbours first


def thin(mask):
    """Zhang-Suen thinning of a boolean image to a one-pixel-wide skeleton."""
    image = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p = [np.roll(np.roll(image, -dy, 0), -dx, 1) for dy, dx in
                 ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))]  # P2..P9
            count = sum(p)
            transitions = sum((p[i] == 0) & (p[(i + 1) % 8] == 1) for i in range(8))
            if step == 0:
                ends = (p[0] * p[2] * p[4] == 0) & (p[2] * p[4] * p[6] == 0)
            else:
                ends = (p[0] * p[2] * p[6] == 0) & (p[0] * p[4] * p[6] == 0)
            remove = (image == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & ends
            if remove.any():
                image[remove] = 0
                changed = True
        if not changed:
            return image[1:-1, 1:-1].astype(bool)


def trace(skeleton):
    """The skeleton's pixels as strokes: lists of (row, col), each pixel drawn once, strokes joined at junctions."""
    pixels = {tuple(p) for p in np.argwhere(skeleton)}

    def around(p):
        return [(p[0] + dy, p[1] + dx) for dy, dx in NEIGHBOURS if (p[0] + dy, p[1] + dx) in pixels]

    seen, strokes = set(), []
    while len(seen) < len(pixels):
        left = [p for p in pixels if p not in seen]
        ends = [p for p in left if len(around(p)) == 1]
        start = min(ends or left)
        joined = [q for q in around(start) if q in seen]
        stroke = [joined[0], start] if joined else [start]
        seen.add(start)
        while True:
            nxt = [q for q in around(stroke[-1]) if q not in seen]
            if not nxt:
                stuck = [q for q in around(stroke[-1]) if q in seen and q not in stroke[-3:]]
                if stuck and len(stroke) > 2:
                    stroke.append(stuck[0])  # close a loop or reach a junction already drawn
                break
            if len(stroke) >= 2:  # keep going the same way where the skeleton forks
                dy, dx = stroke[-1][0] - stroke[-2][0], stroke[-1][1] - stroke[-2][1]
                nxt.sort(key=lambda q: -((q[0] - stroke[-1][0]) * dy + (q[1] - stroke[-1][1]) * dx))
            stroke.append(nxt[0])
            seen.add(nxt[0])
        strokes.append(stroke)
    long = [s for s in strokes if len(s) >= 3]
    return long or strokes


def pen_strokes(digit8):
    """(strokes in canvas pixels as lists of (x, y), brush width) for one 8x8 digit of counts 0..16."""
    big = np.clip(ndimage.zoom(digit8.astype(float) / 16.0, UP / 8, order=1), 0, 1)
    mask = big > THRESHOLD
    skeleton = thin(mask)
    strokes = [np.array(s, float) for s in trace(skeleton)]
    # Thinning eats into a thick stroke's ends by about its half-width: give each free end that back,
    # along the stroke's own direction, as far as the ink goes.
    depth = ndimage.distance_transform_edt(mask)
    degree = ndimage.convolve(skeleton.astype(int), np.ones((3, 3), int), mode="constant") - 1
    for k, points in enumerate(strokes):
        if len(points) < 3:
            continue
        for end, inner in ((0, 2), (-1, -3)):
            r, c = points[end].astype(int)
            if degree[r, c] != 1:
                continue
            direction = points[end] - points[inner]
            direction /= max(np.linalg.norm(direction), 1e-9)
            reach = 0.0
            while reach < depth[r, c] + 1:
                q = np.round(points[end] + (reach + 1) * direction).astype(int)
                if not (0 <= q[0] < UP and 0 <= q[1] < UP and mask[q[0], q[1]]):
                    break
                reach += 1
            tip = points[end] + max(reach - 1, 0) * direction
            strokes[k] = points = np.vstack([tip, points]) if end == 0 else np.vstack([points, tip])
    offset = (CANVAS - UP * SCALE) / 2
    width = int(np.clip(round(mask.sum() / max(skeleton.sum(), 1) * SCALE), 4, 40))
    canvas_strokes = []
    for stroke in strokes:
        points = stroke
        if len(points) > 3:  # a light smoothing: a pen does not move in 45-degree steps
            points = ndimage.uniform_filter1d(points, 3, axis=0, mode="nearest")
        canvas_strokes.append([(offset + (c + 0.5) * SCALE, offset + (r + 0.5) * SCALE) for r, c in points])
    return canvas_strokes, width


def serve(folder, weights):
    """`mnistlab draw --collect folder` on a free port; (process, url)."""
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab.cli", "draw", "--no-browser", "--port", "0", "--workers",
                             "1", "--weights", str(weights), "--collect", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    found = re.search(r"http://127\.0\.0\.1:\d+/", line)
    if not found:
        proc.kill()
        raise SystemExit(f"the server did not start: {line}{proc.stderr.read()}")
    return proc, found.group(0)


def collect(browser, url, digits, labels, log_every=50):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(url)
    page.wait_for_selector("#collect:not([hidden])")
    assert page.is_checked("#collect-on"), "--collect should start the page collecting"
    box = page.locator("#canvas").bounding_box()
    k = box["width"] / CANVAS
    started = time.perf_counter()
    for i, (digit8, label) in enumerate(zip(digits, labels)):
        strokes, width = pen_strokes(digit8)
        page.evaluate("w => { const b = document.getElementById('brush'); b.value = w; b.dispatchEvent(new Event('input')); }",
                      width)
        for stroke in strokes:
            page.mouse.move(box["x"] + stroke[0][0] * k, box["y"] + stroke[0][1] * k)
            page.mouse.down()
            for x, y in stroke[1::3] + stroke[-1:]:  # a move every 3 skeleton pixels (about 20 canvas pixels)
                page.mouse.move(box["x"] + x * k, box["y"] + y * k, steps=3)
            page.mouse.up()
        page.wait_for_selector("#right:not([disabled])", timeout=20_000)
        page.keyboard.press(str(int(label)))
        page.wait_for_function(f"document.getElementById('session-count').textContent === '{i + 1}'", timeout=20_000)
        if (i + 1) % log_every == 0:
            print(f"  {i + 1} drawings, {(time.perf_counter() - started) / (i + 1):.2f} s each", flush=True)
    result = page.inner_text("#session-accuracy")
    page.close()
    if errors:
        raise SystemExit(f"page errors: {errors}")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="bench-drawings", help="folder for tune/ and test/ (default: %(default)s)")
    parser.add_argument("--weights", default="runs/default/model.safetensors", help="model the page serves")
    parser.add_argument("--tune", type=int, default=900, help="rows before this one fine-tune (default: %(default)s)")
    parser.add_argument("--test", type=int, default=600, help="last rows, for testing (default: %(default)s)")
    parser.add_argument("--tune-start", type=int, default=0,
                        help="first row of the tuning part: add rows to a folder collected before (default: 0)")
    parser.add_argument("--only", choices=("tune", "test"), help="collect one part only")
    args = parser.parse_args()
    try:
        from sklearn.datasets import load_digits
    except ModuleNotFoundError:
        raise SystemExit("needs scikit-learn: pip install scikit-learn") from None
    from playwright.sync_api import sync_playwright

    digits = load_digits()
    n = len(digits.target)
    if args.tune + args.test + 300 > n:
        raise SystemExit(f"--tune + --test must leave 300 of the {n} rows between them")
    parts = {"tune": slice(args.tune_start, args.tune), "test": slice(n - args.test, n)}
    if args.only:
        parts = {args.only: parts[args.only]}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for name, rows in parts.items():
                folder = Path(args.out) / name
                proc, url = serve(folder, args.weights)
                try:
                    print(f"{name}: rows {rows.start}..{rows.stop - 1} -> {folder} via {url}", flush=True)
                    accuracy = collect(browser, url, digits.images[rows], digits.target[rows])
                    print(f"{name}: the page shows the served model right on {accuracy} of them", flush=True)
                finally:
                    proc.terminate()
                    proc.wait(timeout=10)
        finally:
            browser.close()


if __name__ == "__main__":
    os.environ.setdefault("MNISTLAB_SHARE_CORES", "1")
    main()
