"""Figures and the HTML report, drawn from what training and sweeps wrote to disk (matplotlib, Agg).

``records`` reads run folders and study tables; ``curves``, ``study`` and ``model`` draw figures
(returning matplotlib Figures); ``html`` builds the self-contained report page; ``cli`` adds the
``plot`` and ``report`` commands. matplotlib is imported only when a figure is drawn, and nothing
here imports the training code: a figure can be redrawn without retraining.
"""

from .curves import write_curves

__all__ = ["write_curves"]
