"""Losses: cross-entropy on logits, mean squared error and the soft Dice loss.

Each is a function (also in :mod:`sigconv.nn.functional`) and a
:class:`~sigconv.nn.Module` holding its options.  Names, arguments and
results follow ``torch.nn.functional`` (cross-entropy's class weights, label
smoothing, ``ignore_index`` and reductions give PyTorch's numbers).  Dense
outputs ``(N, C, *spatial)`` with targets ``(N, *spatial)`` work like
classification outputs ``(N, C)`` with targets ``(N,)``.
"""
from __future__ import annotations
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_choice
from .._ops import log_softmax_array
from .._tape import same_layout
from ..autograd import Function, Tensor, as_tensor
from ..errors import ArgumentError, DTypeError, ShapeError
from ..ragged import Ragged
from .module import Module
from ..typing import TensorLike

__all__ = ["cross_entropy", "mse_loss", "dice_loss", "CrossEntropyLoss", "MSELoss", "DiceLoss"]

REDUCTIONS = ("mean", "sum", "none")


def _labels(target: Any, logits_shape: tuple[Any, ...], name: str = "target") -> NDArray[Any]:
    """Integer class labels ``(N, *spatial)`` matching logits ``(N, C, *spatial)``."""
    target = np.asarray(target.data if isinstance(target, Tensor) else target)
    if target.dtype.kind not in "iu":
        raise DTypeError(f"{name} must hold integer class indices, got dtype {target.dtype}")
    expected = (logits_shape[0],) + tuple(logits_shape[2:])
    if target.shape != expected:
        raise ShapeError(f"{name} must have shape (N, *spatial) = {expected} for logits of shape "
                         f"{logits_shape}, got {target.shape}")
    return target


class _CrossEntropy(Function):
    r"""Softmax cross-entropy on logits, fused: ``loss_i = -sum_c A_ic log p_ic``.

    With class weights ``w``, smoothing ``e`` and ``C`` classes, the target
    coefficients are ``A_ic = (1 - e) w_y [c = y_i] + (e / C) w_c`` (0 for an
    ignored sample), and ``"mean"`` divides the sum by ``sum_i w_{y_i}``
    (PyTorch's rule).  The gradient is ``(p_i * sum_c A_ic - A_i) / D``.
    """

    def forward(self, logits: NDArray[Any], *, target: NDArray[Any], weight: NDArray[Any] | None,
                smoothing: float, ignore_index: int, reduction: str) -> NDArray[Any]:
        c = logits.shape[1]
        logp = log_softmax_array(logits, 1)
        valid = target != ignore_index
        labels = np.where(valid, target, 0)
        if labels.size and (labels.min() < 0 or labels.max() >= c):
            bad = labels[(labels < 0) | (labels >= c)][0]
            raise ArgumentError(f"target holds class {bad}, outside 0..{c - 1} for logits with "
                                f"{c} classes (ignore_index={ignore_index})")
        w = np.ones(c, logits.dtype) if weight is None else weight.astype(logits.dtype)
        wy = w[labels] * valid  # (N, *spatial)
        bshape = (1, c) + (1,) * (logits.ndim - 2)
        coef = (smoothing / c) * w.reshape(bshape) * valid[:, None]
        onehot = np.expand_dims(labels, 1) == np.arange(c).reshape(bshape)
        coef = coef + (1 - smoothing) * onehot * wy[:, None]  # A, (N, C, *spatial)
        losses = -(coef * logp).sum(axis=1)
        self.logp, self.coef, self.reduction = logp, coef, reduction
        if reduction == "none":
            return losses.astype(logits.dtype)
        self.denominator = wy.sum() if reduction == "mean" else 1.0
        return np.asarray(losses.sum() / self.denominator, logits.dtype)

    def backward(self, g: NDArray[Any]) -> tuple[Any, ...]:
        grad = np.exp(self.logp) * self.coef.sum(axis=1, keepdims=True) - self.coef
        if self.reduction == "none":
            return (grad * g[:, None],)
        return (grad * (g / self.denominator),)


class _RaggedPositions(Function):
    """A Ragged batch of ``(C, *s_i)`` items as one dense ``(1, C, P)`` row of all positions."""

    ragged = "native"

    def forward(self, x: Ragged) -> NDArray[Any]:
        self.items = x
        return np.concatenate([item.reshape(x.channels, -1) for item in x], axis=1)[None]

    def backward(self, g: NDArray[Any]) -> tuple[Any, ...]:
        sizes = [int(np.prod(shape)) for shape in self.items.shapes]
        pieces = np.split(g[0], np.cumsum(sizes)[:-1], axis=1)
        return (self.items.like(np.concatenate([p.reshape(-1) for p in pieces])),)


