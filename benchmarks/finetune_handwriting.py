"""Fine-tune saved models on collected drawings and measure them on other writers' drawings and on MNIST.

For each model: `mnistlab train --init-from W --data DRAWINGS/tune --test-data DRAWINGS/test --mix M ...`
(the fine-tuning never sees DRAWINGS/test, written by other people), then a table of the MNIST test
accuracy and the test drawings' accuracy before and after, the share of the drawings' gap to MNIST
that was closed, and whether the issue's goal holds (at least half the gap closed, MNIST down at most
0.2 points). DRAWINGS comes from benchmarks/collect_handwriting.py.

    python benchmarks/finetune_handwriting.py --drawings bench-drawings \\
        --model default=runs/default/model.safetensors --model best=runs/best/model.safetensors

Writes each run under --runs (default runs/handwriting/NAME-mixM) and the table to --table.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

RECIPE = ["--epochs", "30", "--lr", "0.01", "--batch-size", "64", "--val-fraction", "0.1",
          "--augment", "zoom,rotate,shear,shift,elastic", "--rotate", "8", "--zoom", "0.08", "--shear", "8"]


def finetune(name, weights, drawings, mix, runs, extra):
    out = Path(runs) / f"{name}-mix{mix:g}"
    if not (out / "metrics.json").is_file():
        command = [sys.executable, "-m", "mnistlab.cli", "train", "--init-from", str(weights),
                   "--data", str(Path(drawings) / "tune"), "--test-data", str(Path(drawings) / "test"),
                   "--mix", str(mix), *RECIPE, *extra, "--out", str(out)]
        print("$ mnistlab " + " ".join(command[3:]), flush=True)
        subprocess.run(command, check=True)
    return json.loads((out / "metrics.json").read_text()), out


def row(name, mix, metrics):
    before, after = metrics["before"], metrics
    mnist_before, mnist_after = 100 * before["test_accuracy"], 100 * after["test_accuracy"]
    draw_before, draw_after = 100 * before["drawings_test_accuracy"], 100 * after["drawings_test_accuracy"]
    closed = (draw_after - draw_before) / (mnist_before - draw_before) if mnist_before > draw_before else float("nan")
    goal = closed >= 0.5 and mnist_before - mnist_after <= 0.2
    return (f"| {name} | {mix:g} | {draw_before:.2f}% -> {draw_after:.2f}% | {mnist_before:.2f}% -> {mnist_after:.2f}% "
            f"({mnist_after - mnist_before:+.2f}) | {100 * closed:.0f}% | {'yes' if goal else 'no'} |")


def references(drawings, tune_rows):
    """How separable the handwriting is across these writers, without MNIST: an SVM on scikit-learn's
    8x8 originals (the first ``tune_rows`` rows -> the last 400), and an SVM and 1-NN fitted on the
    tune drawings alone (as the page stored them, 28x28) -> the test drawings."""
    from sklearn.datasets import load_digits
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    from mnistlab.data import load_images_labels

    digits = load_digits()
    x, y = digits.data, digits.target
    print(f"SVM (RBF) on the 8x8 originals, rows 0..{tune_rows - 1} -> the last 400 rows: "
          f"{100 * (SVC(gamma=0.001).fit(x[:tune_rows], y[:tune_rows]).predict(x[-400:]) == y[-400:]).mean():.2f}%")
    tx, ty = load_images_labels(Path(drawings) / "tune")
    sx, sy = load_images_labels(Path(drawings) / "test")
    tx, ty = tx[:tune_rows] / 255.0, ty[:tune_rows]
    for name, model in (("SVM (RBF)", SVC(gamma="scale")), ("1-NN", KNeighborsClassifier(1))):
        accuracy = (model.fit(tx, ty).predict(sx / 255.0) == sy).mean()
        print(f"{name} fitted on the first {len(ty)} tune drawings -> the test drawings: {100 * accuracy:.2f}%")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drawings", default="bench-drawings", help="folder with tune/ and test/")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=WEIGHTS")
    parser.add_argument("--reference", type=int, metavar="ROWS",
                        help="print classifiers fitted on the first ROWS tune drawings alone (needs scikit-learn)")
    parser.add_argument("--mix", type=float, action="append", help="MNIST share of each batch (repeatable; default 0.8)")
    parser.add_argument("--runs", default="runs/handwriting", help="where the fine-tuned runs go")
    parser.add_argument("--table", default=None, help="also write the table (markdown) here")
    parser.add_argument("extra", nargs="*", help="more `mnistlab train` flags, after --")
    args = parser.parse_args()
    if args.reference:
        references(args.drawings, args.reference)
    lines = ["| model | mix | test writers' drawings | MNIST test | gap closed | goal |",
             "| --- | --- | --- | --- | --- | --- |"]
    for spec in args.model:
        name, _, weights = spec.partition("=")
        for mix in args.mix or [0.8]:
            metrics, out = finetune(name, weights, args.drawings, mix, args.runs, args.extra)
            lines.append(row(name, mix, metrics))
            print(lines[-1], flush=True)
    if not args.model:
        return
    n = metrics["drawings"]
    lines.append(f"\n{n['train']} drawings for fine-tuning, {n['val']} held out for validation, "
                 f"{n['test']} of other writers for the test.")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.table:
        Path(args.table).parent.mkdir(parents=True, exist_ok=True)
        Path(args.table).write_text(table)


if __name__ == "__main__":
    main()
