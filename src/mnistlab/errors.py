"""The one error type a user should ever see: bad input, named by file and place.

Library code raises `InputError` with a message such as ``train.csv:12: expected 785 columns, got 784``;
the command line prints that single line to stderr and exits with status 2.
"""


class InputError(Exception):
    """Bad user input (a file, a flag, a config value). The message names what and where."""
