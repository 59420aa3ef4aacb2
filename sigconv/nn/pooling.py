"""Pooling layers.  They work on any number of spatial axes (1 to 3): the rank comes from the input."""
from __future__ import annotations
from collections.abc import Sequence

from .._validation import check_choice
from ..functional import POOL_KINDS
from . import functional as F
from ._checks import positive_int
from .module import Module
from ..autograd import Tensor
from ..typing import IntOrTuple, PoolKind, TensorLike

__all__ = ["MaxPool", "AvgPool", "LPPool", "GaussianPool", "GlobalPool", "AdaptivePool",
           "Maxout"]


class MaxPool(Module):
    """Maximum over windows (``torch.nn.MaxPool1d/2d/3d``); ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
                 padding: IntOrTuple = 0,
                 dilation: IntOrTuple = 1, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def forward(self, x: TensorLike) -> Tensor:
        return F.max_pool(x, self.kernel_size, stride=self.stride, padding=self.padding,
                          dilation=self.dilation, ceil_mode=self.ceil_mode)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool(Module):
    """Mean over windows (``torch.nn.AvgPool1d/2d/3d``)."""

    def __init__(self, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
                 padding: IntOrTuple = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x: TensorLike) -> Tensor:
        return F.avg_pool(x, self.kernel_size, stride=self.stride, padding=self.padding,
                          ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class LPPool(Module):
    """Lp norm over windows, ``p = 2`` the chapter's L2 pooling (``torch.nn.LPPool*d``)."""

    def __init__(self, p: float, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.p, self.kernel_size, self.stride, self.ceil_mode = p, kernel_size, stride, ceil_mode

    def forward(self, x: TensorLike) -> Tensor:
        return F.lp_pool(x, self.p, self.kernel_size, stride=self.stride, ceil_mode=self.ceil_mode)

    def extra_repr(self) -> str:
        return f"p={self.p}, kernel_size={self.kernel_size}, stride={self.stride}"


class GaussianPool(Module):
    """Average weighted by distance from the window centre (:func:`sigconv.functional.gaussian_pool`)."""

    def __init__(self, kernel_size: IntOrTuple, *, sigma: float | Sequence[float],
                 stride: IntOrTuple | None = None, padding: IntOrTuple = 0) -> None:
        super().__init__()
        self.kernel_size, self.sigma, self.stride, self.padding = kernel_size, sigma, stride, padding

    def forward(self, x: TensorLike) -> Tensor:
        return F.gaussian_pool(x, self.kernel_size, sigma=self.sigma, stride=self.stride,
                               padding=self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, sigma={self.sigma}, stride={self.stride}"


class GlobalPool(Module):
    """Pool every channel over all positions: ``(N, C, *spatial) -> (N, C)``, for any input size."""

    def __init__(self, kind: PoolKind = "avg", *, p: float = 2) -> None:
        super().__init__()
        self.kind, self.p = check_choice(kind, "kind", POOL_KINDS), p

    def forward(self, x: TensorLike) -> Tensor:
        return F.global_pool(x, self.kind, p=self.p)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


class AdaptivePool(Module):
    """Pool to a fixed ``output_size`` from any input size (``torch.nn.Adaptive*Pool*d``)."""

    def __init__(self, output_size: int | Sequence[int | None], kind: PoolKind = "avg", *,
                 p: float = 2) -> None:
        super().__init__()
        self.output_size, self.p = output_size, p
        self.kind = check_choice(kind, "kind", POOL_KINDS)

    def forward(self, x: TensorLike) -> Tensor:
        return F.adaptive_pool(x, self.output_size, self.kind, p=self.p)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, kind={self.kind!r}"


class Maxout(Module):
    """Maxout units: maximum over consecutive groups of ``pieces`` channels."""

    def __init__(self, pieces: int) -> None:
        super().__init__()
        self.pieces = positive_int(pieces, "pieces")

    def forward(self, x: TensorLike) -> Tensor:
        return F.maxout(x, self.pieces)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"
