"""The autograd's operations: arithmetic, reductions, shapes, activations, on the tape.

Every op is a :class:`~sigconv.autograd.Function` (``forward`` and
``backward`` side by side); the convolutions, poolings and normalisation,
which call the kernels, are in :mod:`sigconv.nn.functional`.  A Ragged
batch's planes and per-channel sums are read through
:class:`sigconv.ragged.Batch`; :func:`log_softmax_array` is public because
the losses and the trainer use it too.

This module imports the tape (:mod:`sigconv._tape`) and the tape imports
nothing from here: :class:`Tensor`'s operator methods, which are these ops,
are defined below in :class:`_TensorOperators` and copied onto
:class:`Tensor` when this module is imported (by :mod:`sigconv.autograd`,
which ``import sigconv`` runs first).
"""
from __future__ import annotations

import numbers
import types
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ._tape import Function, Tensor
from .errors import ArgumentError, ShapeError
from .ragged import Batch, Ragged

if TYPE_CHECKING:
    from .typing import TensorLike

__all__ = ["Add", "Sub", "Mul", "Div", "Neg", "Pow", "MatMul", "Sum", "Reshape", "Transpose",
           "GetItem", "Concat", "Exp", "Log", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "LogSoftmax",
           "cat", "log_softmax_array"]


def _axes(axis: int | Iterable[int] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (numbers.Integral, int)) else tuple(axis)
    return tuple(sorted(int(a) % ndim for a in axes))


def _unbroadcast(grad: NDArray[Any], shape: tuple[int, ...]) -> NDArray[Any]:
    """Sum ``grad`` over the axes numpy broadcasting added or stretched to reach it."""
    if grad.shape == shape:
        return grad
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad


