"""The from-scratch network: layers (layer.py: the protocol; dense.py, ...), activations, losses,
initializers, the network, optimizers, schedules."""

from .activations import ACTIVATIONS
from .initializers import INITIALIZERS
from .layer import DECAYED, Parameter
from .losses import SoftmaxCrossEntropy, log_softmax, softmax
from .network import EpochResult, Gradients, Network, Score
from .optimizers import OPTIMIZERS, Adam, LayerGradient, Sgd
from .schedules import SCHEDULES, make_schedule

__all__ = ["ACTIVATIONS", "DECAYED", "INITIALIZERS", "OPTIMIZERS", "SCHEDULES", "Adam", "EpochResult", "Gradients",
           "LayerGradient", "Network", "Parameter", "Score", "Sgd", "SoftmaxCrossEntropy", "log_softmax", "make_schedule",
           "softmax"]
