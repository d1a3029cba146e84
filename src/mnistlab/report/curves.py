"""Learning curves of one or more runs: loss and accuracy per epoch, training solid, validation dashed.

``curves_figure(runs)`` draws ``records.Run`` objects on shared axes, one colour per run, the legend
naming what differs between their configs and each run's stop reason; the stop epoch is marked with
a dotted line (a cross for a diverged run). ``write_curves(run_dir, out_path)`` redraws one run's
PNG atomically, so ``mnistlab train --plot`` can call it after every epoch.
"""

import math
import textwrap

from .figures import log_scale, new_figure, save_figure
from .records import config_differences, read_run


def finite_points(epochs, values):
    """(epochs, values) without the nan/inf entries (an empty validation column, a diverged epoch)."""
    pairs = [(e, v) for e, v in zip(epochs, values) if math.isfinite(v)]
    return [e for e, _ in pairs], [v for _, v in pairs]


def curves_figure(runs, title=None):
    """Two panels (loss, accuracy in %) for a list of ``Run``; returns the Figure.

    Lines carry a gid ``"<panel>:<train|val>:<i>"`` (i = the run's index) and stop markers
    ``"stop:<i>"``, so a caller (or a test) can find what was drawn.
    """
    from matplotlib.lines import Line2D

    # Fixed margins rather than constrained layout: this figure is redrawn after every epoch of a
    # watched run, and the layout solver was half of its cost.
    marked = any(r.diverged for r in runs) + any(r.metrics.get("best_epoch") for r in runs)
    legend_height = 0.35 + 0.19 * (len(runs) + marked)
    height = 3.9 + legend_height
    figure = new_figure(11, height, layout=None)
    loss_ax, acc_ax = figure.subplots(1, 2, gridspec_kw=dict(
        left=0.07, right=0.985, top=1 - 0.65 / height, bottom=(legend_height + 0.55) / height, wspace=0.2))
    handles, marks = [], {}
    labels = config_differences(runs)
    colors = [f"C{i % 10}" for i in range(len(runs))]
    for i, (run, label, color) in enumerate(zip(runs, labels, colors)):
        epochs = run.epochs
        handles.append(Line2D([], [], color=color, marker=".", label=textwrap.shorten(
            f"{label}: {run.stop_reason}" if label else run.stop_reason, 150, placeholder=" ...")))
        for ax, key, scale in ((loss_ax, "loss", 1), (acc_ax, "accuracy", 100)):
            for part, style in (("train", "-"), ("val", "--")):
                xs, ys = finite_points(epochs, run.history[f"{part}_{key}"])
                if not xs:
                    continue
                ax.plot(xs, [y * scale for y in ys], style, color=color, marker="." if len(xs) < 30 else None,
                        gid=f"{key}:{part}:{i}")
            stop = run.stop_epoch
            if run.metrics:  # a run still training has no stop epoch yet
                ax.axvline(stop, color=color, linestyle=":", linewidth=1, gid=f"stop:{i}")
            if run.diverged:
                last = finite_points(epochs, run.history[f"train_{key}"])[1]
                if last:
                    ax.plot([stop], [scale * last[-1]], "x", color=color, markersize=10, mew=2,
                            gid=f"diverged:{i}")
        if run.metrics.get("best_epoch") and run.metrics["best_epoch"] != run.stop_epoch:
            best = run.metrics["best_epoch"]
            acc = run.history["val_accuracy"][best - 1]
            if math.isfinite(acc):
                acc_ax.plot([best], [100 * acc], "*", color=color, markersize=12, gid=f"best:{i}")
                marks["best"] = Line2D([], [], color="gray", marker="*", markersize=10, linestyle="none",
                                       label="best validation epoch (its weights were kept)")
        if run.diverged:
            marks["diverged"] = Line2D([], [], color="gray", marker="x", markersize=8, mew=2, linestyle="none",
                                       label="diverged (loss became NaN or infinite in the next epoch)")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss (solid: training, dashed: validation)")
    losses = _values(loss_ax, "loss")
    if losses and all(v > 0 for v in losses):
        log_scale(loss_ax)
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy (solid: training, dashed: validation)")
    for ax in (loss_ax, acc_ax):
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    # Below the panels, so it never covers a curve however many runs there are.
    figure.legend(handles=handles + list(marks.values()), loc="lower center", bbox_to_anchor=(0.5, 0.01),
                  fontsize="small",
                  title="dotted line: the epoch each run stopped", title_fontsize="small")
    figure.suptitle(title or (str(runs[0].path) if len(runs) == 1 else f"{len(runs)} runs"))
    return figure


def _values(ax, key):
    return [v for ln in ax.get_lines() if (ln.get_gid() or "").startswith(key + ":") for v in ln.get_ydata()]


def runs_figure(run_dirs, title=None, warn=None):
    """Read the run folders (InputError on a bad one) and draw them. ``warn(message)`` is told of every
    run with epochs that have no finite value to draw (a diverged or damaged history)."""
    runs = [read_run(d) for d in run_dirs]
    for run in runs:
        message = unplottable(run)
        if message and warn:
            warn(message)
    return curves_figure(runs, title)


HISTORY_COLUMNS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


def unplottable(run):
    """'RUN: no finite ... at epochs 1-3 ...' when some epoch's training loss or accuracy is NaN or
    infinite (a validation column left empty by --val-fraction 0 is not a fault), else None."""
    epochs = run.epochs
    bad = sorted({e for key in ("train_loss", "train_accuracy")
                  for e, v in zip(epochs, run.history.get(key, [])) if not math.isfinite(v)})
    if not bad:
        return None
    drawable = any(math.isfinite(v) for key in HISTORY_COLUMNS for v in run.history.get(key, []))
    what = "only the finite values are drawn" if drawable else "nothing finite to draw: the axes are empty"
    return f"{run.path}: the training loss or accuracy is NaN or infinite at {_epochs_text(bad)}; {what}"


def _epochs_text(epochs):
    """[1, 2, 3, 7] -> 'epochs 1-3, 7'."""
    spans = []
    for e in epochs:
        if spans and e == spans[-1][1] + 1:
            spans[-1][1] = e
        else:
            spans.append([e, e])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)
    return ("epoch " if len(epochs) == 1 else "epochs ") + text


def write_curves(run_dir, out_path, format=None):
    """Redraw ``run_dir``'s learning curves into ``out_path`` atomically; works while the run is training."""
    figure = curves_figure([read_run(run_dir, need_metrics=False)])
    return save_figure(figure, out_path, format)
