"""``mnistlab draw``: serve the draw-a-digit page. ``add_commands`` plugs it into mnistlab's parser.

Imports nothing heavy at module level: FastAPI and uvicorn load only when the command runs.
"""

import os
from pathlib import Path

RUNS_DIR = "runs"


def cmd_draw(args):
    from ..errors import REINSTALL, InputError
    try:
        from .app import create_app
        from .server import bind_workers, serve
    except ModuleNotFoundError as e:
        raise InputError(f"mnistlab draw needs {e.name}, one of mnistlab's dependencies: {REINSTALL}") from None
    from .models import find_default_weights

    weights = Path(args.weights) if args.weights else find_default_weights(RUNS_DIR)
    app = create_app(weights, RUNS_DIR)  # loads the model: a bad file is an error before listening
    socks = bind_workers(args.host, args.port, args.workers)

    def ready(url):
        workers = f", {args.workers} worker processes" if args.workers > 1 else ""
        print(f"serving {url} with {weights} (models under {RUNS_DIR}/ selectable{workers}); Ctrl-C stops",
              flush=True)

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


def add_commands(commands, parser_class=None):
    """Add ``draw`` to ``commands`` (an argparse sub-parsers object; its own parser class is used,
    ``parser_class`` is accepted for commands with sub-commands of their own, which draw has not)."""
    draw = commands.add_parser(
        "draw", help="draw a digit in the browser and see the model read it",
        description="Serve a local page where you draw a digit (mouse, touch or pen) or upload a photo of one, "
                    "and the model predicts it live.")
    draw.add_argument("--weights", metavar="FILE",
                      help="model to serve (default: runs/default/model.safetensors, else the newest run under runs/)")
    draw.add_argument("--port", type=int, default=8000, metavar="P", help="port (default: 8000; 0 picks a free one)")
    draw.add_argument("--host", default="127.0.0.1", metavar="H",
                      help="address to listen on (default: 127.0.0.1, this machine only)")
    draw.add_argument("--workers", type=positive_workers, default=DEFAULT_WORKERS, metavar="N",
                      help=f"server processes sharing the port (default: one per core, at most 4: "
                           f"{DEFAULT_WORKERS} here; 1 is plenty for one person drawing)")
    draw.add_argument("--no-browser", action="store_true", help="do not open a browser")
    draw.set_defaults(func=cmd_draw)
    return draw
