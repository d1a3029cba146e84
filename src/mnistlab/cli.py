"""The ``mnistlab`` command: a thin shell that parses flags, calls one library function, prints.

Bad input of any kind (a file, a flag, a config value) ends in one line on stderr and exit status 2.
"""

import argparse
import json
import os
import sys
import time

from . import __version__
from .config import FIELDS, RunConfig, load_toml, updated, validate
from .errors import InputError

# One line of help per RunConfig field; the defaults shown come from RunConfig itself.
HELP = {
    "data": "folder of MNIST-format IDX files (gzipped or not), or a training CSV (default: bundled MNIST)",
    "test_data": "test set file (CSV or IDX); required with a CSV --data",
    "val_fraction": "fraction of the training set held out for validation",
    "hidden": "hidden layer sizes, comma-separated",
    "activation": "hidden activation: relu, leaky_relu, sigmoid, tanh",
    "init": "weight initializer: zero, random, he, xavier",
    "dropout": "dropout probability on hidden units",
    "optimizer": "sgd or adam",
    "lr": "learning rate",
    "momentum": "SGD momentum (0: plain mini-batch gradient descent)",
    "nesterov": "Nesterov momentum (true/false)",
    "weight_decay": "L2 weight decay",
    "batch_size": "mini-batch size",
    "schedule": "learning-rate schedule: constant, step, cosine",
    "step_size": "step schedule: epochs between drops",
    "gamma": "step schedule: factor per drop",
    "epochs": "maximum number of epochs",
    "stop": "extra stopping rule: none, early, overfit, patience, plateau",
    "stop_k": "epochs in a row for early/overfit/patience",
    "plateau_window": "plateau: epochs whose training-loss spread is measured",
    "plateau_tolerance": "plateau: stop when std < tolerance x mean",
    "seed": "seed for the split, the initial weights, shuffling and dropout",
    "init_from": "fine-tune from a saved weights file (its architecture is used)",
    "threads": "most BLAS threads to use; small networks and batches use one (default: every core)",
}


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as for every other bad input
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_config_flags(parser):
    group = parser.add_argument_group("run configuration (flags override --config)")
    defaults = RunConfig()
    for name in FIELDS:
        value = getattr(defaults, name)
        if isinstance(value, tuple):
            value = ",".join(map(str, value))
        elif isinstance(value, bool):
            value = str(value).lower()
        text = HELP[name] if "(default:" in HELP[name] else f"{HELP[name]} (default: {value})"
        group.add_argument("--" + name.replace("_", "-"), dest=name, default=None, metavar="X", help=text)


def config_from_args(args):
    config = load_toml(args.config) if args.config else RunConfig()
    flags = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    return validate(updated(config, flags, "flag"), "flag")


def cmd_train(args):
    from .run import resume_run, start_run
    progress = not args.no_progress and sys.stderr.isatty()
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    if args.resume:
        extra = [f"--{n.replace('_', '-')}" for n in FIELDS if getattr(args, n) is not None]
        extra += [flag for flag, value in (("--config", args.config), ("--out", args.out)) if value]
        if extra:
            raise InputError(f"--resume {args.resume}: continues the run as configured; drop {', '.join(extra)}")
        result = resume_run(args.resume, progress, log)
    else:
        out = args.out or f"runs/{time.strftime('%Y%m%d-%H%M%S')}"
        result = start_run(config_from_args(args), out, progress, log)
    m = result.metrics
    if m["diverged"]:
        print(f"{m['stop_reason']}: no weights saved; history in {result.out_dir / 'history.csv'}")
        return 1
    print(f"stopped: {m['stop_reason']} after {m['epochs']} epochs, {m['seconds']:.1f} s training, "
          f"{m['wall_seconds']:.1f} s in all")
    print(f"test accuracy {100 * m['test_accuracy']:.2f}%")
    print(f"run folder {result.out_dir}: model.safetensors, history.csv, metrics.json, config.toml")
    return 0


def cmd_test(args):
    from .data import bundled_mnist_dir, load_images_labels
    from .evaluate import evaluate, format_report
    from .weights import load_model
    network, _ = load_model(args.weights)
    images, labels = load_images_labels(args.data or bundled_mnist_dir())
    if images.shape[1] != network.sizes[0]:
        raise InputError(f"{args.data}: images have {images.shape[1]} pixels, "
                         f"{args.weights} expects {network.sizes[0]}")
    result = evaluate(network, images, labels)
    print(json.dumps(result) if args.json else format_report(result))
    return 0


def cmd_export_csv(args):
    from .data import export_csv, load_dataset
    paths = export_csv(load_dataset(args.data), args.folder)
    print("wrote " + " and ".join(str(p) for p in paths))
    return 0


def build_parser():
    parser = Parser(prog="mnistlab", description="Backpropagation experiments on MNIST.")
    parser.add_argument("--version", action="version", version=f"mnistlab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    train = commands.add_parser("train", help="train a network and save its weights",
                                description="Train a network; writes a run folder.")
    train.add_argument("--config", metavar="TOML", help="run configuration file (keys as the flags, with _)")
    train.add_argument("--out", metavar="RUN_DIR", help="run folder (default: runs/<date-time>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_flags(train)
    train.set_defaults(func=cmd_train)

    test = commands.add_parser("test", help="test saved weights on a labelled set",
                               description="Accuracy, per-class precision/recall and confusion matrix.")
    test.add_argument("--weights", required=True, metavar="FILE", help="a model.safetensors file")
    test.add_argument("--data", metavar="FILE",
                      help="CSV, IDX or IDX.gz images file, or a folder (its test set); default: bundled MNIST test set")
    test.add_argument("--json", action="store_true", help="print one JSON object")
    test.set_defaults(func=cmd_test)

    data = commands.add_parser("data", help="dataset tools")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    export = data_commands.add_parser("export-csv", help="write mnist_train.csv and mnist_test.csv")
    export.add_argument("folder", help="output folder")
    export.add_argument("--data", metavar="FOLDER", help="source folder of IDX files (default: bundled MNIST)")
    export.set_defaults(func=cmd_export_csv)

    from .web.cli import add_commands as add_draw_commands  # light; FastAPI loads only when `draw` runs
    add_draw_commands(commands, Parser)
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
        print(f"mnistlab: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mnistlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
