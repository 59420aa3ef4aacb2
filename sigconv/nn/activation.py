"""Elementwise nonlinearities (the detector stage), for inputs of any shape."""
from __future__ import annotations
from typing import Literal

from . import functional as F
from .module import Module
from ..autograd import Tensor
from ..typing import TensorLike

__all__ = ["ReLU", "LeakyReLU", "Tanh", "Sigmoid", "GELU", "SiLU", "Softmax"]


class ReLU(Module):
    """``max(x, 0)``."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    """``x`` where positive, ``negative_slope * x`` elsewhere."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: TensorLike) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    def forward(self, x: TensorLike) -> Tensor:
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x: TensorLike) -> Tensor:
        return F.sigmoid(x)


class GELU(Module):
    """``x * Phi(x)`` with ``Phi`` the standard normal CDF (``torch.nn.GELU``).

    ``approximate="tanh"`` uses ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))``.
    """

    def __init__(self, approximate: Literal["none", "tanh"] = "none") -> None:
        super().__init__()
        self.approximate = F._check_approximate(approximate)

    def forward(self, x: TensorLike) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """``x * sigmoid(x)`` (``torch.nn.SiLU``, the swish)."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.silu(x)


class Softmax(Module):
    """Softmax over ``axis`` (the channel axis by default)."""

    def __init__(self, axis: int = 1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: TensorLike) -> Tensor:
        return F.softmax(x, self.axis)