def _ragged_labels(target: Any, layout: Ragged) -> NDArray[Any]:
    """Integer labels of a Ragged batch, ``(1, P)``: a Ragged of one channel, or one array per item."""
    items = list(target) if isinstance(target, (Ragged, list, tuple)) else None
    if items is None or len(items) != len(layout):
        raise ShapeError(f"the target of Ragged logits must be a Ragged (one channel) or a list "
                         f"of {len(layout)} label arrays of the items' shapes, got {target!r}")
    labels = []
    for i, (item, shape) in enumerate(zip(items, layout.shapes)):
        item = np.asarray(item)
        if isinstance(target, Ragged):
            item = item[0]
        if item.shape != tuple(int(v) for v in shape):
            raise ShapeError(f"target item {i} has shape {item.shape}, the logits' item has "
                             f"spatial shape {tuple(int(v) for v in shape)}")
        labels.append(item.reshape(-1))
    labels = np.concatenate(labels)[None]
    if labels.dtype.kind == "f" and np.array_equal(labels, np.round(labels)):
        labels = labels.astype(np.int64)  # a Ragged stores labels as floats
    return labels


def cross_entropy(logits: TensorLike, target: TensorLike, *, weight: ArrayLike | None = None,
                  label_smoothing: float = 0.0, ignore_index: int = -100,
                  reduction: Literal["mean", "sum", "none"] = "mean") -> Tensor:
    """Softmax cross-entropy between logits and integer class labels.

    Parameters
    ----------
    logits : Tensor, shape (N, C) or (N, C, *spatial), or holding a Ragged
        Unnormalised scores.  Ragged logits (dense labelling of items of
        different sizes) count every position of every item once.
    target : int array, shape (N,) or (N, *spatial)
        For Ragged logits: a Ragged of one channel, or a list of label
        arrays of the items' spatial shapes.
    weight : array, shape (C,), optional
        Per-class weights.
    label_smoothing : float in [0, 1]
        Mix the one-hot target with the uniform distribution.
    ignore_index : int
        Samples with this label contribute nothing.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor, scalar (or shape (N, *spatial) for ``"none"``)
    """
    logits = as_tensor(logits)
    if isinstance(logits.data, Ragged):  # every position of every item: (1, C, P) and (1, P)
        if reduction == "none":
            raise ArgumentError("cross_entropy of Ragged logits takes reduction 'mean' or "
                                "'sum' (per-position losses of items of different sizes "
                                "would be a Ragged)")
        target = _ragged_labels(target, logits.data)
        logits = _RaggedPositions.apply(logits)
    if logits.ndim < 2:
        raise ShapeError(f"logits must have shape (N, C) or (N, C, *spatial), got {logits.shape}")
    if logits.dtype.kind != "f":
        raise DTypeError(f"logits must be float, got dtype {logits.dtype}")
    target = _labels(target, logits.shape)
    check_choice(reduction, "reduction", REDUCTIONS)
    if not 0 <= label_smoothing <= 1:
        raise ArgumentError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    if weight is not None:
        weight = np.asarray(weight.data if isinstance(weight, Tensor) else weight)
        if weight.shape != (logits.shape[1],):
            raise ShapeError(f"weight must have one value per class, shape ({logits.shape[1]},), "
                             f"got {weight.shape}")
    return _CrossEntropy.apply(logits, target=target, weight=weight, smoothing=label_smoothing,
                               ignore_index=ignore_index, reduction=reduction)


def mse_loss(input: TensorLike, target: TensorLike, *,
             reduction: Literal["mean", "sum", "none"] = "mean") -> Tensor:
    """Mean squared error ``mean((input - target) ** 2)`` (shapes must match).

    A Ragged ``input`` takes a Ragged ``target`` of the same item shapes; the
    mean is over every element of every item, ``"none"`` returns a Ragged.
    """
    input, target = as_tensor(input), as_tensor(target)
    if input.ragged or target.ragged:
        if not (isinstance(input.data, Ragged) and isinstance(target.data, Ragged)
                and same_layout(input.data, target.data)):
            raise ShapeError(f"mse_loss: a Ragged input needs a Ragged target of the same item "
                             f"shapes, got {input.data!r} and {target.data!r}")
    elif input.shape != target.shape:
        raise ShapeError(f"mse_loss: input has shape {input.shape} but target has shape "
                         f"{target.shape}; they must match")
    check_choice(reduction, "reduction", REDUCTIONS)
    squared = (input - target) ** 2
    return squared.mean() if reduction == "mean" else squared.sum() if reduction == "sum" \
        else squared


