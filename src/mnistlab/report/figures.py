"""matplotlib without pyplot: make a Figure, save it atomically, or turn it into PNG bytes.

Figures are plain ``matplotlib.figure.Figure`` objects drawn through the Agg canvas, so no GUI
backend, no global figure list to leak and nothing shared between threads. Every module of the
report package that draws goes through ``new_figure``.
"""

import io
from pathlib import Path

from ..errors import InputError
from ..files import atomic_write

FORMATS = ("png", "svg", "pdf")
DPI = 110


def new_figure(width, height, layout="constrained"):
    """A Figure of ``width`` x ``height`` inches with an Agg canvas; ``layout=None`` for image grids,
    where constrained layout's solver costs seconds and a fixed spacing does as well."""
    import matplotlib
    matplotlib.use("Agg", force=False)  # headless, whatever MPLBACKEND says, in case pyplot is ever used
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def log_scale(ax):
    """A log y axis labelled 0.3, 1, 2 rather than 3x10^-1 (matplotlib still picks which ticks get labels)."""
    from matplotlib.ticker import LogFormatter

    class Plain(LogFormatter):
        def __call__(self, x, pos=None):
            return f"{x:g}" if super().__call__(x, pos) else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(Plain())
    ax.yaxis.set_minor_formatter(Plain(labelOnlyBase=False))


def image_format(path, format=None):
    """The output format: the file's suffix, else ``format``, else png; InputError if it is not one of
    FORMATS, or if the suffix and ``format`` disagree (PNG bytes in an .svg file help no one)."""
    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix and format and suffix != format.lower():
        raise InputError(f"{path}: the name says {suffix}, --format says {format}; make them agree "
                         "(or leave one out)")
    fmt = (suffix or format or "png").lower()
    if fmt not in FORMATS:
        raise InputError(f"{path}: unknown image format {fmt!r} (expected {', '.join(FORMATS)})")
    return fmt


def save_figure(figure, path, format=None):
    """Write ``figure`` to ``path`` atomically (a viewer never sees half a file); return the path."""
    path = Path(path)
    fmt = image_format(path, format)
    atomic_write(path, lambda tmp: figure.savefig(tmp, format=fmt, dpi=DPI))
    return path


def png_bytes(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
