"""``mnistlab draw``: serve the draw-a-digit page. ``add_commands`` plugs it into mnistlab's parser.

Imports nothing heavy at module level: FastAPI and uvicorn load only when the command runs.
"""

import os
from pathlib import Path

RUNS_DIR = "runs"
DRAWINGS_DIR = "drawings"


def is_loopback(host):
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    import ipaddress
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cmd_draw(args):
    from ..errors import REINSTALL, InputError
    try:
        from .app import create_app
        from .server import bind_workers, serve
    except ModuleNotFoundError as e:
        raise InputError(f"mnistlab draw needs {e.name}, one of mnistlab's dependencies: {REINSTALL}") from None
    from ..inference import committee_names, weights_path
    from .drawings import CollectSettings
    from .models import MODEL_FILE, find_default_weights

    # A, a run folder or pretrained; A,B,C: their committee
    named = ([weights_path(w) for w in committee_names(args.weights)] if args.weights
             else [find_default_weights(RUNS_DIR)])
    named = [w / MODEL_FILE if w.is_dir() else w for w in named]  # a run folder, as mnistlab.load takes one
    weights = named[0] if len(named) == 1 else named
    if args.collect_max_mb <= 0:
        raise InputError(f"--collect-max-mb {args.collect_max_mb}: must be a positive number")
    local = is_loopback(args.host)
    collect = CollectSettings(args.collect or DRAWINGS_DIR, enabled=args.collect is not None,
                              allowed=args.collect is not None or local,
                              max_bytes=int(args.collect_max_mb * 1024 * 1024))
    if collect.enabled:
        collect.collection()  # a folder that cannot be made is an error before listening
    app = create_app(weights, RUNS_DIR, collect)  # loads the model: a bad file is an error before listening
    socks = bind_workers(args.host, args.port, args.workers)

    def ready(url):
        workers = f", {args.workers} worker processes" if args.workers > 1 else ""
        kept = f"; labelled drawings kept in {collect.folder}" if collect.enabled else ""
        served = f"the committee of {', '.join(map(str, named))}" if len(named) > 1 else named[0]
        print(f"serving {url} with {served} (models under {RUNS_DIR}/ selectable{workers}{kept}); Ctrl-C stops",
              flush=True)

    if not local:
        print(f"warning: --host {args.host} is not this machine only: anyone who can reach it can draw"
              + (f" and write drawings to {collect.folder}" if collect.enabled else ""), flush=True)
    serve(app, socks, open_browser=not args.no_browser, on_ready=ready)
    return 0


MAX_WORKERS = 64
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)  # 20 clients at once: p99 23 ms on one, 14 ms on two (2 cores)


def positive_workers(text):
    """``--workers``: a whole number from 1 to MAX_WORKERS (argparse turns the ValueError into one line)."""
    value = int(text)
    if not 1 <= value <= MAX_WORKERS:
        raise ValueError(text)
    return value


positive_workers.__name__ = f"number of workers (1 to {MAX_WORKERS})"


def add_commands(commands):
    """Add ``draw`` to ``commands``, an argparse sub-parsers action (whose ``parser_class``, mnistlab's
    one-line-error parser, the new parser takes)."""
    draw = commands.add_parser(
        "draw", help="draw a digit in the browser and see the model read it",
        description="Serve a local page where you draw a digit (mouse, touch or pen) or upload a photo of one, "
                    "and the model predicts it live.")
    draw.add_argument("--weights", metavar="FILE",
                      help="model file, run folder or pretrained (the model shipped with mnistlab) to serve; "
                           "A,B,C: the committee of those (the mean of their probabilities). Default: "
                           "runs/default/model.safetensors, else the shipped model, else the newest run under runs/")
    draw.add_argument("--port", type=int, default=8000, metavar="P", help="port (default: 8000; 0 picks a free one)")
    draw.add_argument("--host", default="127.0.0.1", metavar="H",
                      help="address to listen on (default: 127.0.0.1, this machine only)")
    draw.add_argument("--workers", type=positive_workers, default=DEFAULT_WORKERS, metavar="N",
                      help=f"server processes sharing the port (default: one per core, at most 4: "
                           f"{DEFAULT_WORKERS} here; 1 is plenty for one person drawing)")
    draw.add_argument("--no-browser", action="store_true", help="do not open a browser")
    draw.add_argument("--collect", nargs="?", const=DRAWINGS_DIR, metavar="DIR",
                      help=f"keep the drawings you label (right / wrong, it is ...) in DIR as an MNIST-format "
                           f"data set (default DIR: {DRAWINGS_DIR}/). Without it the page offers a toggle, "
                           "off until you turn it on (on this machine's addresses only)")
    draw.add_argument("--collect-max-mb", type=float, default=100.0, metavar="MB",
                      help="size cap of the drawings folder; past it a drawing is refused (default: %(default)s)")
    draw.set_defaults(func=cmd_draw)
    return draw