def dice_loss(logits: TensorLike, target: TensorLike, *, smooth: float = 1.0) -> Tensor:
    r"""Soft Dice loss for segmentation, ``1 - mean_c dice_c``.

    ``dice_c = (2 sum p_c t_c + smooth) / (sum p_c + sum t_c + smooth)``, sums
    over the batch and every position, ``p = softmax(logits)`` over channels
    (``sigmoid`` when there is one channel: binary segmentation).

    Parameters
    ----------
    logits : Tensor, shape (N, C, *spatial)
    target : int labels, shape (N, *spatial), or float array of the logits' shape
        (one-hot or soft masks).  Ragged logits take a Ragged target of their
        item shapes (masks); the sums then run over every item's positions.
    smooth : float > 0
        Keeps the ratio defined for classes absent from both.

    Returns
    -------
    Tensor, scalar
    """
    logits = as_tensor(logits)
    if logits.ndim < 3:
        raise ShapeError(f"dice_loss needs logits (N, C, *spatial), got shape {logits.shape}")
    if not smooth > 0:
        raise ArgumentError(f"smooth must be > 0, got {smooth!r}")
    c = logits.shape[1]
    raw = target.data if isinstance(target, Tensor) else target
    if logits.ragged or isinstance(raw, Ragged):  # soft masks of the logits' item shapes
        if not (isinstance(logits.data, Ragged) and isinstance(raw, Ragged)
                and same_layout(raw, logits.data)):
            raise ShapeError(f"dice_loss of Ragged logits needs a Ragged target of the same "
                             f"channels and item shapes (one-hot or soft masks), got logits "
                             f"{logits.data!r} and target {raw!r}")
        t = Tensor(raw.like(raw.data.astype(logits.dtype)))
    elif np.shape(raw) == logits.shape:
        t = np.asarray(raw).astype(logits.dtype)
    else:
        labels = _labels(raw, logits.shape)
        classes = max(c, 2)
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise ArgumentError(f"target holds labels outside 0..{classes - 1}")
        if c == 1:
            t = labels[:, None].astype(logits.dtype)
        else:
            t = (labels[:, None] == np.arange(c).reshape((1, c) + (1,) * (labels.ndim - 1)))
            t = t.astype(logits.dtype)
    p = logits.sigmoid() if c == 1 else logits.softmax(axis=1)
    axes = (0,) + tuple(range(2, logits.ndim))
    intersection = (p * t).sum(axes)
    dice = (intersection * 2 + smooth) / (p.sum(axes) + t.sum(axes) + smooth)
    return 1 - dice.mean()


class CrossEntropyLoss(Module):
    """:func:`cross_entropy` as a module: ``CrossEntropyLoss(weight=w)(logits, target)``."""

    def __init__(self, *, weight: ArrayLike | None = None, label_smoothing: float = 0.0,
                 ignore_index: int = -100,
                 reduction: Literal["mean", "sum", "none"] = "mean") -> None:
        super().__init__()
        self.weight = None if weight is None else np.asarray(weight)
        self.label_smoothing, self.ignore_index = label_smoothing, ignore_index
        check_choice(reduction, "reduction", REDUCTIONS)
        self.reduction = reduction

    def forward(self, logits: TensorLike, target: TensorLike) -> Tensor:
        return cross_entropy(logits, target, weight=self.weight,
                             label_smoothing=self.label_smoothing,
                             ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(Module):
    """:func:`mse_loss` as a module."""

    def __init__(self, *, reduction: Literal["mean", "sum", "none"] = "mean") -> None:
        super().__init__()
        check_choice(reduction, "reduction", REDUCTIONS)
        self.reduction = reduction

    def forward(self, input: TensorLike, target: TensorLike) -> Tensor:
        return mse_loss(input, target, reduction=self.reduction)


class DiceLoss(Module):
    """:func:`dice_loss` as a module."""

    def __init__(self, *, smooth: float = 1.0) -> None:
        super().__init__()
        self.smooth = smooth

    def forward(self, logits: TensorLike, target: TensorLike) -> Tensor:
        return dice_loss(logits, target, smooth=self.smooth)
