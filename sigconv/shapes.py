r"""Output-size and padding formulas, in one place.

Notation (per spatial axis, as in Chainer's ``conv_nd`` and the chapter):
``n`` input size, ``k`` kernel size, ``s`` stride, ``d`` dilation, ``lo`` and
``hi`` the zeros added before and after the input.  The dilated kernel spans
``e = (k - 1) * d + 1`` samples and the output size is

.. math:: m = \lfloor (n + lo + hi - e) / s \rfloor + 1 .

Padding modes (:func:`resolve_padding`):

``"valid"``
    no padding, ``m = floor((n - e) / s) + 1``.
``"same"``
    ``m = ceil(n / s)`` for any stride; the total padding
    ``max((m - 1) * s + e - n, 0)`` is split with the odd sample after the
    input (PyTorch's and TensorFlow's rule) for cross-correlation, and before
    it for true convolution (``flip=True``), so that results equal
    ``scipy.signal.convolve(..., mode="same")``.
``"full"``
    ``e - 1`` zeros on both sides: every partial overlap.
int, tuple of ints, tuple of ``(lo, hi)`` pairs
    explicit padding, symmetric or per side.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import INDEX_MAX, as_tuple
from .errors import ArgumentError, ShapeError
from .typing import IntOrTuple, Padding, Shape

_Ints = NDArray[np.int64]

PADDING_MODES = ("valid", "same", "full")

__all__ = [
    "PADDING_MODES",
    "dilated_size",
    "conv_output_size",
    "conv_input_size",
    "same_padding",
    "resolve_padding",
    "resolve_paddings",
    "conv_sizes",
    "pool_output_size",
    "adaptive_pool_windows",
    "unpool_output_size",
]


@overload
def dilated_size(kernel_size: int, dilation: IntOrTuple = 1) -> int: ...
@overload
def dilated_size(kernel_size: Sequence[int], dilation: IntOrTuple = 1) -> Shape: ...
def dilated_size(kernel_size: int | Sequence[int], dilation: IntOrTuple = 1) -> int | Shape:
    """Span of a dilated kernel, ``(k - 1) * d + 1`` (ints or tuples)."""
    if isinstance(kernel_size, (int, np.integer)):
        (step,) = as_tuple(dilation, 1, "dilation")
        return (int(kernel_size) - 1) * step + 1
    n = len(kernel_size)
    return tuple((k - 1) * d + 1 for k, d in zip(kernel_size, as_tuple(dilation, n, "dilation")))


def _per_axis(values: Any, n: int) -> tuple[Any, ...]:
    return values if isinstance(values, tuple) else (values,) * n


def _same_padding(sizes: Any, spans: Any, strides: Any, flip: bool) -> tuple[Any, Any]:
    """``"same"`` padding ``(lo, hi)`` on int arrays (or ints) of sizes, dilated spans, strides."""
    out = -(-sizes // strides)
    total = np.maximum((out - 1) * strides + spans - sizes, 0)
    small = total // 2
    large = total - small
    return (large, small) if flip else (small, large)


def same_padding(input_size: int, kernel_size: int, stride: int = 1, dilation: int = 1, *,
                 flip: bool = False) -> tuple[int, int]:
    """``(lo, hi)`` padding of one axis for ``"same"`` output ``ceil(n / s)``."""
    lo, hi = _same_padding(np.int64(input_size), dilated_size(kernel_size, dilation),
                           int(stride), flip)
    return int(lo), int(hi)


def resolve_padding(padding: Padding, input_size: Sequence[int], kernel_size: Sequence[int],
                    stride: IntOrTuple = 1, dilation: IntOrTuple = 1, *,
                    flip: bool = False) -> tuple[tuple[int, int], ...]:
    """Turn any accepted ``padding`` into a tuple of ``(lo, hi)`` pairs, one per axis.

    Parameters
    ----------
    padding : str, int, tuple of int or tuple of (int, int)
        ``"valid"``, ``"same"``, ``"full"``, a symmetric int, one int per
        axis, or one ``(lo, hi)`` pair per axis.
    input_size, kernel_size : tuple of int
        Spatial sizes; their length is the number of spatial axes.
    stride, dilation : int or tuple of int
    flip : bool
        True convolution: ``"same"`` puts the odd sample before the input.

    Returns
    -------
    tuple of (int, int)
    """
    lo, hi = resolve_paddings(padding, [tuple(input_size)], kernel_size, stride, dilation,
                              flip=flip)
    return tuple(zip(lo[0].tolist(), hi[0].tolist()))


def resolve_paddings(padding: Padding, input_sizes: ArrayLike, kernel_size: Sequence[int],
                     stride: IntOrTuple = 1, dilation: IntOrTuple = 1, *,
                     flip: bool = False) -> tuple[_Ints, _Ints]:
    """:func:`resolve_padding` for many inputs of the same rank at once (the items of a batch).

    ``padding``, ``stride`` and ``dilation`` are validated once.

    Parameters
    ----------
    input_sizes : array_like of int, shape (M, nd)
        One input's spatial sizes per row.
    padding, kernel_size, stride, dilation, flip
        As for :func:`resolve_padding`, shared by every input.

    Returns
    -------
    lo, hi : ndarray of int64, shape (M, nd)
    """
    sizes = np.asarray(input_sizes, dtype=np.int64)
    n = sizes.shape[1]
    stride = as_tuple(stride, n, "stride", minimum=1)
    dilation = as_tuple(dilation, n, "dilation", minimum=1)
    return _resolve_paddings(padding, sizes, tuple(kernel_size), stride, dilation, flip)


def _spans(kernel_size: Sequence[int], dilation: Shape) -> _Ints:
    """Dilated kernel spans as an int64 array; ``dilation`` an already checked tuple.

    Raises :class:`ArgumentError` naming ``dilation`` when a span exceeds
    :data:`~sigconv._validation.INDEX_MAX` (it would not fit the kernels' int64 positions).
    """
    if len(kernel_size) != len(dilation):
        dilated_size(kernel_size, dilation)  # raises its error for a kernel of another rank
    spans = [(int(k) - 1) * d + 1 for k, d in zip(kernel_size, dilation)]
    if any(e > INDEX_MAX for e in spans):
        raise ArgumentError(f"dilation {dilation} with kernel size {tuple(kernel_size)} spans "
                            f"{tuple(spans)} samples, more than 2**60: use a smaller dilation")
    return np.array(spans, dtype=np.int64)


def _resolve_paddings(padding: Padding, sizes: _Ints, kernel_size: Sequence[int], stride: Shape,
                      dilation: Shape, flip: bool) -> tuple[_Ints, _Ints]:
    """:func:`resolve_paddings` on an ``(M, nd)`` int64 ``sizes`` array and checked tuples.

    ``stride`` and ``dilation`` must already be tuples of ``nd`` positive
    ints (from :func:`as_tuple`); only ``padding`` is validated here.
    """
    n = sizes.shape[1]
    if isinstance(padding, str):
        if padding == "valid":
            return np.zeros_like(sizes), np.zeros_like(sizes)
        spans = _spans(kernel_size, dilation)
        if padding == "same":
            return _same_padding(sizes, spans, np.array(stride, dtype=np.int64), flip)
        if padding == "full":
            full = np.zeros_like(sizes) + (spans - 1)
            return full, full.copy()
        raise ArgumentError(
            "padding must be one of 'valid', 'same', 'full', an int, a tuple of ints "
            f"or a tuple of (lo, hi) pairs; got {padding!r}"
        )
    pairs = np.array(_explicit_padding(padding, n), dtype=np.int64).reshape(n, 2)
    return np.zeros_like(sizes) + pairs[:, 0], np.zeros_like(sizes) + pairs[:, 1]


def _explicit_padding(padding: Any, n: int) -> tuple[tuple[int, int], ...]:
    """An int, ``n`` ints or ``n`` ``(lo, hi)`` pairs as a validated tuple of ``n`` pairs."""
    if isinstance(padding, (numbers.Integral, np.integer)) and not isinstance(padding, bool):
        pairs = ((int(padding), int(padding)),) * n
    else:
        try:
            items = tuple(padding)
        except TypeError:
            raise ArgumentError(f"padding must be a str, an int or a tuple, got {padding!r}") from None
        if len(items) != n:
            raise ArgumentError(
                f"padding must have one entry per spatial axis ({n}), got {padding!r}"
            )
        listed: list[tuple[int, int]] = []
        for item in items:
            if isinstance(item, (numbers.Integral, np.integer)) and not isinstance(item, bool):
                listed.append((int(item), int(item)))
            else:
                lo, hi = as_tuple(item, 2, "each (lo, hi) padding pair")
                listed.append((lo, hi))
        pairs = tuple(listed)
    if any(lo < 0 or hi < 0 for lo, hi in pairs):
        raise ArgumentError(f"padding must be non-negative, got {padding!r}")
    if any(lo > INDEX_MAX or hi > INDEX_MAX for lo, hi in pairs):
        raise ArgumentError(f"padding must be at most 2**60 on every side, got {padding!r}")
    return pairs


def conv_output_size(input_size: Sequence[int], kernel_size: Sequence[int],
                     stride: IntOrTuple = 1, padding: Padding = "valid",
                     dilation: IntOrTuple = 1, *, flip: bool = False) -> Shape:
    """Spatial output size of a convolution.

    Parameters
    ----------
    input_size, kernel_size : tuple of int
    stride, dilation : int or tuple of int
    padding : any value accepted by :func:`resolve_padding`

    Returns
    -------
    tuple of int
        May contain values < 1 when the kernel is larger than the padded
        input; callers that need a non-empty output check that.
    """
    _, _, out = conv_sizes([tuple(input_size)], kernel_size, stride, padding, dilation, flip=flip)
    return tuple(out[0].tolist())


def conv_sizes(input_sizes: ArrayLike, kernel_size: Sequence[int], stride: IntOrTuple = 1,
               padding: Padding = "valid", dilation: IntOrTuple = 1, *,
               flip: bool = False) -> tuple[_Ints, _Ints, _Ints]:
    """Padding and output sizes of a convolution for many inputs of the same rank at once.

    Parameters
    ----------
    input_sizes : array_like of int, shape (M, nd)
        One input's spatial sizes per row (the items of a batch).
    kernel_size, stride, padding, dilation, flip
        As for :func:`conv_output_size`, shared by every input (validated once).

    Returns
    -------
    lo, hi, out : ndarray of int64, shape (M, nd)
        Each input's padding (:func:`resolve_paddings`) and output size
        (:func:`conv_output_size`; may be < 1 where the kernel does not fit).
    """
    sizes = np.asarray(input_sizes, dtype=np.int64)
    n = sizes.shape[1]
    stride = as_tuple(stride, n, "stride", minimum=1)
    dilation = as_tuple(dilation, n, "dilation", minimum=1)
    return _conv_sizes(sizes, tuple(kernel_size), stride, padding, dilation, flip)


def _conv_sizes(sizes: _Ints, kernel_size: Sequence[int], stride: Shape, padding: Padding,
                dilation: Shape, flip: bool) -> tuple[_Ints, _Ints, _Ints]:
    """:func:`conv_sizes` on an ``(M, nd)`` int64 ``sizes`` array and checked tuples.

    ``stride`` and ``dilation`` must already be tuples of ``nd`` positive
    ints (from :func:`as_tuple`); only ``padding`` is validated here.
    """
    lo, hi = _resolve_paddings(padding, sizes, kernel_size, stride, dilation, flip)
    return lo, hi, (sizes + lo + hi - _spans(kernel_size, dilation)) // np.array(
        stride, dtype=np.int64) + 1


def conv_input_size(output_size: Sequence[int], kernel_size: Sequence[int],
                    stride: IntOrTuple = 1, padding: Padding = 0,
                    dilation: IntOrTuple = 1) -> Shape:
    """Inverse of :func:`conv_output_size`: the smallest input size giving ``output_size``.

    Any input up to ``stride - 1`` samples longer gives the same output size.
    ``padding`` must be explicit (int, ints or pairs): ``"same"`` and
    ``"full"`` depend on the input size they are solving for.
    """
    output_size, kernel_size = tuple(output_size), tuple(kernel_size)
    n = len(output_size)
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        else:
            raise ArgumentError(
                f"conv_input_size needs explicit padding, not {padding!r}; "
                "for 'same' the input size is (output - 1) * stride + 1 up to output * stride"
            )
    stride = as_tuple(stride, n, "stride", minimum=1)
    dilation = as_tuple(dilation, n, "dilation", minimum=1)
    pads = resolve_padding(padding, output_size, kernel_size, stride, dilation)
    spans = dilated_size(kernel_size, dilation)
    return tuple((m - 1) * s + e - lo - hi
                 for m, s, e, (lo, hi) in zip(output_size, stride, spans, pads))


def pool_output_size(input_size: Sequence[int], kernel_size: IntOrTuple, stride: IntOrTuple,
                     padding: IntOrTuple = 0, dilation: IntOrTuple = 1, *,
                     ceil_mode: bool = False) -> Shape:
    r"""Spatial output size of a pooling window, PyTorch's rule.

    Per axis, with span ``e = (k - 1) * d + 1`` and symmetric padding ``p``:

    .. math:: m = \lfloor (n + 2p - e) / s \rfloor + 1

    With ``ceil_mode`` the division rounds up, but the last window must start
    inside the input or the left padding (it may not start in the right
    padding), so ``m`` drops by one when ``(m - 1) s >= n + p``.

    Raises
    ------
    ShapeError
        When the window spans more samples than the padded input on some axis.
    """
    input_size = tuple(input_size)
    n = len(input_size)
    return _pool_output_size(input_size, as_tuple(kernel_size, n, "kernel_size", minimum=1),
                             as_tuple(stride, n, "stride", minimum=1),
                             as_tuple(padding, n, "padding", minimum=0),
                             as_tuple(dilation, n, "dilation", minimum=1), ceil_mode)


def _pool_output_size(input_size: Sequence[int], kernel_size: Shape, stride: Shape,
                      padding: Shape, dilation: Shape, ceil_mode: bool) -> Shape:
    """:func:`pool_output_size` of options already validated (tuples of ints, one per axis)."""
    sizes = []
    for axis, (i, k, s, p, d) in enumerate(zip(input_size, kernel_size, stride, padding, dilation)):
        span = (k - 1) * d + 1
        room = i + 2 * p - span
        if room < 0:
            spanned = f"{span} samples (kernel_size {k}, dilation {d})" if d > 1 else f"{k} samples"
            raise ShapeError(
                f"kernel_size {tuple(kernel_size)} is larger than the padded input: on spatial "
                f"axis {axis} the window spans {spanned} but the input has {i} samples plus "
                f"2 * padding {p} = {i + 2 * p}; use a smaller kernel_size or a larger input"
            )
        m = (room + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (m - 1) * s >= i + p:
            m -= 1
        sizes.append(m)
    return tuple(sizes)


def adaptive_pool_windows(input_size: int, output_size: int) -> list[tuple[int, int]]:
    """Windows of adaptive pooling along one axis, PyTorch's rule.

    Output ``i`` of ``m`` pools input samples ``[floor(i * n / m), ceil((i + 1) * n / m))``
    of ``n``; neighbouring windows overlap by at most one sample.

    Returns
    -------
    list of (int, int)
        ``(start, end)`` of each of the ``output_size`` windows.
    """
    n, m = int(input_size), int(output_size)
    if n < 1 or m < 1:
        raise ShapeError(
            f"adaptive pooling needs input and output sizes >= 1, got input {n}, output {m}")
    return [((i * n) // m, -(-(i + 1) * n // m)) for i in range(m)]


def unpool_output_size(input_size: Sequence[int], kernel_size: IntOrTuple, stride: IntOrTuple,
                       padding: IntOrTuple = 0) -> Shape:
    """Default spatial output size of max unpooling, the inverse of :func:`pool_output_size`.

    ``(m - 1) * s - 2 * p + k`` per axis (PyTorch's ``max_unpool`` default);
    any size up to ``s - 1`` larger pools back to ``input_size`` as well.
    """
    input_size = tuple(input_size)
    n = len(input_size)
    kernel_size = as_tuple(kernel_size, n, "kernel_size", minimum=1)
    stride = as_tuple(stride, n, "stride", minimum=1)
    padding = as_tuple(padding, n, "padding", minimum=0)
    return tuple((m - 1) * s - 2 * p + k
                 for m, k, s, p in zip(input_size, kernel_size, stride, padding))

