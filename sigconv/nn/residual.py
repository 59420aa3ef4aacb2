"""A residual connection: ``body(x) + shortcut(x)`` (He et al., 2016)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..autograd import Tensor, as_tensor
from ..errors import ArgumentError, ShapeError
from ..ragged import Ragged
from ..typing import TensorLike
from .module import Module

if TYPE_CHECKING:
    from ..export._walk import ExportOps

__all__ = ["Residual"]


def _layout(t: Tensor) -> tuple[Any, ...]:
    """What must agree between the branches: the shape, or a Ragged's channels and item shapes."""
    if isinstance(t.data, Ragged):
        return ("ragged", t.data.channels, t.data.shapes.shape, t.data.shapes.tolist())
    return ("dense", t.shape)


class Residual(Module):
    """``body(x) + x``, or ``body(x) + shortcut(x)`` when a shortcut module is given.

    The two branches must give the same shape (for a Ragged batch, the same
    channels and item shapes); a ``shortcut`` such as a 1x1 convolution maps
    the input to the body's channels and stride.  No activation follows the
    sum: put one after the block (as ResNet's ``relu(body(x) + shortcut(x))``,
    see :func:`sigconv.models.residual_block`).

    State dict: ``body.<...>`` then ``shortcut.<...>``; PyTorch's twin is any
    module with submodules ``body`` and ``shortcut`` computing the same sum.
    """

    def __init__(self, body: Module, shortcut: Module | None = None) -> None:
        super().__init__()
        for name, module in (("body", body), ("shortcut", shortcut)):
            if module is not None and not isinstance(module, Module):
                raise ArgumentError(f"Residual's {name} must be a Module, got "
                                    f"{type(module).__name__}")
        if body is None:
            raise ArgumentError("Residual needs a body module")
        self.body = body
        if shortcut is None:
            self._modules["shortcut"] = None  # an empty slot: in repr, no state (as PyTorch)
        else:
            self.shortcut = shortcut

    def forward(self, x: TensorLike) -> Tensor:
        x = as_tensor(x)
        out = self.body(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        out, skip = as_tensor(out), as_tensor(skip)
        if _layout(out) != _layout(skip):
            what = "the input" if self.shortcut is None else "the shortcut"
            raise ShapeError(f"Residual: the body gives {_describe(out)} but {what} gives "
                             f"{_describe(skip)}; they must match (give a shortcut, e.g. a 1x1 "
                             f"Conv with the body's channels and stride)")
        return out + skip

    @staticmethod
    def _export_forward(module: Residual, ops: ExportOps, x: Any) -> Any:
        """:meth:`forward` in an exporter's ops (:mod:`sigconv.export`); the shapes were
        checked on the example."""
        skip = x if module.shortcut is None else ops.child("shortcut", x)
        return ops.add(ops.child("body", x), skip)


def _describe(t: Tensor) -> str:
    return repr(t.data) if t.ragged else f"shape {t.shape}"
