"""The ``plot`` and ``report`` commands: parse, call one library function per figure, print what was written.

``add_commands(commands)`` adds both to mnistlab's sub-command parser; ``mnistlab.cli``
calls it lazily so matplotlib is imported only when one of them runs.
"""

import sys
from pathlib import Path

from ..errors import InputError, require_module
from ..files import missing_folders
from .figures import FORMATS, image_format

DEFAULT_WEIGHTS = Path("runs/default/model.safetensors")


def add_commands(commands):
    """Add ``plot`` and ``report`` to ``commands``, an argparse sub-parsers action (whose ``parser_class``,
    mnistlab's one-line-error parser, the new parsers take)."""
    plot = commands.add_parser(
        "plot", help="draw learning curves, a study's figures or a model's confusion and mistakes",
        description="RUN_DIR ...: loss and accuracy per epoch, the runs on shared axes. "
                    "A study folder (results/<study>/): accuracy per configuration and learning-curve bands. "
                    "--weights: confusion matrix, most confident mistakes, first-layer weights.")
    plot.add_argument("folders", nargs="*", metavar="RUN_DIR|STUDY_DIR", help="run folders, or one study folder")
    plot.add_argument("--out", metavar="PATH",
                      help="runs: the image file (default: RUN_DIR/curves.png for one run, curves.png for "
                           "several); a study or --weights: the folder for the images (default: the study's "
                           "folder, the weights file's folder)")
    plot.add_argument("--format", choices=FORMATS, help="image format (default: --out's suffix, else png)")
    plot.add_argument("--weights", metavar="FILE",
                      help="a model.safetensors file, a run folder or pretrained (the shipped model): draw the "
                           "model's figures")
    plot.add_argument("--data", metavar="FILE",
                      help="with --weights: the labelled test set (CSV, IDX or folder; default: bundled MNIST)")
    plot.set_defaults(func=cmd_plot)

    report = commands.add_parser(
        "report", help="write one self-contained HTML page of every study and the default model",
        description="Every study folder in RESULTS_DIR (tables and figures, the report's numbers beside ours) "
                    "and a model's confusion matrix and mistakes, as one HTML file with its images embedded.")
    report.add_argument("results", metavar="RESULTS_DIR", help="folder of study folders (e.g. results/)")
    report.add_argument("--out", metavar="FILE", default="docs/report.html", help="default: docs/report.html")
    report.add_argument("--weights", metavar="FILE",
                        help="model for the confusion matrix and mistakes: a model file, a run folder or pretrained "
                             f"(the shipped model; default: {DEFAULT_WEIGHTS} if present)")
    report.add_argument("--data", metavar="FILE", help="test set for --weights (default: bundled MNIST)")
    report.add_argument("--studies", metavar="NAME,...", type=names,
                        help="the study folders to show, in this order (default: every one, sorted by name)")
    report.set_defaults(func=cmd_report)


def cmd_plot(args):
    from .figures import save_figure
    from .records import is_study

    require_module("mnistlab plot", "matplotlib")
    ext = args.format or "png"  # for files named here; an --out file's own suffix is kept
    if args.weights:
        if args.folders:
            raise InputError("plot: give either --weights or folders, not both")
        from .model import confusion_figure, feature_maps_figure, mistakes_figure, predict_set, weights_figure
        folder = Path(args.out) if args.out else Path(args.weights).parent
        p = predict_set(args.weights, args.data)
        figures = [("confusion", confusion_figure), ("mistakes", mistakes_figure)]
        if p.draws_weights:
            figures.append(("first-layer", weights_figure))
        if p.convolutional:
            figures.append(("feature-maps", feature_maps_figure))
        written = [save_figure(draw(p), folder / f"{name}.{ext}", ext) for name, draw in figures]
        print(f"accuracy {100 * p.accuracy:.2f}% on {len(p.labels)} images")
    elif not args.folders:
        raise InputError("plot: give run folders, one study folder, or --weights FILE")
    elif any(is_study(f) for f in args.folders):
        if len(args.folders) > 1:
            raise InputError(f"plot: {args.folders[0]}: a study folder is plotted on its own")
        from .records import load_histories, read_study
        from .study import accuracy_figure, curves_band_figure
        study = load_histories(read_study(args.folders[0]))
        folder = Path(args.out) if args.out else study.path
        written = [save_figure(accuracy_figure(study), folder / f"accuracy.{ext}", ext),
                   save_figure(curves_band_figure(study), folder / f"curves.{ext}", ext)]
    else:
        from .curves import runs_figure
        default = Path(args.folders[0]) / f"curves.{ext}" if len(args.folders) == 1 else Path(f"curves.{ext}")
        out = output_file(args.out, "--out", ".png") if args.out else default
        image_format(out, args.format)  # before drawing: a bad name costs nothing
        created = missing_folders(out)
        warnings = []
        written = [save_figure(runs_figure(args.folders, warn=warnings.append), out, args.format)]
        for warning in warnings:
            print(f"mnistlab: warning: {warning}", file=sys.stderr)
        print(f"wrote {out}" + created_note(created))
        return 0
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def output_file(text, flag, suffix):
    """``--out`` naming a file: a name ending in '/' or an existing folder is refused in one line."""
    if text.endswith(("/", "\\")) or Path(text).is_dir():
        raise InputError(f"{flag} {text}: is a folder; give a file name (e.g. {Path(text) / ('out' + suffix)})")
    return Path(text)


def created_note(folders):
    """' (created folder a/, a/b/)' for the folders writing a file made, else ''."""
    if not folders:
        return ""
    return f" (created folder{'s' if len(folders) > 1 else ''} {', '.join(f'{f}/' for f in folders)})"


def cmd_report(args):
    from .html import write_report

    require_module("mnistlab report", "matplotlib")
    out = output_file(args.out, "--out", ".html")
    created = missing_folders(out)
    weights = args.weights or (DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.is_file() else None)
    out = write_report(args.results, out, weights, args.data, args.studies)
    print(f"wrote {out}" + created_note(created)
          + ("" if weights else f" (no model section: {DEFAULT_WEIGHTS} not found; use --weights)"))
    return 0


def names(text):
    """``--studies a,b``: the names, in order (argparse turns the ValueError into one line and exit 2)."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise ValueError(text)
    return parts
