"""The from-scratch network: activations, losses, initializers, the network, optimizers, schedules."""

from .activations import ACTIVATIONS
from .initializers import INITIALIZERS
from .losses import SoftmaxCrossEntropy, log_softmax, softmax
from .network import Network
from .optimizers import OPTIMIZERS, Adam, LayerGradient, Sgd
from .schedules import SCHEDULES, make_schedule

__all__ = ["ACTIVATIONS", "INITIALIZERS", "OPTIMIZERS", "SCHEDULES", "Adam", "LayerGradient", "Network", "Sgd",
           "SoftmaxCrossEntropy", "log_softmax", "make_schedule", "softmax"]
