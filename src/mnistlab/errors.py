"""The one error type a user should ever see: bad input, named by file and place.

Library code raises `InputError` with a message such as ``train.csv:12: expected 785 columns, got 784``;
the command line prints that single line to stderr and exits with status 2. It is a ``ValueError``,
so Python callers (``mnistlab.train(lr=0)``) can catch it as the bad argument it is.
"""


class InputError(ValueError):
    """Bad user input (a file, a flag, a config value). The message names what and where.

    ``field`` is the RunConfig setting at fault, when there is one (``"lr"``), else None.
    """

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


REINSTALL = "reinstall mnistlab (make install, or pip install mnistlab)"


def require_module(what, module):
    """Raise one clear InputError when ``module``, one of mnistlab's dependencies imported only where it is
    used (matplotlib, FastAPI), is missing, before any work: ``require_module("mnistlab plot", "matplotlib")``."""
    from importlib.util import find_spec

    if find_spec(module) is None:
        raise InputError(f"{what} needs {module}, one of mnistlab's dependencies: {REINSTALL}")