class _Cast(Function):
    ragged = "elementwise"

    def forward(self, x, *, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return (g.astype(self.dtype),)


class Add(Function):
    ragged = "elementwise"

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        return _unbroadcast(g, self.shapes[0]), _unbroadcast(g, self.shapes[1])


class Sub(Function):
    ragged = "elementwise"

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        return _unbroadcast(g, self.shapes[0]), _unbroadcast(-g, self.shapes[1])


class Mul(Function):
    ragged = "elementwise"

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        ga = _unbroadcast(g * self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = _unbroadcast(g * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    ragged = "elementwise"

    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        ga = _unbroadcast(g / self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = (_unbroadcast(-g * self.a / (self.b * self.b), self.b.shape)
              if self.needs_input_grad[1] else None)
        return ga, gb


class Neg(Function):
    ragged = "elementwise"

    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)


class Pow(Function):
    ragged = "elementwise"

    def forward(self, a, *, exponent):
        self.a, self.exponent = a, exponent
        return a ** exponent

    def backward(self, g):
        return (g * self.exponent * self.a ** (self.exponent - 1),)


class MatMul(Function):
    """Product of two 2-D arrays."""

    def forward(self, a, b):
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
            raise ShapeError(f"matmul needs (m, k) @ (k, n), got shapes {a.shape} and {b.shape}")
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        ga = g @ self.b.T if self.needs_input_grad[0] else None
        gb = self.a.T @ g if self.needs_input_grad[1] else None
        return ga, gb


class Sum(Function):
    ragged = "elementwise"

    def forward(self, a, *, axis, keepdims):
        self.shape, self.axis = a.shape, axis
        return np.asarray(a.sum(axis=axis, keepdims=keepdims))

    def backward(self, g):
        g = np.expand_dims(g, self.axis) if g.ndim != len(self.shape) else g
        return (np.broadcast_to(g, self.shape).copy(),)


class _ChannelSum(Function):
    """Sum of a Ragged per channel over every item and position: ``(C,)``."""

    ragged = "native"

    def forward(self, x):
        self.x = Batch.of(x)
        return self.x.channel_sums().astype(x.dtype)

    def backward(self, g):
        return (self.x.result(self.x.spread(g).astype(self.x.dtype, copy=False)),)


class Reshape(Function):
    def forward(self, a, *, shape):
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ShapeError(f"cannot reshape a tensor of shape {a.shape} to {shape}") from None

    def backward(self, g):
        return (g.reshape(self.shape),)


class Transpose(Function):
    def forward(self, a, *, axes):
        self.axes = axes
        return a.transpose(axes)

    def backward(self, g):
        return (g.transpose(None if self.axes is None else np.argsort(self.axes)),)


class GetItem(Function):
    def forward(self, a, *, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return np.array(a[index])

    def backward(self, g):
        out = np.zeros(self.shape, self.dtype)
        np.add.at(out, self.index, g)
        return (out,)


class Concat(Function):
    ragged = "native"  # Ragged batches of the same item shapes join along the channel axis 1

    def forward(self, *arrays, axis):
        self.axis, self.layouts = axis, None
        if any(isinstance(a, Ragged) for a in arrays):
            return self._forward_ragged(arrays, axis)
        self.bounds = np.cumsum([0] + [a.shape[axis] for a in arrays])
        try:
            return np.concatenate(arrays, axis=axis)
        except ValueError as exc:
            raise ShapeError(f"cannot concatenate shapes {[a.shape for a in arrays]} along "
                             f"axis {axis}: {exc}") from None

    def _forward_ragged(self, arrays, axis):
        first = next(a for a in arrays if isinstance(a, Ragged))
        if axis not in (1, -first.ndim - 1):
            raise ArgumentError(f"Ragged batches concatenate along the channel axis 1 only, "
                                f"got axis={axis}")
        for i, a in enumerate(arrays):
            if (not isinstance(a, Ragged) or a.shapes.shape != first.shapes.shape
                    or not np.array_equal(a.shapes, first.shapes)):
                raise ShapeError(f"cannot concatenate input {i} ({a!r}) with {first!r}: Ragged "
                                 f"batches join along channels, with the same item shapes")
        self.layouts = arrays
        joined = [np.concatenate(items, axis=0) for items in zip(*arrays)]  # (sum C, *s_i) each
        return Ragged(np.concatenate([j.reshape(-1) for j in joined]), first.shapes,
                      sum(a.channels for a in arrays))

    def backward(self, g):
        if self.layouts is not None:  # split each item's channels back
            bounds = np.cumsum([0] + [a.channels for a in self.layouts])
            parts: list[list[np.ndarray]] = [[] for _ in self.layouts]
            for item in g:
                for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
                    parts[k].append(item[lo:hi].reshape(-1))
            return tuple(a.like(np.concatenate(p)) if need else None
                         for a, p, need in zip(self.layouts, parts, self.needs_input_grad))
        index = [slice(None)] * g.ndim
        pieces = []
        for lo, hi, need in zip(self.bounds[:-1], self.bounds[1:], self.needs_input_grad):
            index[self.axis] = slice(lo, hi)
            pieces.append(g[tuple(index)] if need else None)
        return tuple(pieces)


def cat(tensors: Iterable[TensorLike], axis: int = 0) -> Tensor:
    """Concatenate tensors along ``axis`` (differentiable ``np.concatenate``)."""
    return Concat.apply(*tensors, axis=axis)


class Exp(Function):
    ragged = "elementwise"

    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, g):
        return (g * self.out,)


class Log(Function):
    ragged = "elementwise"

    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, g):
        return (g / self.a,)


class ReLU(Function):
    ragged = "elementwise"

    def forward(self, a):
        self.positive = a > 0 if self.needs_input_grad[0] else None
        # fmax, not maximum: NaN gives 0, as before (`a > 0` is False for it); one pass
        return np.fmax(a, 0)

    def backward(self, g):
        return (g * self.positive,)


class LeakyReLU(Function):
    ragged = "elementwise"

    def forward(self, a, *, slope):
        self.scale = np.where(a > 0, 1, slope).astype(a.dtype, copy=False)
        return a * self.scale

    def backward(self, g):
        return (g * self.scale,)


class Tanh(Function):
    ragged = "elementwise"

    def forward(self, a):
        self.out = np.tanh(a)
        return self.out

    def backward(self, g):
        return (g * (1 - self.out * self.out),)


class Sigmoid(Function):
    ragged = "elementwise"

    def forward(self, a):
        # exp of a non-positive number only: no overflow for large |a|
        e = np.exp(-np.abs(a))
        self.out = np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
        return self.out

    def backward(self, g):
        return (g * self.out * (1 - self.out),)


def log_softmax_array(a: NDArray[Any], axis: int) -> NDArray[Any]:
    """``log(softmax(a))`` along ``axis`` of an array, shifted by the maximum for stability."""
    shifted = a - a.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    ragged = "native"  # over the channel axis of a Ragged, item by item
    ragged_a: Batch | None

    def forward(self, a, *, axis):
        if isinstance(a, Ragged):
            if axis not in (1, -a.ndim - 1):
                raise ArgumentError(f"log_softmax of a Ragged batch runs over the channel axis 1 "
                                    f"only, got axis={axis}")
            self.ragged_a = a = Batch.of(a)
            out = np.empty_like(a.flat)
            for p, o in zip(a.planes(), a.planes(out)):
                o[...] = log_softmax_array(p, 0)
            self.out, self.axis = out, 0
            return a.result(out)
        self.ragged_a = None
        self.out = log_softmax_array(a, axis)
        self.axis = axis
        return self.out

    def backward(self, g):
        if self.ragged_a is not None:
            a, gin = self.ragged_a, np.empty_like(self.out)
            for gp, op, o in zip(a.planes(g.data), a.planes(self.out), a.planes(gin)):
                o[...] = gp - np.exp(op) * gp.sum(axis=0, keepdims=True)
            return (a.result(gin),)
        return (g - np.exp(self.out) * g.sum(axis=self.axis, keepdims=True),)


# ---------------------------------------------------------------------------
# Tensor's operator methods
# ---------------------------------------------------------------------------

if TYPE_CHECKING:  # mypy checks these implementations against Tensor's declarations
    _OperatorBase = Tensor
else:
    _OperatorBase = object


class _TensorOperators(_OperatorBase):
    """Tensor's methods that are ops; copied onto :class:`Tensor` below."""

    def astype(self, dtype: DTypeLike) -> Tensor:
        """A copy in ``dtype``, differentiable."""
        return _Cast.apply(self, dtype=np.dtype(dtype))

    def __add__(self, other: TensorLike) -> Tensor: return Add.apply(self, other)
    def __radd__(self, other: TensorLike) -> Tensor: return Add.apply(other, self)
    def __sub__(self, other: TensorLike) -> Tensor: return Sub.apply(self, other)
    def __rsub__(self, other: TensorLike) -> Tensor: return Sub.apply(other, self)
    def __mul__(self, other: TensorLike) -> Tensor: return Mul.apply(self, other)
    def __rmul__(self, other: TensorLike) -> Tensor: return Mul.apply(other, self)
    def __truediv__(self, other: TensorLike) -> Tensor: return Div.apply(self, other)
    def __rtruediv__(self, other: TensorLike) -> Tensor: return Div.apply(other, self)
    def __neg__(self) -> Tensor: return Neg.apply(self)
    def __matmul__(self, other: TensorLike) -> Tensor: return MatMul.apply(self, other)
    def __rmatmul__(self, other: TensorLike) -> Tensor: return MatMul.apply(other, self)
    def __getitem__(self, index: Any) -> Tensor: return GetItem.apply(self, index=index)

    def __pow__(self, exponent: float) -> Tensor:
        if not isinstance(exponent, numbers.Real):
            raise ArgumentError(f"Tensor ** takes a real number exponent, got {exponent!r}")
        return Pow.apply(self, exponent=float(exponent))

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        if self.ragged:  # the sum of every element, or per channel over items and positions
            if axis is None and not keepdims:
                return Sum.apply(self, axis=(0,), keepdims=False)
            if not keepdims and _axes(axis, self.ndim) == _axes((0,) + tuple(range(2, self.ndim)),
                                                                 self.ndim):
                return _ChannelSum.apply(self)
            raise ArgumentError(f"a Ragged tensor sums over all of its elements (axis=None) or "
                                f"over all but the channel axis (axis=(0, 2, ...)), without "
                                f"keepdims; got axis={axis!r}, keepdims={keepdims}; pool it "
                                f"(GlobalPool) for per-item sums")
        return Sum.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        if isinstance(self.data, Ragged):  # all elements (axis=None), or each channel's of all items
            count = self.size if axis is None else self.size // self.data.channels
            return self.sum(axis, keepdims) * (1.0 / max(count, 1))
        axes = _axes(axis, self.ndim)
        count = int(np.prod([self.data.shape[a] for a in axes]))
        return self.sum(axes, keepdims) * (1.0 / max(count, 1))

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        dims = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Reshape.apply(self, shape=tuple(dims))

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        order = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return Transpose.apply(self, axes=tuple(order) if order else None)

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def exp(self) -> Tensor: return Exp.apply(self)
    def log(self) -> Tensor: return Log.apply(self)
    def relu(self) -> Tensor: return ReLU.apply(self)
    def tanh(self) -> Tensor: return Tanh.apply(self)
    def sigmoid(self) -> Tensor: return Sigmoid.apply(self)
    def log_softmax(self, axis: int = 1) -> Tensor: return LogSoftmax.apply(self, axis=axis)
    def softmax(self, axis: int = 1) -> Tensor: return self.log_softmax(axis).exp()


for _name, _member in vars(_TensorOperators).items():
    if isinstance(_member, (types.FunctionType, property)):
        setattr(Tensor, _name, _member)
del _name, _member
