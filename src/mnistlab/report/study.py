"""A study's figures: test accuracy per configuration, and each configuration's learning curves as a band.

``accuracy_figure(study)`` puts one row per configuration of table.csv: every repeat's test accuracy
as a dot, mean ± std as a black diamond with error bar, the student report's number as a red bar (its
text, such as "overflow", in the row's label), and diverged or failed repeats as crosses and squares
at the left edge. ``curves_band_figure(study)`` draws, per configuration, the mean validation loss and
accuracy over its finished repeats with a band of ± one standard deviation (beyond ten configurations
the colours repeat with dashed lines). Both take a ``records.Study`` (with ``load_histories`` applied
for the band figure) and return a matplotlib Figure.
"""

import math
import textwrap

import numpy as np

from .figures import log_scale, new_figure

def config_label(row, width=40):
    """A configuration's label for an axis: the table's human text, wrapped between its settings
    ("hidden 100-100, batch_size 8," then "epochs 100") rather than inside one."""
    text = row.get("label") or row["config"]
    lines = []
    for part in text.split(", "):
        if lines and len(lines[-1]) + len(part) + 2 <= width:
            lines[-1] += ", " + part
        else:
            if lines:
                lines[-1] += ","
            lines.extend(textwrap.wrap(part, width) or [part])
    return "\n".join(lines) or row["config"]


