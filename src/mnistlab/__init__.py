"""mnistlab: backpropagation experiments on MNIST with a fully connected network written in NumPy.

The Python API (see ``api.py``), loaded on first use so that ``import mnistlab`` and the command
line stay light::

    import mnistlab
    run = mnistlab.train(hidden=[100, 100], epochs=2, out="runs/nb")   # the same keys as a TOML config
    run.metrics["test_accuracy"], run.history
    model = mnistlab.load("runs/nb/model.safetensors")   # a list of several: their Committee; "pretrained"
    model.predict(images), model.predict_proba(images)
    mnist = mnistlab.load_mnist()   # mnist.train_images (60000, 28, 28) uint8, mnist.train_labels, ...
"""

__version__ = "0.1.0"

_API = ("train", "load", "load_mnist", "Run", "Model", "Committee", "MNIST", "InputError")
__all__ = ["__version__", *_API]


def __getattr__(name):  # PEP 562: the API (and with it NumPy and the network) is imported on first use
    if name == "InputError":
        from .errors import InputError as value
    elif name in _API:
        from . import api
        value = getattr(api, name)
    else:
        raise AttributeError(f"module 'mnistlab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_API])

