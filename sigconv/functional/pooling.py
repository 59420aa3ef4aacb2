r"""Pooling: the third stage of a convolutional layer (*Deep Learning*, 9.3 and 9.10).

Every op takes a channels-first batch ``x`` of shape ``(N, C, *spatial)`` with
1 to 3 spatial axes (waveforms, images and spectrograms, volumes and video),
returns the input's float dtype (float32 and float64 natively; bool, integer
and float16 input is converted by the one dtype rule of
:func:`sigconv._validation.result_dtype`), and has a public gradient function
``<op>_backward`` that the autograd layer calls.

Notation, per spatial axis: ``n`` input size, ``k`` kernel size, ``s``
stride (default ``k``), ``p`` zero padding on both sides, ``d`` dilation.
The output size is :func:`sigconv.shapes.pool_output_size`,

.. math:: m = \lfloor (n + 2p - (k - 1) d - 1) / s \rfloor + 1

(rounded up with ``ceil_mode``, as long as the last window starts inside the
input or the left padding).  Windows may not be larger than the padded input,
and ``p <= k // 2`` (PyTorch's rule), so every window overlaps the input.

Defaults and results follow ``torch.nn.functional``:

``max_pool``
    Padding never wins (it acts as ``-inf``).  **Ties:** the first maximum in
    window scan order (row-major over the window: depth, then height, then
    width) wins, and ``return_indices`` gives its flat index into the
    ``(n, c)`` input plane, ``(z * H + y) * W + x``.  **NaN:** a NaN anywhere in
    the window makes the output NaN; of several NaNs the last in scan order
    is the argmax (PyTorch's CPU rule).  The gradient flows to the argmax.
``avg_pool``
    With ``count_include_pad`` (default) the divisor counts padding zeros,
    clipped at the end of the padding in ``ceil_mode`` windows; without, it
    counts only input samples.
``lp_pool``
    ``(sum over the window of |x|^p)^(1/p)``; ``p = 2`` is the chapter's L2
    norm pooling.  Equal to PyTorch for ``p = 2`` and for any ``p`` on
    non-negative input; PyTorch raises ``x`` itself to the power ``p`` (so
    odd or fractional ``p`` on negative input gives signed or NaN results)
    and, in ``ceil_mode``, scales partial windows up by ``k / (samples in the
    window)``; sigconv computes the norm of the samples in the window.  The
    gradient at a window whose norm is 0 is 0.
``gaussian_pool``
    The chapter's "weighted average based on the distance from the central
    pixel": weights ``exp(-r^2 / (2 sigma^2))`` of the distance ``r`` from the
    window centre (per axis, so the weights are separable), normalised to
    sum to one over the window; padding counts as zeros.
``global_pool``, ``adaptive_pool``
    Adaptive window ``i`` of ``m`` covers ``[floor(i n / m), ceil((i+1) n / m))``
    (PyTorch's rule, :func:`sigconv.shapes.adaptive_pool_windows`);
    ``global_pool`` is the adaptive pool to size 1 returned as ``(N, C)``, what
    lets a network take inputs of any size.
``maxout``
    Cross-channel pooling (9.3, maxout units): maximum over consecutive
    groups of ``pieces`` channels, ``(N, C, ...) -> (N, C // pieces, ...)``;
    same tie and NaN rule as ``max_pool`` across the group.
``max_unpool``
    Puts each value at its index of a zero output (a decoder's inverse of
    ``max_pool``); repeated indices keep the last value; index ``-1`` is skipped.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _kernels as _k
from .._validation import (INDEX_MAX, as_float_array, as_tuple, check_batch, check_choice,
                           check_flag, check_int, check_positive_real, check_size,
                           check_spatial_nonempty, result_dtype, shape_argument)
from ..errors import ArgumentError, DTypeError, ShapeError
from ..ragged import Batch, Ragged, lift3
from ..shapes import _pool_output_size, unpool_output_size
from ..typing import BatchLike, IntOrTuple, PoolKind

__all__ = [
    "POOL_KINDS",
    "max_pool", "max_pool_backward",
    "avg_pool", "avg_pool_backward",
    "lp_pool", "lp_pool_backward",
    "gaussian_pool", "gaussian_pool_backward", "gaussian_pool_weights",
    "global_pool", "global_pool_backward",
    "adaptive_pool", "adaptive_pool_backward",
    "maxout", "maxout_backward",
    "max_unpool", "max_unpool_backward",
]

#: values accepted by ``kind`` in :func:`global_pool` and :func:`adaptive_pool`.
POOL_KINDS = ("avg", "max", "lp")

_KIND_CODE = {"avg": 0, "max": 1, "lp": 2}


# ---------------------------------------------------------------------------
# validation and kernel plumbing
# ---------------------------------------------------------------------------

#: the arguments that decide a window op's output size, for error messages
_WINDOW_OPTIONS = "kernel_size, stride, padding and dilation"


def _mapped(batch, spatial, channels=None, dtype=None, name="x", options=_WINDOW_OPTIONS):
    """An empty batch of ``spatial(item shape)`` items, of ``batch``'s kind: a window op's output.

    ``spatial`` maps a tuple of sizes to a tuple of sizes, once per distinct
    item shape.  The output's size is checked
    (:func:`sigconv._validation.check_size`) before it is allocated;
    ``options`` names the arguments that decide it.
    """
    channels = batch.channels if channels is None else channels
    dtype = batch.dtype if dtype is None else dtype
    if not batch.ragged:
        shape = (len(batch), channels) + tuple(spatial(batch.dense_shape[2:]))
        check_size(shape, dtype, "the output", options)
        return Batch.of(np.empty(shape, dtype))
    distinct, inverse = np.unique(batch.shapes, axis=0, return_inverse=True)
    mapped = []
    for row in distinct.tolist():
        try:
            mapped.append(tuple(spatial(tuple(row))))
        except ShapeError as exc:
            first = int(np.argmax(np.all(batch.shapes == row, axis=1)))
            raise ShapeError(f"{name} item {first}: {exc}") from None
    shapes = np.array(mapped, dtype=np.int64)[inverse.reshape(-1)]
    size = channels * sum(math.prod(shape) for shape in shapes.tolist())
    check_size((size,), dtype, "the output (all items)", options)
    return batch.empty_like(shapes, channels, dtype)


def _input(x, name="x", *, min_spatial=1, dtype=None):
    """Validate a batch (an array or a Ragged) and return it as a :class:`~sigconv.ragged.Batch` of a float dtype."""
    if isinstance(x, Ragged):
        if x.ndim < min_spatial:
            raise ShapeError(f"{name} items need at least {min_spatial} spatial axes")
        dtype = result_dtype(**{name: x.data}) if dtype is None else dtype
        return Batch.of(x).with_flat(as_float_array(x.data, dtype, name))
    dtype = result_dtype(**{name: x}) if dtype is None else dtype
    check_batch(x, name, min_spatial=min_spatial)
    check_spatial_nonempty(np.shape(x), name)
    return Batch.of(as_float_array(x, dtype, name))


def _pair(grad_output, x, *, min_spatial=1):
    """Validate a gradient and the forward input, which must share one float dtype and kind."""
    dtype = result_dtype(grad_output=getattr(grad_output, "data", grad_output),
                         x=getattr(x, "data", x))
    g = _input(grad_output, "grad_output", min_spatial=min_spatial, dtype=dtype)
    x = _input(x, "x", min_spatial=min_spatial, dtype=dtype)
    if g.ndim != x.ndim or g.ragged != x.ragged:
        raise ShapeError(
            f"grad_output ({g.describe()}) does not match x ({x.describe()}) in its number "
            "of spatial axes or in being a Ragged batch")
    return g, x


def _shape_arg(shape, name="input_shape"):
    """A forward input given to a backward function: a shape ``(N, C, *spatial)``, or a Ragged."""
    if isinstance(shape, Ragged):
        return shape
    try:
        shape = shape_argument(shape, name)
    except ArgumentError:
        raise ArgumentError(f"{name} must be a tuple of ints (N, C, *spatial), each between 0 "
                            f"and 2**60, got {shape!r}") from None
    if not 3 <= len(shape) <= 5 or any(v < 0 for v in shape) or any(v == 0 for v in shape[2:]):
        raise ShapeError(
            f"{name} must be (N, C, *spatial) with 1 to 3 non-empty spatial axes, got {shape}")
    return shape


def _empty_items(shape, dtype):
    """An uninitialised batch for a forward input given as a shape or a Ragged."""
    if not isinstance(shape, Ragged):
        check_size(shape, dtype, "the input gradient", "input_shape")
    return Batch.layout(shape, dtype)


def _geom(k, s, p, d):
    return np.array(lift3(k, 1) + lift3(s, 1) + lift3(p, 0) + lift3(d, 1), np.int64)


def _window(nd, kernel_size, stride, padding, dilation, ceil_mode):
    """Resolve and check the window options; return ``k, s, p, d`` and the output-size function."""
    k = as_tuple(kernel_size, nd, "kernel_size", minimum=1)
    s = k if stride is None else as_tuple(stride, nd, "stride", minimum=1)
    p = as_tuple(padding, nd, "padding", minimum=0)
    d = as_tuple(dilation, nd, "dilation", minimum=1)
    ceil_mode = check_flag(ceil_mode, "ceil_mode")
    for axis, (kk, pp) in enumerate(zip(k, p)):
        if pp > kk // 2:
            raise ArgumentError(
                f"padding {p} is more than half of kernel_size {k} on spatial axis {axis}: "
                f"pooling needs padding <= kernel_size // 2 (PyTorch's rule), so that "
                f"every window overlaps the input")
    return k, s, p, d, lambda spatial: _pool_output_size(spatial, k, s, p, d, ceil_mode)


def _check_grad_shape(grad_output, expected):
    """``grad_output`` (a :class:`~sigconv.ragged.Batch`) must be laid out like the forward output."""
    if not grad_output.same_layout(expected):
        raise ShapeError(
            f"grad_output has {grad_output.describe()} but the forward output "
            f"has {expected.describe()}")


def _check_p(p):
    p = check_positive_real(p, "p", " (p = 2 is L2 pooling)")
    return p, (1 if p == 1 else 2 if p == 2 else 3)


def _indices(indices, like, planes, name="indices"):
    """Validate integer indices laid out like ``like`` (a Batch) into planes of ``planes``.

    ``planes`` is the number of samples of each item's ``(n, c)`` plane the
    indices point into (one int, or one per item).  Returns a flat int64 array.
    """
    ragged = isinstance(indices, Ragged)
    arr = indices.data if ragged else np.asarray(indices)
    if arr.dtype.kind not in "iu":
        raise DTypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > INDEX_MAX:  # would wrap in int64
        raise ArgumentError(
            f"{name} must be flat indices into each (n, c) plane (0 to the plane size - 1, or "
            f"-1 for none); got the unsigned value {int(arr.max())}")
    if ragged != like.ragged or (
            ragged and not np.array_equal(indices.shapes, like.shapes)) or (
            not ragged and arr.shape != tuple(like.dense_shape)):
        got = f"item shapes {[tuple(int(v) for v in s) for s in indices.shapes]}" if ragged \
            else f"shape {arr.shape}"
        want = like.describe() if like.ragged else tuple(like.dense_shape)
        raise ShapeError(f"{name} has {got}, expected {want}")
    flat = np.ascontiguousarray(arr, dtype=np.int64).reshape(-1)
    if flat.size:
        distinct = sorted(set(np.atleast_1d(planes).tolist()))
        if len(distinct) == 1:  # one plane size (every dense batch): one comparison
            too_large = flat.max() >= distinct[0]
        else:
            sizes = like.channels * like.positions
            too_large = (flat >= np.repeat(np.asarray(planes, dtype=np.int64), sizes)).any()
        if flat.min() < -1 or too_large:
            plane = distinct[0] if len(distinct) == 1 else f"each item's ({distinct})"
            raise ArgumentError(
                f"{name} must be flat indices into each (n, c) plane of {plane} samples "
                f"(0 to the plane size - 1, or -1 for none); got values from {flat.min()} "
                f"to {flat.max()}")
    return flat


def _empty(dtype):
    return np.empty(0, dtype)


# ---------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------

@overload
def max_pool(x: Ragged, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
             padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
             return_indices: Literal[False] = False) -> Ragged: ...
@overload
def max_pool(x: ArrayLike, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
             padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
             return_indices: Literal[False] = False) -> NDArray[Any]: ...
@overload
def max_pool(x: Ragged, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
             padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
             return_indices: Literal[True]) -> tuple[Ragged, Ragged]: ...
@overload
def max_pool(x: ArrayLike, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
             padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
             return_indices: Literal[True]) -> tuple[NDArray[Any], NDArray[np.int64]]: ...
def max_pool(x: BatchLike, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
             padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
             return_indices: bool = False) -> Any:
    """Maximum over each window (PyTorch's ``max_pool1d/2d/3d``).

    Parameters
    ----------
    x : array, shape (N, C, *spatial), 1 to 3 spatial axes
    kernel_size, stride, padding, dilation : int or tuple of int
        ``stride`` defaults to ``kernel_size``; ``padding <= kernel_size // 2``
        and acts as ``-inf``.
    ceil_mode : bool
        Round the output size up (see :func:`sigconv.shapes.pool_output_size`).
    return_indices : bool
        Also return the argmax of each window as a flat index into its
        ``(n, c)`` input plane (int64), for :func:`max_pool_backward` and
        :func:`max_unpool`.

    Returns
    -------
    out : array, shape (N, C, *out_spatial), dtype of ``x``
    indices : int64 array, shape of ``out`` (only with ``return_indices``)

    Ties go to the first maximum in window scan order; a NaN in the window
    makes the output NaN (its index is the last NaN in scan order).  A window
    of ``-inf`` points at its first sample; a window that dilation leaves with
    no input sample at all gives ``-inf`` and index ``-1``.
    """
    x = _input(x)
    k, s, p, d, size = _window(x.ndim, kernel_size, stride, padding, dilation, ceil_mode)
    want = check_flag(return_indices, "return_indices")
    out = _mapped(x, size)
    idx = _mapped(out, lambda spatial: spatial, dtype=np.int64) if want else None
    _k.max_pool_forward(x.flat, x.table(), out.flat,
                        np.empty(0, np.int64) if idx is None else idx.flat,
                        out.table(), x.channels, _geom(k, s, p, d), want)
    return out.result() if idx is None else (out.result(), idx.result())


@overload
def max_pool_backward(grad_output: BatchLike, indices: BatchLike,
                      input_shape: Ragged) -> Ragged: ...
@overload
def max_pool_backward(grad_output: BatchLike, indices: BatchLike,
                      input_shape: Sequence[int] | ArrayLike) -> NDArray[Any]: ...
def max_pool_backward(grad_output: BatchLike, indices: BatchLike,
                      input_shape: Sequence[int] | BatchLike) -> NDArray[Any] | Ragged:
    """Gradient of :func:`max_pool` (and of ``adaptive_pool(kind="max")``) with respect to ``x``.

    Parameters
    ----------
    grad_output : array, shape (N, C, *out_spatial)
    indices : int array, shape of ``grad_output``
        The indices returned by ``max_pool(..., return_indices=True)``.
    input_shape : tuple of int
        Shape ``(N, C, *spatial)`` of the forward input.

    Returns
    -------
    array, shape ``input_shape``
        Each output's gradient added at its argmax (windows that share an
        argmax add up).
    """
    input_shape = _shape_arg(input_shape)
    g = _input(grad_output, "grad_output")
    gin = _empty_items(input_shape, g.dtype)
    if (gin.ragged != g.ragged or len(gin) != len(g) or gin.ndim != g.ndim
            or gin.channels != g.channels):
        raise ShapeError(
            f"grad_output has {g.describe()}, which does not match input_shape "
            f"({gin.describe()}) in rank, batch size or channels")
    idx = _indices(indices, g, gin.positions.tolist() or 1)
    _k.index_scatter(g.flat, idx, g.table(), gin.flat, gin.table(), g.channels, True)
    return gin.result()


# ---------------------------------------------------------------------------
# average, Lp and Gaussian pooling (window sums)
# ---------------------------------------------------------------------------

@overload
def avg_pool(x: Ragged, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
             padding: IntOrTuple = 0, ceil_mode: bool = False,
             count_include_pad: bool = True) -> Ragged: ...
@overload
def avg_pool(x: ArrayLike, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
             padding: IntOrTuple = 0, ceil_mode: bool = False,
             count_include_pad: bool = True) -> NDArray[Any]: ...
def avg_pool(x: BatchLike, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
             padding: IntOrTuple = 0, ceil_mode: bool = False,
             count_include_pad: bool = True) -> NDArray[Any] | Ragged:
    """Mean over each window (PyTorch's ``avg_pool1d/2d/3d``).

    Parameters
    ----------
    x : array, shape (N, C, *spatial)
    kernel_size, stride, padding : int or tuple of int
        ``stride`` defaults to ``kernel_size``; ``padding <= kernel_size // 2``.
    ceil_mode : bool
    count_include_pad : bool
        Divide by the window size including padding zeros (default), or by the
        number of input samples in the window.

    Returns
    -------
    array, shape (N, C, *out_spatial)
    """
    x = _input(x)
    k, s, p, d, size = _window(x.ndim, kernel_size, stride, padding, 1, ceil_mode)
    divmode = 1 if check_flag(count_include_pad, "count_include_pad") else 2
    out = _mapped(x, size)
    _k.window_sum_forward(x.flat, x.table(), out.flat, out.table(), x.channels,
                          _geom(k, s, p, d), _empty(x.dtype), divmode, 0, 1.0)
    return out.result()


def _window_backward(grad_output, input_shape, kernel_size, stride, padding, ceil_mode):
    """A window-sum backward's checks: ``(g, gin, (k, s, p, d))``, ``gin`` allocated, not filled."""
    input_shape = _shape_arg(input_shape)
    g = _input(grad_output, "grad_output")
    gin = _empty_items(input_shape, g.dtype)
    k, s, p, d, size = _window(gin.ndim, kernel_size, stride, padding, 1, ceil_mode)
    _check_grad_shape(g, _mapped(gin, size, name="input_shape"))
    return g, gin, (k, s, p, d)


@overload
def avg_pool_backward(grad_output: BatchLike, input_shape: Ragged,
                      kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
                      padding: IntOrTuple = 0, ceil_mode: bool = False,
                      count_include_pad: bool = True) -> Ragged: ...
@overload
def avg_pool_backward(grad_output: BatchLike, input_shape: Sequence[int] | ArrayLike,
                      kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
                      padding: IntOrTuple = 0, ceil_mode: bool = False,
                      count_include_pad: bool = True) -> NDArray[Any]: ...
def avg_pool_backward(grad_output: BatchLike, input_shape: Sequence[int] | BatchLike,
                      kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
                      padding: IntOrTuple = 0, ceil_mode: bool = False,
                      count_include_pad: bool = True) -> NDArray[Any] | Ragged:
    """Gradient of :func:`avg_pool` with respect to ``x`` (same options).

    Parameters
    ----------
    grad_output : array, shape (N, C, *out_spatial)
    input_shape : tuple of int, the forward input's shape

    Returns
    -------
    array, shape ``input_shape``
    """
    g, gin, (k, s, p, d) = _window_backward(grad_output, input_shape, kernel_size, stride,
                                            padding, ceil_mode)
    divmode = 1 if check_flag(count_include_pad, "count_include_pad") else 2
    _k.window_sum_backward(g.flat, g.table(), gin.flat, gin.table(), g.channels, _geom(k, s, p, d),
                           _empty(g.dtype), divmode, 0, 1.0, _empty(g.dtype), _empty(g.dtype))
    return gin.result()


@overload
def lp_pool(x: Ragged, p: float, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
            ceil_mode: bool = False) -> Ragged: ...
@overload
def lp_pool(x: ArrayLike, p: float, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
            ceil_mode: bool = False) -> NDArray[Any]: ...
def lp_pool(x: BatchLike, p: float, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
            ceil_mode: bool = False) -> NDArray[Any] | Ragged:
    """Lp norm over each window, ``(sum |x|^p)^(1/p)`` (PyTorch's ``lp_pool1d/2d/3d``).

    Parameters
    ----------
    x : array, shape (N, C, *spatial)
    p : float > 0
        ``p = 2`` is the chapter's L2 norm pooling; ``p = 1`` sums magnitudes;
        large ``p`` approaches max pooling of ``|x|``.
    kernel_size, stride : int or tuple of int
        ``stride`` defaults to ``kernel_size``; no padding (as PyTorch).
    ceil_mode : bool
        Partial windows at the end take the norm of the samples they hold.

    Returns
    -------
    array, shape (N, C, *out_spatial)
    """
    x = _input(x)
    p, mode = _check_p(p)
    k, s, pad, d, size = _window(x.ndim, kernel_size, stride, 0, 1, ceil_mode)
    out = _mapped(x, size)
    _k.window_sum_forward(x.flat, x.table(), out.flat, out.table(), x.channels,
                          _geom(k, s, pad, d), _empty(x.dtype), 0, mode, p)
    return out.result()


@overload
def lp_pool_backward(grad_output: BatchLike, x: Ragged, p: float, kernel_size: IntOrTuple, *,
                     stride: IntOrTuple | None = None, ceil_mode: bool = False,
                     output: BatchLike | None = None) -> Ragged: ...
@overload
def lp_pool_backward(grad_output: BatchLike, x: ArrayLike, p: float, kernel_size: IntOrTuple, *,
                     stride: IntOrTuple | None = None, ceil_mode: bool = False,
                     output: BatchLike | None = None) -> NDArray[Any]: ...
def lp_pool_backward(grad_output: BatchLike, x: BatchLike, p: float, kernel_size: IntOrTuple, *,
                     stride: IntOrTuple | None = None, ceil_mode: bool = False,
                     output: BatchLike | None = None) -> NDArray[Any] | Ragged:
    """Gradient of :func:`lp_pool` with respect to ``x``.

    ``d out / d x_i = sign(x_i) |x_i|^(p-1) / out^(p-1)`` for every ``x_i`` in
    the window (0 where ``out`` is 0).

    Parameters
    ----------
    grad_output : array, shape (N, C, *out_spatial)
    x : array, the forward input
    p, kernel_size, stride, ceil_mode : the forward options
    output : array, optional
        The forward output; recomputed when not given.

    Returns
    -------
    array, shape of ``x``
    """
    g, x = _pair(grad_output, x)
    p, mode = _check_p(p)
    k, s, pad, d, size = _window(x.ndim, kernel_size, stride, 0, 1, ceil_mode)
    _check_grad_shape(g, _mapped(x, size))
    if output is None:
        output = lp_pool(x.result(), p, kernel_size, stride=stride, ceil_mode=ceil_mode)
    output = _input(output, "output", dtype=x.dtype)
    if not output.same_layout(g) or output.dense_shape != g.dense_shape:
        raise ShapeError(f"output has {output.describe()}, expected {g.describe()}")
    gin = _mapped(x, lambda spatial: spatial)
    _k.window_sum_backward(g.flat, g.table(), gin.flat, x.table(), x.channels,
                           _geom(k, s, pad, d), _empty(x.dtype), 0, mode, p, x.flat, output.flat)
    return gin.result()


def _gaussian_axis_weights(k, sigma):
    """One normalised 1-D weight vector per axis; their outer product is the window weight.

    The exponent is taken relative to the taps nearest the centre (weight 1),
    so a tiny ``sigma`` gives those taps all the weight instead of 0 / 0.
    """
    sigmas = _sigma(sigma, len(k))
    # the float64 vectors, their cast and concatenation: about four copies at the peak
    check_size((4 * sum(k),), np.float64, "the Gaussian window weights", "kernel_size")
    vectors = []
    for kk, sg in zip(k, sigmas):
        v = np.arange(kk, dtype=np.float64)
        v -= (kk - 1) / 2
        v *= v
        v -= v.min()
        with np.errstate(over="ignore"):  # a tiny sigma: -inf exponents, weights 0
            v /= sg  # twice, not by sg * sg: that underflows to 0 for a tiny sigma
            v /= sg
            v *= -0.5
            np.exp(v, out=v)
        v /= v.sum()
        vectors.append(v)
    return vectors


def _gaussian_kernel_weights(k, sigma, dtype):
    """The separable weights as the kernels take them: wD, wH, wW concatenated (3-D lifted)."""
    vectors = [np.ones(1)] * (3 - len(k)) + _gaussian_axis_weights(k, sigma)
    return np.concatenate(vectors).astype(dtype)


def gaussian_pool_weights(kernel_size: IntOrTuple,
                          sigma: float | Sequence[float]) -> NDArray[np.float64]:
    """The window weights of :func:`gaussian_pool`.

    Parameters
    ----------
    kernel_size : int or tuple of int
        An int gives a 1-D window.
    sigma : float or tuple of float
        Standard deviation in samples, one value or one per axis.

    Returns
    -------
    float64 array, shape ``kernel_size``
        ``prod_axes exp(-(j - (k - 1) / 2)^2 / (2 sigma^2))``, normalised to sum
        to one: largest at the window centre, falling with distance from it.
    """
    if isinstance(kernel_size, (numbers.Integral, np.integer)) and not isinstance(kernel_size, bool):
        kernel_size = (int(kernel_size),)
    try:
        n = len(tuple(kernel_size))  # type: ignore[arg-type]  # an int raised TypeError: caught
    except TypeError:
        raise ArgumentError(f"kernel_size must be an int or a tuple of ints, got {kernel_size!r}") from None
    k = as_tuple(kernel_size, n, "kernel_size", minimum=1)
    check_size(k, np.float64, "the window weights", "kernel_size")
    w = np.ones(())
    for v in _gaussian_axis_weights(k, sigma):
        w = np.multiply.outer(w, v)
    return w


def _sigma(sigma, nd):
    if isinstance(sigma, (numbers.Real, np.floating, np.integer)) and not isinstance(sigma, bool):
        values = (sigma,) * nd
    else:
        try:
            values = tuple(sigma)
        except TypeError:
            raise ArgumentError(f"sigma must be a number or one number per axis, got {sigma!r}") from None
        if isinstance(sigma, str):
            raise ArgumentError(f"sigma must be a number or one number per axis, got {sigma!r}")
        if len(values) != nd:
            raise ArgumentError(f"sigma must have one value per spatial axis ({nd}), got {sigma!r}")
    for v in values:
        check_positive_real(v, "sigma", f" (one number or one per axis; got {sigma!r})")
    return tuple(float(v) for v in values)


@overload
def gaussian_pool(x: Ragged, kernel_size: IntOrTuple, *, sigma: float | Sequence[float],
                  stride: IntOrTuple | None = None,
                  padding: IntOrTuple = 0) -> Ragged: ...
@overload
def gaussian_pool(x: ArrayLike, kernel_size: IntOrTuple, *, sigma: float | Sequence[float],
                  stride: IntOrTuple | None = None,
                  padding: IntOrTuple = 0) -> NDArray[Any]: ...
def gaussian_pool(x: BatchLike, kernel_size: IntOrTuple, *, sigma: float | Sequence[float],
                  stride: IntOrTuple | None = None,
                  padding: IntOrTuple = 0) -> NDArray[Any] | Ragged:
    """Gaussian-weighted average over each window (the chapter's distance-weighted pooling).

    Parameters
    ----------
    x : array, shape (N, C, *spatial)
    kernel_size, stride, padding : int or tuple of int
        ``stride`` defaults to ``kernel_size``; ``padding <= kernel_size // 2``,
        padding counts as zeros.
    sigma : float or tuple of float
        Standard deviation of the weights in samples (required, keyword-only).

    Returns
    -------
    array, shape (N, C, *out_spatial)
        ``sum_window w * x`` with ``w = gaussian_pool_weights(kernel_size, sigma)``.
    """
    x = _input(x)
    k, s, p, d, size = _window(x.ndim, kernel_size, stride, padding, 1, False)
    w = _gaussian_kernel_weights(k, sigma, x.dtype)
    out = _mapped(x, size)
    _k.window_sum_forward(x.flat, x.table(), out.flat, out.table(), x.channels,
                          _geom(k, s, p, d), w, 0, 0, 1.0)
    return out.result()


@overload
def gaussian_pool_backward(grad_output: BatchLike, input_shape: Ragged,
                           kernel_size: IntOrTuple, *, sigma: float | Sequence[float],
                           stride: IntOrTuple | None = None,
                           padding: IntOrTuple = 0) -> Ragged: ...
@overload
def gaussian_pool_backward(grad_output: BatchLike, input_shape: Sequence[int] | ArrayLike,
                           kernel_size: IntOrTuple, *, sigma: float | Sequence[float],
                           stride: IntOrTuple | None = None,
                           padding: IntOrTuple = 0) -> NDArray[Any]: ...
def gaussian_pool_backward(grad_output: BatchLike, input_shape: Sequence[int] | BatchLike,
                           kernel_size: IntOrTuple, *, sigma: float | Sequence[float],
                           stride: IntOrTuple | None = None,
                           padding: IntOrTuple = 0) -> NDArray[Any] | Ragged:
    """Gradient of :func:`gaussian_pool` with respect to ``x`` (same options).

    Returns
    -------
    array, shape ``input_shape``
    """
    g, gin, (k, s, p, d) = _window_backward(grad_output, input_shape, kernel_size, stride,
                                            padding, False)
    w = _gaussian_kernel_weights(k, sigma, g.dtype)
    _k.window_sum_backward(g.flat, g.table(), gin.flat, gin.table(), g.channels, _geom(k, s, p, d),
                           w, 0, 0, 1.0, _empty(g.dtype), _empty(g.dtype))
    return gin.result()


# ---------------------------------------------------------------------------
# adaptive and global pooling
# ---------------------------------------------------------------------------

def _adaptive_size(output_size, spatial):
    nd = len(spatial)
    if output_size is None:
        raise ArgumentError("output_size must be an int or a tuple of ints (None keeps an axis), got None")
    if isinstance(output_size, (numbers.Integral, np.integer)) and not isinstance(output_size, bool):
        values = (output_size,) * nd
    else:
        try:
            values = tuple(output_size)
        except TypeError:
            raise ArgumentError(
                f"output_size must be an int or a tuple of {nd} ints, got {output_size!r}") from None
        if len(values) != nd:
            raise ArgumentError(
                f"output_size must have one value per spatial axis ({nd}), got {output_size!r}")
    values = tuple(n if v is None else v for v, n in zip(values, spatial))
    return as_tuple(values, nd, "output_size", minimum=1)


@overload
def adaptive_pool(x: BatchLike, output_size: int | Sequence[int | None], kind: PoolKind = "avg",
                  *, p: float = 2, return_indices: Literal[False] = False) -> NDArray[Any]: ...
@overload
def adaptive_pool(x: BatchLike, output_size: int | Sequence[int | None], kind: PoolKind = "avg",
                  *, p: float = 2,
                  return_indices: Literal[True]) -> tuple[NDArray[Any], NDArray[np.int64]]: ...
def adaptive_pool(x: BatchLike, output_size: int | Sequence[int | None], kind: PoolKind = "avg",
                  *, p: float = 2, return_indices: bool = False) -> Any:
    """Pool to a fixed output size from any input size (PyTorch's ``adaptive_*_pool``).

    Parameters
    ----------
    x : array, shape (N, C, *spatial)
    output_size : int or tuple of int (None keeps that axis's size)
    kind : {"avg", "max", "lp"}
        ``"lp"`` (an extension) takes the ``p``-norm of each window.
    p : float > 0
        Only for ``kind="lp"``.
    return_indices : bool
        Only for ``kind="max"``: also return the argmax flat indices, for
        :func:`max_pool_backward` and :func:`max_unpool`.

    Returns
    -------
    array, shape (N, C, *output_size) [, int64 indices]
        Output ``i`` of ``m`` pools input ``[floor(i n / m), ceil((i + 1) n / m))``.
    """
    check_choice(kind, "kind", POOL_KINDS)
    x = _input(x)
    want = check_flag(return_indices, "return_indices")
    if want and kind != "max":
        raise ArgumentError(f"return_indices=True needs kind='max', got kind={kind!r}")
    pp, mode = _check_p(p)  # checked for every kind: a bad p is never silently ignored
    if kind != "lp":
        pp, mode = 1.0, 0
    out = _mapped(x, lambda spatial: _adaptive_size(output_size, spatial))
    idx = _mapped(out, lambda spatial: spatial, dtype=np.int64) if want else None
    _k.adaptive_forward(x.flat, x.table(), out.flat,
                        np.empty(0, np.int64) if idx is None else idx.flat,
                        out.table(), x.channels, _KIND_CODE[kind], mode, pp, want)
    # every item pools to the same size, so a Ragged input gives a dense result
    if len(out):
        spatial = tuple(out.shapes[0].tolist())
    elif out.dense_shape is not None:
        spatial = tuple(out.dense_shape[2:])
    else:  # a Ragged batch of no items: None (keep an axis) has no size to keep, takes 1
        spatial = _adaptive_size(output_size, (1,) * x.ndim)
    dense = (len(out), out.channels) + spatial
    result = out.flat.reshape(dense)
    return result if idx is None else (result, idx.flat.reshape(dense))


@overload
def adaptive_pool_backward(grad_output: ArrayLike, x: Ragged, kind: PoolKind = "avg", *,
                           p: float = 2, indices: ArrayLike | None = None,
                           output: ArrayLike | None = None) -> Ragged: ...
@overload
def adaptive_pool_backward(grad_output: ArrayLike, x: ArrayLike, kind: PoolKind = "avg", *,
                           p: float = 2, indices: ArrayLike | None = None,
                           output: ArrayLike | None = None) -> NDArray[Any]: ...
def adaptive_pool_backward(grad_output: ArrayLike, x: BatchLike, kind: PoolKind = "avg", *,
                           p: float = 2, indices: ArrayLike | None = None,
                           output: ArrayLike | None = None) -> NDArray[Any] | Ragged:
    """Gradient of :func:`adaptive_pool` with respect to ``x``.

    Parameters
    ----------
    grad_output : array, shape (N, C, *output_size)
    x : array, the forward input (its shape gives the windows)
    kind, p : the forward options
    indices : int array, optional
        For ``kind="max"``, the forward's argmax indices (recomputed when not given).
    output : array, optional
        For ``kind="lp"``, the forward output (recomputed when not given).

    Returns
    -------
    array, shape of ``x``
    """
    check_choice(kind, "kind", POOL_KINDS)
    dtype = result_dtype(grad_output=grad_output, x=getattr(x, "data", x))
    x = _input(x, "x", dtype=dtype)
    g = _input(grad_output, "grad_output", dtype=dtype)
    if g.ragged or g.ndim != x.ndim or g.channels != x.channels or len(g) != len(x):
        raise ShapeError(f"grad_output has {g.describe()}, which does not match x "
                         f"({x.describe()}) in rank, batch size or channels")
    # grad_output is dense (checked above), of the output size also when it has no items
    osp = tuple(g.shapes[0].tolist()) if g.dense_shape is None else tuple(g.dense_shape[2:])
    if x.ragged:  # the dense gradient, seen as a Ragged of equal items
        g = Batch(g.flat, g.channels, g.shapes)
    if kind == "max":
        if indices is None:
            _, indices = adaptive_pool(x.result(), osp, "max", return_indices=True)
        if x.ragged:
            indices = Ragged(np.asarray(indices).reshape(-1), g.shapes, g.channels)
        return max_pool_backward(g.result(), indices, x.result() if x.ragged else x.dense_shape)
    pp, mode = _check_p(p) if kind == "lp" else (1.0, 0)
    if kind == "lp":
        if output is None:
            output = adaptive_pool(x.result(), osp, "lp", p=pp)
        output = as_float_array(output, x.dtype, "output")
        if output.size != g.flat.size or output.shape[:2] != (len(g), g.channels):
            raise ShapeError(f"output has shape {output.shape}, expected that of grad_output")
        output = output.reshape(-1)
    else:
        output = _empty(x.dtype)
    gin = _mapped(x, lambda spatial: spatial)
    _k.adaptive_backward(g.flat, g.table(), gin.flat, x.table(), x.channels, _KIND_CODE[kind], mode,
                         pp, x.flat if kind == "lp" else _empty(x.dtype), output)
    return gin.result()


def global_pool(x: BatchLike, kind: PoolKind = "avg", *, p: float = 2) -> NDArray[Any]:
    """Pool each channel over all of its samples: ``(N, C, *spatial) -> (N, C)``.

    Parameters
    ----------
    x : array, shape (N, C, *spatial)
    kind : {"avg", "max", "lp"}
    p : float > 0, the norm for ``kind="lp"`` (default 2)

    Returns
    -------
    array, shape (N, C)
    """
    check_choice(kind, "kind", POOL_KINDS)
    nd = x.ndim if isinstance(x, Ragged) else check_batch(x, "x")
    out = adaptive_pool(x, (1,) * nd, kind, p=p)
    return out.reshape(out.shape[:2])


@overload
def global_pool_backward(grad_output: ArrayLike, x: Ragged, kind: PoolKind = "avg", *,
                         p: float = 2) -> Ragged: ...
@overload
def global_pool_backward(grad_output: ArrayLike, x: ArrayLike, kind: PoolKind = "avg", *,
                         p: float = 2) -> NDArray[Any]: ...
def global_pool_backward(grad_output: ArrayLike, x: BatchLike, kind: PoolKind = "avg", *,
                         p: float = 2) -> NDArray[Any] | Ragged:
    """Gradient of :func:`global_pool` with respect to ``x``.

    Parameters
    ----------
    grad_output : array, shape (N, C)
    x : array, the forward input

    Returns
    -------
    array, shape of ``x``
    """
    check_choice(kind, "kind", POOL_KINDS)
    if isinstance(x, Ragged):
        nd, batch = x.ndim, (len(x), x.channels)
    else:
        nd = check_batch(x, "x")
        batch = tuple(np.shape(x)[:2])
    if np.ndim(grad_output) != 2 or tuple(np.shape(grad_output)) != batch:
        raise ShapeError(f"grad_output must have shape (N, C) = {batch}, "
                         f"got {np.shape(grad_output)}")
    g = np.reshape(grad_output, np.shape(grad_output) + (1,) * nd)
    return adaptive_pool_backward(g, x, kind, p=p)


# ---------------------------------------------------------------------------
# maxout (cross-channel pooling)
# ---------------------------------------------------------------------------

def _pieces(pieces, channels):
    pieces = check_int(pieces, "pieces")
    if channels % pieces:
        raise ShapeError(
            f"x has {channels} channels, which is not a multiple of pieces={pieces}; maxout "
            "pools consecutive groups of `pieces` channels")
    return pieces


@overload
def maxout(x: Ragged, pieces: int) -> Ragged: ...
@overload
def maxout(x: ArrayLike, pieces: int) -> NDArray[Any]: ...
def maxout(x: BatchLike, pieces: int) -> NDArray[Any] | Ragged:
    """Cross-channel max pooling: maximum over consecutive groups of ``pieces`` channels.

    Parameters
    ----------
    x : array, shape (N, C, *spatial), 0 to 3 spatial axes
        ``C`` must be a multiple of ``pieces``.
    pieces : int >= 1

    Returns
    -------
    array, shape (N, C // pieces, *spatial)
        ``out[:, g] = max(x[:, g * pieces], ..., x[:, g * pieces + pieces - 1])``;
        ties go to the first channel, NaN propagates.
    """
    x = _input(x, min_spatial=0)
    pieces = _pieces(pieces, x.channels)
    G = x.channels // pieces
    out = _mapped(x, lambda spatial: spatial, channels=G)
    _k.maxout_forward(x.flat, x.table(), out.flat, out.table(), G, pieces)
    return out.result()


@overload
def maxout_backward(grad_output: BatchLike, x: Ragged, pieces: int) -> Ragged: ...
@overload
def maxout_backward(grad_output: BatchLike, x: ArrayLike, pieces: int) -> NDArray[Any]: ...
def maxout_backward(grad_output: BatchLike, x: BatchLike, pieces: int) -> NDArray[Any] | Ragged:
    """Gradient of :func:`maxout`: each output's gradient goes to the channel that won.

    Returns
    -------
    array, shape of ``x``
    """
    g, x = _pair(grad_output, x, min_spatial=0)
    pieces = _pieces(pieces, x.channels)
    _check_grad_shape(g, _mapped(x, lambda spatial: spatial, channels=x.channels // pieces))
    gin = _mapped(x, lambda spatial: spatial)
    _k.maxout_backward(g.flat, x.flat, x.table(), gin.flat, g.table(), g.channels, pieces)
    return gin.result()


# ---------------------------------------------------------------------------
# max unpooling
# ---------------------------------------------------------------------------

@overload
def max_unpool(x: Ragged, indices: BatchLike, kernel_size: IntOrTuple, *,
               stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
               output_size: Sequence[int] | BatchLike | None = None) -> Ragged: ...
@overload
def max_unpool(x: ArrayLike, indices: BatchLike, kernel_size: IntOrTuple, *,
               stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
               output_size: Sequence[int] | BatchLike | None = None) -> NDArray[Any]: ...
def max_unpool(x: BatchLike, indices: BatchLike, kernel_size: IntOrTuple, *,
               stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
               output_size: Sequence[int] | BatchLike | None = None) -> NDArray[Any] | Ragged:
    """Partial inverse of :func:`max_pool` for decoders (PyTorch's ``max_unpool1d/2d/3d``).

    Parameters
    ----------
    x : array, shape (N, C, *spatial)
        Pooled values.
    indices : int array, shape of ``x``
        From ``max_pool(..., return_indices=True)``: flat indices into each
        ``(n, c)`` output plane.
    kernel_size, stride, padding : the pooling's options (``stride`` defaults to ``kernel_size``)
    output_size : tuple of int, optional
        Spatial size (or full shape) of the result; by default
        :func:`sigconv.shapes.unpool_output_size`, and it must lie strictly
        within ``stride`` of that default (PyTorch's rule).  For a Ragged
        ``x``: the forward input (a Ragged) or its ``(N, nd)`` shapes.

    Returns
    -------
    array, shape (N, C, *output_size)
        Zeros, with ``x`` written at ``indices``.
    """
    x = _input(x)
    nd = x.ndim
    k = as_tuple(kernel_size, nd, "kernel_size", minimum=1)
    s = k if stride is None else as_tuple(stride, nd, "stride", minimum=1)
    p = as_tuple(padding, nd, "padding", minimum=0)
    wanted = None
    if output_size is not None and x.ragged:
        wanted = (output_size.shapes if isinstance(output_size, Ragged)
                  else np.asarray(output_size))
        if wanted.shape != (len(x), nd) or wanted.dtype.kind not in "iu":
            raise ArgumentError(
                "output_size for a Ragged x must be the forward input (a Ragged) or its "
                f"({len(x)}, {nd}) spatial shapes, got {output_size!r}")
        wanted = {i: tuple(int(v) for v in shape) for i, shape in enumerate(wanted)}

    def size(spatial, item=None):
        default = unpool_output_size(spatial, k, s, p)
        if output_size is None:
            osp = default
        else:
            try:
                osp = wanted[item] if wanted is not None else tuple(output_size)  # type: ignore[arg-type]  # TypeError caught
            except TypeError:
                raise ArgumentError(f"output_size must be a tuple of ints, got {output_size!r}") from None
            if len(osp) == nd + 2:
                osp = osp[2:]
            osp = as_tuple(osp, nd, "output_size", minimum=1)
            for axis, (o, dft, ss) in enumerate(zip(osp, default, s)):
                if not dft - ss < o < dft + ss:
                    raise ArgumentError(
                        f"output_size {osp} is invalid on spatial axis {axis}: it must lie "
                        f"strictly between {dft - ss} and {dft + ss} (default size {default})")
        if any(o < 1 for o in osp):
            raise ShapeError(f"max_unpool output size {osp} has an empty axis; check "
                             f"kernel_size, stride and padding against x's {x.describe()}")
        return osp

    if wanted is None:
        out = _mapped(x, size)
    else:  # one requested size per item
        out = x.empty_like([size(tuple(shape), i) for i, shape in enumerate(x.shapes.tolist())])
    idx = _indices(indices, x, out.positions.tolist() or 1)
    _k.index_scatter(x.flat, idx, x.table(), out.flat, out.table(), x.channels, False)
    return out.result()


@overload
def max_unpool_backward(grad_output: BatchLike, indices: Ragged) -> Ragged: ...
@overload
def max_unpool_backward(grad_output: BatchLike, indices: ArrayLike) -> NDArray[Any]: ...
def max_unpool_backward(grad_output: BatchLike, indices: BatchLike) -> NDArray[Any] | Ragged:
    """Gradient of :func:`max_unpool` with respect to ``x``: ``grad_output`` read at ``indices``.

    Parameters
    ----------
    grad_output : array, shape (N, C, *out_spatial)
    indices : int array, shape (N, C, *spatial), the forward's indices

    Returns
    -------
    array, shape of ``indices``
    """
    g = _input(grad_output, "grad_output")
    if isinstance(indices, Ragged):
        like = Batch(np.empty(0, g.dtype), indices.channels, indices.shapes)
    else:
        ishape = np.shape(indices)
        if len(ishape) != len(g.dense_shape or ()) or tuple(ishape[:2]) != tuple(g.dense_shape[:2]):
            raise ShapeError(f"indices has shape {ishape}, which does not match grad_output "
                             f"({g.describe()}) in rank, batch size or channels")
        check_spatial_nonempty(ishape, "indices")
        like = Batch(np.empty(0, g.dtype), ishape[1], [ishape[2:]] * ishape[0], ishape)
    if like.ragged != g.ragged or like.channels != g.channels or len(like) != len(g):
        raise ShapeError(f"indices ({like.describe()}) do not match grad_output ({g.describe()})")
    idx = _indices(indices, like, g.positions.tolist() or 1)
    gin = _mapped(like, lambda spatial: spatial, dtype=g.dtype)
    _k.index_gather(g.flat, g.table(), idx, gin.flat, gin.table(), g.channels)
    return gin.result()
