"""Elementwise nonlinearities (the detector stage), for inputs of any shape."""
from . import functional as F
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Softmax"]


class ReLU(Module):
    """``max(x, 0)``."""

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """``x`` where positive, ``negative_slope * x`` elsewhere."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Softmax(Module):
    """Softmax over ``axis`` (the channel axis by default)."""

    def __init__(self, axis=1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return F.softmax(x, self.axis)
