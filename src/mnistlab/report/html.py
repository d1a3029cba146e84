"""One self-contained HTML page of every study's table and figures and a model's confusion and mistakes.

``build_report(results_dir, weights, data)`` returns the page as text: images are embedded as
``data:image/png;base64`` URIs and the style is inline, so the file opens anywhere with no other
asset and no network. ``write_report`` writes it atomically.
"""

import base64
import html
import math
from pathlib import Path

from ..errors import InputError
from ..files import write_text
from .figures import png_bytes
from .records import find_studies, has_no_runs, load_histories, read_study

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 1rem 0; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; vertical-align: top; }
td { white-space: nowrap; } td.text { white-space: normal; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; }
td.worse { color: #b00; } td.better { color: #070; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #555; } .note { color: #555; font-size: 0.9rem; }
"""


def image(figure, alt, caption):
    data = base64.b64encode(png_bytes(figure)).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def percent(value, digits=2):
    return f"{100 * value:.{digits}f}%" if value is not None and math.isfinite(value) else ""


def study_table(study):
    """The table.csv rows as an HTML table: ours (mean ± std, each repeat) beside the report's number."""
    head = ["configuration", "repeats", "finished", "diverged", "failed", "ours: mean ± std", "each repeat",
            "report", "ours − report", "epochs", "stopped by", "seconds"]
    lines = ["<table><thead><tr>" + "".join(
        f'<th class="{"text" if h in ("configuration", "stopped by") else ""}">{html.escape(h)}</th>' for h in head)
        + "</tr></thead><tbody>"]
    for row in study.table:
        ours = percent(row["mean"]) + (f" ± {100 * row['std']:.2f}" if math.isfinite(row["std"]) else "")
        repeats = " ".join(f"{100 * float(a):.2f}" for a in row["accuracies"].split() if _is_number(a))
        report = percent(row["report_value"]) if row["report_value"] is not None else row.get("report", "")
        diff = row["difference"]
        diff_class = "" if not math.isfinite(diff) else ("better" if diff >= 0 else "worse")
        diff_text = f"{diff:+.2f} pp" if math.isfinite(diff) else ""
        cells = [("text", row.get("label") or row["config"]), ("", row["repeats"]), ("", row["finished"]),
                 ("", row["diverged"]), ("", row["failed"]), ("", ours or "no accuracy"), ("", repeats),
                 ("", report), (diff_class, diff_text), ("", row.get("epochs_mean", "")),
                 ("text", row.get("stop_reasons", "")), ("", row.get("seconds_mean", ""))]
        lines.append("<tr>" + "".join(f'<td class="{c}">{html.escape(str(v))}</td>' for c, v in cells) + "</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def study_section(study):
    from .study import accuracy_figure, curves_band_figure

    anchor = html.escape(study.path.name, quote=True)
    parts = [f'<h2 id="{anchor}">{html.escape(study.title)}</h2>']
    details = f"Varied: {', '.join(study.varied)}." if study.varied else ""
    if study.base:
        details += " Every other setting as in: " + ", ".join(f"{k} = {v}" for k, v in study.base.items()) + "."
    parts.append(f'<p class="note">{html.escape(details)} Folder: {html.escape(str(study.path))}.</p>')
    parts.append(study_table(study))
    failures = [f"{r['config']} seed {r['seed']}: {r.get('error') or 'no message'}"
                for r in study.runs if r["status"] == "failed"]
    if failures:
        parts.append('<p class="note">Failed runs: ' + html.escape("; ".join(failures)) + "</p>")
    parts.append(image(accuracy_figure(study), f"{study.title}: test accuracy per configuration",
                       "Test accuracy per configuration: dots are repeats, the diamond and bar mean ± std, "
                       "the red bar the student report's number; crosses at the left are diverged repeats."))
    if study.histories:
        parts.append(image(curves_band_figure(study), f"{study.title}: learning curves",
                           "Learning curves per configuration: mean over finished repeats, band ± one std."))
    return "\n".join(parts)


def model_section(weights, data=None):
    from ..inference import PRETRAINED
    from .model import confusion_figure, feature_maps_figure, mistakes_figure, predict_set, weights_figure

    p = predict_set(weights, data)
    heading = (f"The model shipped with mnistlab ({PRETRAINED})" if str(weights) == PRETRAINED
               else f"The model in {weights}")
    parts = [f'<h2 id="model">{html.escape(heading)}</h2>',
             f'<p class="note">A {html.escape(p.architecture)} network: {100 * p.accuracy:.2f}% of '
             f'{len(p.labels):,} test images correct.</p>',
             image(confusion_figure(p), "confusion matrix", "Confusion matrix on the test set (counts)."),
             image(mistakes_figure(p), "most confident mistakes",
                   "The test images the model got wrong with the most confidence: true digit, prediction, "
                   "and the probability it gave its prediction.")]
    if p.convolutional:
        parts.append(image(weights_figure(p), "first-layer filters",
                           "What the first conv layer looks for: each filter's weights as a small image."))
        parts.append(image(feature_maps_figure(p), "feature maps",
                           "One test digit through the network's image layers: the first channels of each."))
    elif p.draws_weights:
        parts.append(image(weights_figure(p), "first-layer weights",
                           "What the first hidden units look for: each unit's 784 input weights as a 28x28 image."))
    return "\n".join(parts)


def build_report(results_dir, weights=None, data=None, title="mnistlab results", study_names=None):
    """The report page as text. ``weights``: a model for the confusion/mistakes section, or None;
    ``study_names``: the study folders to show, in that order (default: every one, sorted)."""
    folders = find_studies(results_dir)
    if study_names:
        by_name = {folder.name: folder for folder in folders}
        unknown = [name for name in study_names if name not in by_name]
        if unknown:
            raise InputError(f"--studies: {unknown[0]!r} is not a study folder in {results_dir} "
                             f"(there: {', '.join(by_name) or 'none'})")
        folders = [by_name[name] for name in dict.fromkeys(study_names)]
    waiting = [folder for folder in folders if has_no_runs(folder)]  # a sweep whose first runs are still going
    studies = [load_histories(read_study(folder)) for folder in folders if folder not in waiting]
    if not studies and not weights:
        if waiting:
            raise InputError(f"{results_dir}: no run has ended yet in {', '.join(f.name for f in waiting)}, "
                             "and no --weights")
        raise InputError(f"{results_dir}: no study folders (with runs.csv and table.csv) and no --weights")
    contents = "".join(f'<li><a href="#{html.escape(s.path.name, quote=True)}">{html.escape(s.title)}</a></li>'
                       for s in studies)
    if weights:
        contents += '<li><a href="#model">The model: confusion matrix and mistakes</a></li>'
    body = [f"<h1>{html.escape(title)}</h1>",
            f'<p class="note">Generated by <code>mnistlab report</code> from {html.escape(str(results_dir))}: '
            f"{len(studies)} {'study' if len(studies) == 1 else 'studies'}. Accuracies are on the test set; "
            "“report” is the number the student report gave, “ours − report” the difference in percentage "
            "points.</p>",
            f"<ul>{contents}</ul>"]
    if waiting:
        body.append(f'<p class="note">No run has ended yet in: '
                    f"{html.escape(', '.join(f.name for f in waiting))}.</p>")
    body += [study_section(s) for s in studies]
    if weights:
        body.append(model_section(weights, data))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(results_dir, out, weights=None, data=None, study_names=None):
    out = Path(out)
    write_text(out, build_report(results_dir, weights, data, study_names=study_names))
    return out
