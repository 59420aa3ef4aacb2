"""Fully connected layer, flattening, dropout, resizing and identity."""
from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from ..autograd import as_tensor
from ..errors import ArgumentError, ShapeError
from . import functional as F
from . import init
from ._checks import float_dtype, positive_int
from .module import Module, Parameter
from ..autograd import Tensor
from ..typing import IntOrTuple, Seed, TensorLike

__all__ = ["Linear", "Flatten", "Dropout", "Upsample", "Identity"]


class Linear(Module):
    """``y = x @ weight.T + bias``, weight ``(out_features, in_features)`` as ``torch.nn.Linear``.

    Glorot-uniform initial weights (``rng`` a Generator or seed), zero bias.
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 dtype: DTypeLike = np.float32, rng: Seed = None) -> None:
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        dtype = float_dtype(dtype)
        self.weight = Parameter(np.zeros((out_features, in_features), dtype))
        if bias:
            self.bias = Parameter(np.zeros(out_features, dtype))
        else:
            self.register_parameter("bias", None)
        init.glorot_uniform_(self, rng=rng)

    def forward(self, x: TensorLike) -> Tensor:
        x = as_tensor(x)
        if not x.ragged and (x.ndim < 1 or x.shape[-1] != self.in_features):
            raise ShapeError(f"Linear expects input (*, {self.in_features}), got shape {x.shape}")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Merge the axes from ``start_axis`` on (C-order, as ``torch.nn.Flatten``)."""

    def __init__(self, start_axis: int = 1) -> None:
        super().__init__()
        self.start_axis = start_axis

    def forward(self, x: TensorLike) -> Tensor:
        return F.flatten(x, self.start_axis)


class Dropout(Module):
    """Zero each element with probability ``p`` in training (scaling the rest); identity in eval."""

    def __init__(self, p: float = 0.5, *, rng: Seed = None) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ArgumentError(f"dropout probability p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def forward(self, x: TensorLike) -> Tensor:
        return F.dropout(x, self.p, training=self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Upsample(Module):
    """Nearest-neighbour resize of the spatial axes, by ``scale_factor`` or to ``size``."""

    def __init__(self, *, scale_factor: IntOrTuple | None = None,
                 size: IntOrTuple | None = None) -> None:
        super().__init__()
        if (scale_factor is None) == (size is None):
            raise ArgumentError("Upsample: give exactly one of scale_factor and size")
        self.scale_factor, self.size = scale_factor, size

    def forward(self, x: TensorLike) -> Tensor:
        return F.interpolate(x, self.size, scale_factor=self.scale_factor)


class Identity(Module):
    def forward(self, x: TensorLike) -> Tensor:
        return as_tensor(x)
