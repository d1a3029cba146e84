"""``mnistlab draw``: serve the draw-a-digit page. ``add_commands`` plugs it into mnistlab's parser.

Imports nothing heavy at module level: FastAPI and uvicorn load only when the command runs.
"""

from pathlib import Path

RUNS_DIR = "runs"


def cmd_draw(args):
    from ..errors import InputError
    try:
        from .app import create_app
        from .server import bind, serve
    except ModuleNotFoundError as e:
        raise InputError(f"mnistlab draw needs {e.name}: pip install 'mnistlab[web]'") from None
    from .models import find_default_weights

    weights = Path(args.weights) if args.weights else find_default_weights(RUNS_DIR)
    app = create_app(weights, RUNS_DIR)  # loads the model: a bad file is an error before listening
    sock = bind(args.host, args.port)

    def ready(url):
        print(f"serving {url} with {weights} (models under {RUNS_DIR}/ selectable); Ctrl-C stops", flush=True)

    serve(app, sock, open_browser=not args.no_browser, on_ready=ready)
    return 0


def add_commands(commands, parser_class=None):
    """Add ``draw`` to ``commands`` (an argparse sub-parsers object; its own parser class is used,
    ``parser_class`` is accepted for commands with sub-commands of their own, which draw has not)."""
    draw = commands.add_parser(
        "draw", help="draw a digit in the browser and see the model read it",
        description="Serve a local page where you draw a digit (mouse, touch or pen) or upload a photo of one, "
                    "and the model predicts it live. Needs the web extra: pip install 'mnistlab[web]'.")
    draw.add_argument("--weights", metavar="FILE",
                      help="model to serve (default: runs/default/model.safetensors, else the newest run under runs/)")
    draw.add_argument("--port", type=int, default=8000, metavar="P", help="port (default: 8000; 0 picks a free one)")
    draw.add_argument("--host", default="127.0.0.1", metavar="H",
                      help="address to listen on (default: 127.0.0.1, this machine only)")
    draw.add_argument("--no-browser", action="store_true", help="do not open a browser")
    draw.set_defaults(func=cmd_draw)
    return draw
