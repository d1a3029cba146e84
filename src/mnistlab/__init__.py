"""mnistlab: backpropagation experiments on MNIST with a fully connected network written in NumPy."""

__version__ = "0.1.0"
