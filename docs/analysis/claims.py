"""Every derived figure docs/REPORT.md quotes beyond its tables, from the committed run records.

Differences between two configurations come with their standard error and Welch's t over the seeds
(n each); stop epochs, loss crossings, lowest-validation-loss epochs and times come from each run's
history.csv and metrics.json. Reads results/ only; trains nothing.

    python docs/analysis/claims.py [RESULTS_DIR]

Each line is ``section | what | figure``; REPORT.md quotes them rounded as printed.
"""

import csv
import json
import math
import statistics
import sys
from pathlib import Path


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Study:
    """A study folder: its configurations' test accuracies, histories and metrics, by table label."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.table = {row["label"]: row for row in read_csv(self.folder / "table.csv")}
        self.runs = read_csv(self.folder / "runs.csv")

    def _runs(self, label):
        key = self.table[label]["config"]
        return sorted((r for r in self.runs if r["config"] == key and r["status"] == "finished"),
                      key=lambda r: int(r["seed"]))

    def accuracies(self, label):
        return [float(r["test_accuracy"]) for r in self._runs(label)]

    def histories(self, label):
        return [read_csv(self.folder / r["run_dir"] / "history.csv") for r in self._runs(label)]

    def metrics(self, label):
        return [json.loads((self.folder / r["run_dir"] / "metrics.json").read_text()) for r in self._runs(label)]

    def epochs(self, label):
        return [int(r["epochs"]) for r in self._runs(label)]

    def seconds(self, label):
        return [float(r["seconds"]) for r in self._runs(label)]


def compare(a, b):
    """(difference of means in points, its standard error in points, Welch's t, n of a, n of b)."""
    difference = statistics.mean(a) - statistics.mean(b)
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    return 100 * difference, 100 * se, difference / se, len(a), len(b)


def comparison(study, a, b):
    d, se, t, na, nb = compare(study.accuracies(a), study.accuracies(b))
    return f"{d:+.2f} points (SE {se:.2f}, t = {t:.1f}, n = {na} and {nb})"


def first_crossing(history):
    """The first epoch whose training loss is below its validation loss, and whether a later epoch
    has it above again (None, False if it never drops below)."""
    below = [float(h["train_loss"]) < float(h["val_loss"]) for h in history]
    if True not in below:
        return None, False
    first = below.index(True)
    return first + 1, not all(below[first:])


def lowest_val_loss_epoch(history):
    losses = [float(h["val_loss"]) for h in history]
    return losses.index(min(losses)) + 1


def patience_stop(history, k=5):
    """The epoch at which patience (no new lowest validation loss for ``k`` epochs) stops on ``history``,
    or None if it never does. A run under another rule with the same seed has the same epochs up to
    its own stop, so an overfit run's history also shows where its patience twin stops."""
    losses = [float(h["val_loss"]) for h in history]
    for end in range(k + 1, len(losses) + 1):
        if end - 1 - losses.index(min(losses[:end])) >= k:
            return end
    return None


def patience_windows_spanning(histories, epoch, ks=range(1, 31)):
    """The patience windows k whose stops on these histories (one per seed) have ``epoch`` between their
    lowest and highest, each with its stops (None: no stop within the history). A history with no stop
    counts as stopping after its end, which lies past ``epoch`` when the history is at least ``epoch``
    long; if one is shorter, the answer is unknown: None."""
    if any(len(h) < epoch for h in histories):
        return None
    windows = {}
    for k in ks:
        stops = [patience_stop(h, k) for h in histories]
        known = [math.inf if stop is None else stop for stop in stops]
        if min(known) <= epoch <= max(known):
            windows[k] = stops
    return windows


def windows_text(windows, histories):
    """Each window k with where it stops the seeds, a stop past a history's end printed as >end."""
    if windows is None:
        return "unknown (an overfit run stopped before that epoch)"
    return "; ".join(f"k = {k}: " + " ".join(str(stop) if stop else f">{len(h)}" for stop, h in zip(stops, histories))
                     for k, stops in windows.items()) or "none"


def span(values, unit=""):
    return f"{min(values)}{unit} to {max(values)}{unit}" if min(values) != max(values) else f"{min(values)}{unit}"


def architecture(results, say):
    s = Study(results / "architecture")
    b8 = "hidden {}, batch_size 8, epochs 100"
    b64 = "hidden {}, batch_size 64, epochs 200"
    say("3", "1600-400-200 against 800-800, batch 8", comparison(s, b8.format("1600-400-200"), b8.format("800-800")))
    say("3", "800-200-100 against 800-800, batch 8", comparison(s, b8.format("800-200-100"), b8.format("800-800")))
    say("3", "400-100-50 against 400-400, batch 8", comparison(s, b8.format("400-100-50"), b8.format("400-400")))
    say("3", "400-100-50 against 200-200, batch 8", comparison(s, b8.format("400-100-50"), b8.format("200-200")))
    say("3", "100-100-100-100 against 100-100-100, batch 8",
        comparison(s, b8.format("100-100-100-100"), b8.format("100-100-100")))
    say("3", "100-100-100-100 against 100-100, batch 8",
        comparison(s, b8.format("100-100-100-100"), b8.format("100-100")))
    say("3", "100-100-100 against 100-100, batch 8", comparison(s, b8.format("100-100-100"), b8.format("100-100")))
    say("3", "100-100-100-100 against 200-200, batch 8",
        comparison(s, b8.format("100-100-100-100"), b8.format("200-200")))
    widths = ["100-100", "200-200", "400-400", "800-800"]
    for narrow, wide in zip(widths, widths[1:]):
        say("3", f"{wide} against {narrow}, batch 8", comparison(s, b8.format(wide), b8.format(narrow)))
    for hidden in ("400-100-50", "800-200-100", "1600-400-200"):
        say("3", f"{hidden}: batch 8 (100 epochs) against batch 64 (200 epochs)",
            comparison(s, b8.format(hidden), b64.format(hidden)))
    ratio = statistics.mean(s.seconds(b8.format("800-200-100"))) / statistics.mean(s.seconds(b8.format("800-800")))
    say("3", "s/run of 800-200-100 over 800-800, batch 8", f"{ratio:.2f}")
    ratio = statistics.mean(s.seconds(b8.format("1600-400-200"))) / statistics.mean(s.seconds(b8.format("800-800")))
    say("3", "s/run of 1600-400-200 over 800-800, batch 8", f"{ratio:.2f}")
    for hidden in ("100-100", "100-100-100", "100-100-100-100", "400-100-50", "800-200-100", "1600-400-200",
                   "800-800"):
        epochs = [lowest_val_loss_epoch(h) for h in s.histories(b8.format(hidden))]
        say("4", f"lowest validation loss, epoch, {hidden} at batch 8 (architecture)", span(epochs))


def batch_size(results, say):
    s = Study(results / "batch_size")
    epochs = [lowest_val_loss_epoch(h) for h in s.histories("batch_size 4")]
    say("4", "lowest validation loss, epoch, 100-100 at batch 4 (batch_size)", span(epochs))
    epochs = [lowest_val_loss_epoch(h) for h in s.histories("batch_size 32")]
    say("4", "lowest validation loss, epoch, 100-100 at batch 32 (batch_size)", span(epochs))


def init(results, say):
    s = Study(results / "init")
    seconds = [x for label in s.table for x in s.seconds(label)]
    say("intro", "init study, seconds per run", f"{min(seconds):.0f} to {max(seconds):.0f} s")


def stopping(results, say):
    s = Study(results / "stopping")
    latest = []
    for label in s.table:
        crossings = [first_crossing(h) for h in s.histories(label)]
        firsts = [c[0] for c in crossings]
        back = sum(c[1] for c in crossings)
        say("4", f"first epoch with training loss below validation loss, {label} (seeds 0-4)",
            " ".join(str(f) for f in firsts) + f"; runs where it later rises above again: {back}")
        latest.append(sorted(range(len(firsts)), key=lambda i: firsts[i])[-2:])  # the two latest seeds
    say("4", "seeds with the two latest first crossings, per configuration", " ".join(
        "/".join(map(str, sorted(seeds))) for seeds in latest))
    for label in ("hidden 100-100, stop early", "hidden 800-800, stop early"):
        say("4", f"stop epochs, {label}", " ".join(map(str, s.epochs(label))))
    for label in ("hidden 100-100, stop none", "hidden 800-800, stop none"):
        epochs = [lowest_val_loss_epoch(h) for h in s.histories(label)]
        say("4", f"lowest validation loss, epoch, {label}", span(epochs))
        say("4", f"{label.replace('none', 'early')} against {label}",
            comparison(s, label.replace("none", "early"), label))

    fast = Study(results / "stopping_fast")
    for hidden in ("800-800", "100-100"):
        say("4b", f"{hidden}: patience against early",
            comparison(fast, f"hidden {hidden}, stop patience", f"hidden {hidden}, stop early"))
        say("4b", f"{hidden}: patience against none",
            comparison(fast, f"hidden {hidden}, stop patience", f"hidden {hidden}, stop none"))
        epochs = [lowest_val_loss_epoch(h) for h in fast.histories(f"hidden {hidden}, stop none")]
        say("4b", f"lowest validation loss, epoch, {hidden} stop none", span(epochs))
        say("4b", f"stop epochs, {hidden} patience", " ".join(map(str, fast.epochs(f"hidden {hidden}, stop patience"))))
        say("4b", f"stop epochs, {hidden} early", " ".join(map(str, fast.epochs(f"hidden {hidden}, stop early"))))


def fine_tuning(results, say):
    s = Study(results / "fine_tuning")
    for batch in (8, 32, 64):
        epochs = [e for hidden in ("800-800", "100-100") for e in s.epochs(f"hidden {hidden}, batch_size {batch}")]
        say("5", f"early-rule stop epochs at batch {batch} (both networks)", span(epochs))
    for label in s.table:
        say("5", f"stop epochs, {label}", " ".join(map(str, s.epochs(label))))
    crossings = [first_crossing(h) for label in s.table for h in s.histories(label)]
    say("5", "first epoch with training loss below validation loss, all 30 runs",
        span([c[0] for c in crossings]) + f"; runs where it later rises above again: {sum(c[1] for c in crossings)}")


def augmentation(results, say):
    s = Study(results / "augmentation")
    row = "augment {}, augment_mode online"
    none = row.format("none")
    for name in ("noise", "blur", "squares", "elastic", "shift", "rotate", "zoom,rotate,shear,shift,elastic"):
        say("6", f"{name} against none", comparison(s, row.format(name), none))
    say("6", "elastic against shift", comparison(s, row.format("elastic"), row.format("shift")))
    offline = "augment zoom,rotate,blur,squares, augment_mode offline"
    say("6", "offline composed copies against none", comparison(s, offline, none))
    base = statistics.mean(s.seconds(none))
    for name in ("elastic", "shift"):
        extra = statistics.mean(s.seconds(row.format(name))) / base - 1
        say("6", f"s/run of {name} over none", f"{100 * extra:+.0f}%")
    extra = statistics.mean(s.seconds(offline)) / base
    say("6", "s/run of offline composed copies over none", f"{extra:.1f} times")


def best(results, say):
    single = results / "best-single"
    for name in ("a-800x2-aff-el-60", "c-1200x2-aff-el-60"):
        metrics = json.loads((single / name / "metrics.json").read_text())
        say("7", f"{name}: test and validation accuracy",
            f"{100 * metrics['test_accuracy']:.2f}% test, {100 * metrics['val_accuracy']:.2f}% validation")
    s = Study(results / "best")
    metrics = s.metrics("base")
    say("7", "best, validation accuracy per seed", " ".join(f"{100 * m['val_accuracy']:.2f}" for m in metrics))


# The report's fine-tuned runs: (hidden, batch) -> its stop epoch, where its text names one (one run each)
REPORT_STOPS = {("800-800", 8): 44, ("800-800", 32): 153, ("100-100", 8): 98}


def against_report(values, report):
    """A one-sample comparison of our seeds with the report's single figure: the difference of the mean,
    its standard error and t (None where fewer than 2 seeds)."""
    if len(values) < 2:
        return f"mean {statistics.mean(values):.1f} (n = {len(values)})"
    d = statistics.mean(values) - report
    se = statistics.stdev(values) / math.sqrt(len(values))
    return f"{d:+.2f} (SE {se:.2f}, t = {d / se if se else float('inf'):.1f}, n = {len(values)})"


def fine_tuning_readings(results, say):
    """Section 5b: which reading of the report's "five consecutive steps" gives its stop epochs and
    accuracies: today's early rule (results/fine_tuning) beside overfit and patience."""
    readings = results / "fine_tuning_readings"
    if not (readings / "table.csv").is_file():
        return
    early, other = Study(results / "fine_tuning"), Study(readings)
    for hidden in ("800-800", "100-100"):
        for batch in (8, 32, 64):
            overfit_histories = None
            labels = {"early": (early, f"hidden {hidden}, batch_size {batch}")}
            labels.update({stop: (other, f"hidden {hidden}, batch_size {batch}, stop {stop}")
                           for stop in ("overfit", "patience")})
            report_acc = float(early.table[labels["early"][1]]["report"])
            for stop, (study, label) in labels.items():
                if label not in study.table or not study.epochs(label):
                    continue
                epochs, accuracies = study.epochs(label), study.accuracies(label)
                what = f"{hidden} batch {batch}, {stop}"
                say("5b", f"{what}: stop epochs", " ".join(map(str, epochs)))
                if stop == "overfit":
                    overfit_histories = study.histories(label)
                    say("5b", f"{what}: where patience would stop on these histories",
                        " ".join(str(patience_stop(h)) for h in overfit_histories))
                say("5b", f"{what}: test accuracy against the report's {100 * report_acc:.2f}%, points",
                    against_report([100 * a for a in accuracies], 100 * report_acc))
                if (hidden, batch) in REPORT_STOPS:
                    say("5b", f"{what}: stop epoch against the report's {REPORT_STOPS[hidden, batch]}",
                        against_report(epochs, REPORT_STOPS[hidden, batch]))
            if (hidden, batch) not in REPORT_STOPS:
                continue
            report_stop = REPORT_STOPS[hidden, batch]
            spans = {stop: study.epochs(label) for stop, (study, label) in labels.items() if label in study.table}
            if len(spans) == 3 and all(len(epochs) == 5 for epochs in spans.values()):
                holding = [stop for stop, epochs in spans.items() if min(epochs) <= report_stop <= max(epochs)]
                say("5b", f"{hidden} batch {batch}: readings whose 5 stop epochs span the report's {report_stop}",
                    (", ".join(holding) or "none") + " ("
                    + "; ".join(f"{stop} {span(epochs)}" for stop, epochs in spans.items()) + ")")
            if len(spans.get("overfit", [])) == 5:
                say("5b", f"{hidden} batch {batch}: patience's k (1 to 30) whose stops on the overfit histories "
                    f"span the report's {report_stop}",
                    windows_text(patience_windows_spanning(overfit_histories, report_stop), overfit_histories))


def augmentation_student(results, say):
    """Section 6b: the report's augmentation with the report's learner, one copy per transform or composed."""
    folder = results / "augmentation_student"
    if not (folder / "table.csv").is_file():
        return
    s = Study(folder)
    for label in s.table:
        if not s.epochs(label):
            continue
        report = float(s.table[label]["report"])
        say("6b", f"{label}: stop epochs", " ".join(map(str, s.epochs(label))))
        say("6b", f"{label}: test accuracy against the report's {100 * report:.2f}%, points",
            against_report([100 * a for a in s.accuracies(label)], 100 * report))
        say("6b", f"{label}: stop epoch against the report's 36", against_report(s.epochs(label), 36))
        crossings = [first_crossing(h)[0] for h in s.histories(label)]
        say("6b", f"{label}: first epoch with training loss below validation loss", " ".join(map(str, crossings)))
    labels = [label for label in s.table if len(s.epochs(label)) >= 2]
    if len(labels) == 2:
        say("6b", f"{labels[0]} against {labels[1]}", comparison(s, *labels))


def cnn(results, say):
    study = results / "cnn"
    if (study / "table.csv").is_file():
        s, best = Study(study), Study(results / "best")
        recipe = "best recipe: batch-norm CNN, Adam, affine, 30 epochs"
        if len(s.accuracies(recipe)) > 1:
            a, b = s.accuracies(recipe), best.accuracies("base")
            d, se, t, na, nb = compare(a, b)
            say("9", "best recipe against the best MLP (results/best)",
                f"{d:+.2f} points (SE {se:.2f}, t = {t:.1f}, n = {na} and {nb})")
            for other in ("PyTorch's examples net, 14 epochs", "LeNet-5-like, 20 epochs"):
                if len(s.accuracies(other)) > 1:
                    say("9", f"best recipe against {other}", comparison(s, recipe, other))
    recipe = results / "cnn_recipe"
    if not (recipe / "table.csv").is_file():
        return
    s = Study(recipe)
    for label in s.table:
        history = s.histories(label)[0]
        say("9", f"cnn_recipe, {label}: validation accuracy at the last epoch, and its best",
            f"{100 * float(history[-1]['val_accuracy']):.2f}% (epoch {history[-1]['epoch']}), "
            f"best {100 * max(float(h['val_accuracy']) for h in history):.2f}%")
        say("9", f"cnn_recipe, {label}: seconds of training, seconds an epoch (median)",
            f"{s.seconds(label)[0]:.0f} s, {statistics.median(float(h['seconds']) for h in history):.0f} s")


def main(results=Path("results")):
    results = Path(results)

    def say(section, what, figure):
        print(f"{section} | {what} | {figure}")

    for part in (init, architecture, batch_size, stopping, fine_tuning, fine_tuning_readings, augmentation,
                 augmentation_student, best, cnn):
        part(results, say)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("results"))
