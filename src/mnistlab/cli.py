"""The ``mnistlab`` command: a thin shell that parses flags, calls one library function, prints.

Bad input of any kind (a file, a flag, a config value) ends in one line on stderr and exit status 2.
"""

import argparse
import dataclasses
import json
import os
import sys
import time

from . import __version__
from .config import FIELDS, RunConfig, help_text, load_toml, to_toml, updated, validate
from .errors import InputError, require_module


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as for every other bad input
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_config_flags(parser):
    """One flag per RunConfig field: its name with dashes, its placeholder and help from the field."""
    group = parser.add_argument_group("run configuration (flags override --config)")
    for name, f in FIELDS.items():
        group.add_argument("--" + name.replace("_", "-"), dest=name, default=None,
                           metavar=f.metadata["metavar"], help=help_text(name))


def config_from_args(args):
    config = load_toml(args.config) if args.config else RunConfig()
    flags = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    return validate(updated(config, flags, "flag"), "flag")


def cmd_train(args):
    if args.print_config:
        print(to_toml(config_from_args(args), comments=True), end="")
        return 0
    from .run import replace_run, resume_run, start_run
    progress = not args.no_progress and sys.stderr.isatty()
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    after_epoch = None
    if args.plot:  # curves.png in the run folder, redrawn (atomically) after every epoch
        from .report import write_curves
        require_module("train --plot", "matplotlib")  # before training, not after its first epoch
        after_epoch = lambda out_dir: write_curves(out_dir, out_dir / "curves.png")  # noqa: E731
    if not args.resume:
        from .finetune import is_drawings_folder
        config = config_from_args(args)
        if is_drawings_folder(config.data):  # a folder of collected drawings: fine-tune on it
            return cmd_finetune(args, config)
    if args.resume:
        extra = [f"--{n.replace('_', '-')}" for n in FIELDS if getattr(args, n) is not None]
        extra += [flag for flag, value in (("--config", args.config), ("--out", args.out), ("--replace", args.replace))
                  if value]
        if extra:
            raise InputError(f"--resume {args.resume}: continues the run as configured; drop {', '.join(extra)}")
        result = resume_run(args.resume, progress, log, after_epoch)
    elif args.replace:
        if not args.out:
            raise InputError("--replace goes with --out RUN_DIR")
        result = replace_run(config_from_args(args), args.out, progress, log, after_epoch)
        if result.metrics["diverged"]:
            print(f"{result.metrics['stop_reason']}: no weights saved; {args.out} left as it was")
            return 1
    elif args.out:
        result = start_run(config_from_args(args), args.out, progress, log, after_epoch=after_epoch)
    else:  # a name of its own, never shared with a run started in the same second
        result = start_run(config_from_args(args), f"runs/{time.strftime('%Y%m%d-%H%M%S')}", progress, log,
                           unique=True, after_epoch=after_epoch)
    m = result.metrics
    if m["diverged"]:
        print(f"{m['stop_reason']}: no weights saved; history in {result.out_dir / 'history.csv'}")
        return 1
    print(f"stopped: {m['stop_reason']} after {m['epochs']} epochs, {m['seconds']:.1f} s training, "
          f"{m['wall_seconds']:.1f} s in all")
    print(f"test accuracy {100 * m['test_accuracy']:.2f}%")
    print(f"run folder {result.out_dir}: model.safetensors, history.csv, metrics.json, config.toml")
    return 0


def cmd_finetune(args, config):
    from .finetune import describe_result, start_finetune
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    if args.out:
        result = start_finetune(config, args.out, log)
    else:
        result = start_finetune(config, f"runs/{time.strftime('%Y%m%d-%H%M%S')}", log, unique=True)
    print("\n".join(describe_result(result.metrics)))
    print(f"run folder {result.out_dir}: model.safetensors, history.csv, metrics.json, config.toml")
    return 0


def cmd_test(args):
    from .evaluate import evaluate_file, format_report
    result = evaluate_file(args.weights if len(args.weights) > 1 else args.weights[0], args.data)
    print(json.dumps(result) if args.json else format_report(result))
    return 0


def cmd_export_csv(args):
    from .data import export_csv, load_dataset
    paths = export_csv(load_dataset(args.data), args.folder)
    print("wrote " + " and ".join(str(p) for p in paths))
    return 0


def cmd_sweep(args):
    from .experiments import run_study
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"--jobs {args.jobs}: must be a positive integer")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads {args.threads}: must be a positive integer")
    if args.scheduler and args.backend != "dask":
        raise InputError("--scheduler goes with --backend dask")
    progress = not args.no_progress and sys.stderr.isatty()
    out, rows = run_study(args.study, args.out, args.jobs, args.backend, args.scheduler, args.quick, args.table,
                          progress, lambda msg: print(msg, flush=True), args.threads)
    print((out / "table.md").read_text(), end="")
    print(f"wrote {out / 'runs.csv'}, {out / 'table.csv'}, {out / 'table.md'}")
    return 1 if any(r["status"] in ("failed", "damaged") for r in rows) else 0