def accuracy_figure(study):
    """Test accuracy (%) per configuration; artists carry gids 'repeats', 'mean', 'report', 'diverged',
    'failed' so a caller can count what was drawn."""
    rows = study.table
    figure = new_figure(9, 1.6 + 0.55 * len(rows))
    ax = figure.subplots()
    ys = np.arange(len(rows))[::-1]  # first configuration at the top
    rng = np.random.default_rng(0)  # the jitter that keeps equal accuracies apart is the same every time
    points, crashed, failed = ([], []), [], []
    for y, row in zip(ys, rows):
        for run in study.runs_of(row["config"]):
            if run["status"] == "finished":
                points[0].append(100 * run["test_accuracy"])
                points[1].append(y + rng.uniform(-0.15, 0.15))
            else:
                (crashed if run["status"] == "diverged" else failed).append(y + rng.uniform(-0.15, 0.15))
    ax.scatter(*points, s=22, color="C0", alpha=0.7, zorder=3, gid="repeats", label="a repeat's test accuracy")
    finite = [(y, r) for y, r in zip(ys, rows) if math.isfinite(r["mean"])]
    if finite:
        std = [100 * r["std"] if math.isfinite(r["std"]) else 0.0 for _, r in finite]
        ax.errorbar([100 * r["mean"] for _, r in finite], [y for y, _ in finite], xerr=std, fmt="D", color="black",
                    markersize=6, capsize=4, zorder=4, gid="mean", label="mean ± std over repeats")
    reported = [(y, r["report_value"]) for y, r in zip(ys, rows) if r["report_value"] is not None]
    if reported:
        ax.scatter([100 * v for _, v in reported], [y for y, _ in reported], marker="|", s=500, linewidths=2.5,
                   color="C3", zorder=5, gid="report", label="the student report's number")
    edge = ax.get_yaxis_transform()  # x in axes fractions, y in data: the left edge, whatever the range
    if crashed:
        ax.scatter([0.02] * len(crashed), crashed, marker="x", s=50, linewidths=2, color="C3", transform=edge,
                   zorder=5, gid="diverged", label="diverged (no accuracy)")
    if failed:
        ax.scatter([0.05] * len(failed), failed, marker="s", s=30, color="gray", transform=edge, zorder=5,
                   gid="failed", label="failed (error)")
    ax.set_yticks(ys, [_tick(row) for row in rows], fontsize="small")
    ax.set_ylim(-0.6, len(rows) - 0.4)
    xmin, xmax = ax.get_xlim()
    ax.set_xlim(xmin - 0.08 * (xmax - xmin), xmax)  # room for the crosses at the left edge
    ax.set_xlabel("test accuracy (%)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(_wrapped(study.title))
    handles, labels = ax.get_legend_handles_labels()
    if reported:  # the bar as drawn is a row tall: too big for the legend
        from matplotlib.lines import Line2D
        handles[labels.index("the student report's number")] = Line2D(
            [], [], marker="|", markersize=12, mew=2.5, color="C3", linestyle="none")
    figure.legend(handles, labels, loc="outside lower center", ncols=3, fontsize="small")
    return figure


def _tick(row):
    mean = f"{100 * row['mean']:.2f} ± {100 * row['std']:.2f}%" if math.isfinite(row["mean"]) else "no accuracy"
    if not math.isfinite(row["std"]) and math.isfinite(row["mean"]):
        mean = f"{100 * row['mean']:.2f}%"
    counts = [f"{row[k]} {k}" for k in ("diverged", "failed") if str(row.get(k, "0")).strip() not in ("", "0")]
    reported = (row.get("report") or "").strip()  # the report's text where it has no number ("overflow")
    said = f"; report: {reported}" if reported and row["report_value"] is None else ""
    return f"{config_label(row)}\n{mean}" + (f" ({', '.join(counts)})" if counts else "") + said


def mean_std_by_epoch(series):
    """(epochs, mean, std) over runs' per-epoch values (lists of unequal length; nan ignored)."""
    longest = max((len(s) for s in series), default=0)
    epochs, means, stds = [], [], []
    for e in range(longest):
        values = [s[e] for s in series if e < len(s) and math.isfinite(s[e])]
        if values:
            epochs.append(e + 1)
            means.append(float(np.mean(values)))
            stds.append(float(np.std(values)))
    return np.array(epochs), np.array(means), np.array(stds)


def curves_band_figure(study):
    """Validation loss and accuracy per epoch, one band (mean ± std over finished repeats) per configuration.

    Falls back to the training columns when the runs have no validation set. Mean lines carry gids
    ``"band-loss:<i>"`` and ``"band-accuracy:<i>"`` (i = the configuration's row in table.csv).
    """
    import matplotlib

    rows = study.table
    figure = new_figure(11, 4.4 + 0.2 * len(rows))
    loss_ax, acc_ax = figure.subplots(1, 2)
    colors = matplotlib.colormaps["tab10"].colors  # beyond ten configurations, the colours repeat dashed
    styles = ("-", "--", ":", "-.")
    part = "val" if any(math.isfinite(v) for r in study.histories.values() for v in r.history["val_loss"]) \
        else "train"
    handles = []
    for i, row in enumerate(rows):
        color, style = colors[i % len(colors)], styles[i // len(colors) % len(styles)]
        runs = [study.histories[r["run_dir"]] for r in study.runs_of(row["config"])
                if r["status"] == "finished" and r["run_dir"] in study.histories]
        left_out = len(study.runs_of(row["config"])) - len(runs)
        for ax, key, scale in ((loss_ax, "loss", 1), (acc_ax, "accuracy", 100)):
            epochs, mean, std = mean_std_by_epoch([r.history[f"{part}_{key}"] for r in runs])
            if not len(epochs):
                continue
            ax.plot(epochs, scale * mean, color=color, linestyle=style, gid=f"band-{key}:{i}",
                    marker="." if len(epochs) < 30 else None)
            ax.fill_between(epochs, scale * (mean - std), scale * (mean + std), color=color, alpha=0.2, linewidth=0)
        note = f"{len(runs)} finished" + (f", {left_out} diverged/failed left out" if left_out else "")
        handles.append(matplotlib.lines.Line2D([], [], color=color, linestyle=style, linewidth=2,
                                               label=f"{row.get('label') or row['config']} ({note})"))
    what = "validation" if part == "val" else "training"
    loss_ax.set(xlabel="epoch", ylabel=f"{what} loss", title=f"{what.capitalize()} loss, mean ± std over repeats")
    acc_ax.set(xlabel="epoch", ylabel=f"{what} accuracy (%)",
               title=f"{what.capitalize()} accuracy, mean ± std over repeats")
    if all(v > 0 for ln in loss_ax.get_lines() for v in ln.get_ydata()) and loss_ax.get_lines():
        log_scale(loss_ax)
    for ax in (loss_ax, acc_ax):
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    figure.legend(handles=handles, loc="outside lower center", ncols=1 if len(rows) <= 6 else 2,
                  fontsize="small")
    figure.suptitle(_wrapped(study.title))
    return figure


def _wrapped(title, width=80):
    """A study's title in lines of at most ``width`` characters: a long one ran off the figure."""
    return "\n".join(textwrap.wrap(title, width)) or title