def cmd_augment_preview(args):
    from .build import augmentation
    from .data.preview import MAX_COUNT, preview
    from .files import missing_folders
    from .report.cli import created_note, output_file
    from .report.figures import image_format
    # Every argument checked before any work: a bad one costs nothing and writes nothing.
    if not 1 <= args.count <= MAX_COUNT:
        raise InputError(f"--count {args.count}: must be a whole number from 1 to {MAX_COUNT} (digits shown)")
    if args.seed < 0:
        raise InputError(f"--seed {args.seed}: must be a whole number, 0 or more")
    out = output_file(args.out, "--out", ".png")
    image_format(out)
    require_module("augment-preview", "matplotlib")
    config = load_toml(args.config) if args.config else RunConfig()
    strengths = augmentation(dataclasses.replace(config, augment="all"))  # every transform gets a column
    created = missing_folders(out)
    print(f"wrote {preview(out, augmentation=strengths, count=args.count, seed=args.seed)}{created_note(created)}")
    return 0


def build_parser():
    parser = Parser(prog="mnistlab", description="Backpropagation experiments on MNIST.")
    parser.add_argument("--version", action="version", version=f"mnistlab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    train = commands.add_parser("train", help="train a network and save its weights",
                                description="Train a network; writes a run folder.")
    train.add_argument("--config", metavar="PATH", help="run configuration file (keys as the flags, with _)")
    train.add_argument("--out", metavar="RUN_DIR", help="run folder (default: a new runs/<date-time>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    train.add_argument("--replace", action="store_true",
                       help="with --out: train anew even if RUN_DIR holds a run, and replace that run only once "
                            "this one has finished (make run does this)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--plot", action="store_true",
                       help="redraw RUN_DIR/curves.png after every epoch, to watch the run in an image viewer")
    train.add_argument("--print-config", action="store_true",
                       help="print the configuration (defaults, --config, flags) as TOML and exit")
    add_config_flags(train)
    train.set_defaults(func=cmd_train)

    test = commands.add_parser("test", help="test saved weights on a labelled set",
                               description="Accuracy, per-class precision/recall and confusion matrix.")
    test.add_argument("--weights", required=True, nargs="+", metavar="PATH",
                      help="a model.safetensors file, a run folder or pretrained (the model shipped with mnistlab); "
                           "several: their committee (the mean of their probabilities), each member's accuracy too")
    test.add_argument("--data", metavar="PATH",
                      help="CSV, IDX or IDX.gz images file, or a folder (its test set); default: bundled MNIST test set")
    test.add_argument("--json", action="store_true", help="print one JSON object")
    test.set_defaults(func=cmd_test)

    sweep = commands.add_parser(
        "sweep", help="run a study: configurations x seeds, side by side, resumable",
        description="Run every unfinished run of a study file (see experiments/), then write runs.csv, "
                    "table.csv and table.md. Rerunning skips finished runs and resumes interrupted ones.")
    sweep.add_argument("study", metavar="STUDY",
                       help="a study file, or the name of a shipped one (experiments/*.toml: the report's init, "
                            "batch_size, architecture, stopping, fine_tuning, augmentation; ours: best, cnn and more)")
    sweep.add_argument("--out", metavar="DIR", help="results folder (default: results/<study name>)")
    sweep.add_argument("--jobs", type=int, metavar="N", help="runs at once (default: every core)")
    sweep.add_argument("--threads", type=int, metavar="N",
                       help="BLAS threads per run (default: the cores shared out among the local runs at once, "
                            "so one each with the default --jobs; one on Dask)")
    sweep.add_argument("--backend", choices=("local", "dask"), default="local",
                       help="local worker processes, or a Dask cluster (default: local)")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (default with --backend dask: a LocalCluster)")
    sweep.add_argument("--quick", action="store_true",
                       help="smoke test: 2,000 training images, at most 2 epochs, 2 repeats (default out: results/<name>-quick)")
    sweep.add_argument("--table", action="store_true", help="only rebuild runs.csv and the tables from the run folders")
    sweep.add_argument("--no-progress", action="store_true", help="a line per run instead of a progress bar")
    sweep.set_defaults(func=cmd_sweep)

    data = commands.add_parser("data", help="dataset tools")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    export = data_commands.add_parser("export-csv", help="write mnist_train.csv and mnist_test.csv")
    export.add_argument("folder", help="output folder")
    export.add_argument("--data", metavar="FOLDER", help="source folder of IDX files (default: bundled MNIST)")
    export.set_defaults(func=cmd_export_csv)

    grid = commands.add_parser("augment-preview", help="a PNG grid of digits under each augmentation",
                               description="A few test digits and their variants under each transform, "
                                           "at the strengths of a run configuration.")
    grid.add_argument("--out", default="augment-preview.png", metavar="FILE",
                      help="image to write, .png, .svg or .pdf (default: %(default)s)")
    grid.add_argument("--config", metavar="TOML", help="take the strengths from a run configuration")
    grid.add_argument("--count", type=int, default=6, metavar="N", help="digits shown, 1 to 50 (default: %(default)s)")
    grid.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the variants (default: %(default)s)")
    grid.set_defaults(func=cmd_augment_preview)

    from .report.cli import add_commands as add_report_commands  # plot, report; matplotlib loads only when run
    from .web.cli import add_commands as add_draw_commands  # light; FastAPI loads only when `draw` runs
    add_report_commands(commands)
    add_draw_commands(commands)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as e:
        print(f"mnistlab: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (``mnistlab test ... | head``): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush is quiet
        return 0
    except OSError as e:  # e.g. --out names an existing file, or a folder that cannot be written
        where = f"{e.filename}: " if e.filename else ""
        print(f"mnistlab: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mnistlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
