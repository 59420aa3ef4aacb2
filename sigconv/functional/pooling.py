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
import math
import numbers

import numpy as np

from .._kernels import pool as _k
from .._validation import (as_float_array, as_tuple, check_batch, check_choice,
                           check_spatial_nonempty, result_dtype)
from ..errors import ArgumentError, DTypeError, ShapeError
from ..ragged import item_table, lift3
from ..shapes import pool_output_size, unpool_output_size

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

def _input(x, name="x", *, min_spatial=1):
    """Validate a batch: float dtype, (N, C, *spatial), non-empty axes; contiguous copy if needed."""
    dtype = result_dtype(**{name: x})
    nd = check_batch(x, name, min_spatial=min_spatial)
    check_spatial_nonempty(np.shape(x), name)
    return as_float_array(x, dtype, name), nd


def _pair(grad_output, x, *, min_spatial=1):
    """Validate a gradient and the forward input, which must share one float dtype."""
    dtype = result_dtype(grad_output=grad_output, x=x)
    g_nd = check_batch(grad_output, "grad_output", min_spatial=min_spatial)
    x_nd = check_batch(x, "x", min_spatial=min_spatial)
    check_spatial_nonempty(np.shape(x), "x")
    if g_nd != x_nd:
        raise ShapeError(
            f"grad_output has {g_nd} spatial axes but x has {x_nd}: shapes "
            f"{np.shape(grad_output)} and {np.shape(x)}")
    return (as_float_array(grad_output, dtype, "grad_output"),
            as_float_array(x, dtype, "x"), x_nd)


def _shape_arg(shape, name="input_shape"):
    """A forward input shape ``(N, C, *spatial)`` given to a backward function."""
    try:
        shape = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        raise ArgumentError(f"{name} must be a tuple of ints (N, C, *spatial), got {shape!r}") from None
    if not 3 <= len(shape) <= 5 or any(v < 0 for v in shape) or any(v == 0 for v in shape[2:]):
        raise ShapeError(
            f"{name} must be (N, C, *spatial) with 1 to 3 non-empty spatial axes, got {shape}")
    return shape


def _flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _table(shape):
    """The kernels' per-item table of a dense batch ``(N, C, *spatial)``."""
    return item_table(shape[1], [shape[2:]] * shape[0])


def _geom(k, s, p, d):
    return np.array(lift3(k, 1) + lift3(s, 1) + lift3(p, 0) + lift3(d, 1), np.int64)


def _flat(a):
    return a.reshape(-1)


def _window(x_shape, nd, kernel_size, stride, padding, dilation, ceil_mode):
    """Resolve and check the window options; return ``k, s, p, d, output spatial size``."""
    k = as_tuple(kernel_size, nd, "kernel_size", minimum=1)
    s = k if stride is None else as_tuple(stride, nd, "stride", minimum=1)
    p = as_tuple(padding, nd, "padding", minimum=0)
    d = as_tuple(dilation, nd, "dilation", minimum=1)
    ceil_mode = _flag(ceil_mode, "ceil_mode")
    for axis, (kk, pp) in enumerate(zip(k, p)):
        if pp > kk // 2:
            raise ArgumentError(
                f"padding {p} is more than half of kernel_size {k} on spatial axis {axis}: "
                f"pooling needs padding <= kernel_size // 2 (PyTorch's rule), so that "
                f"every window overlaps the input")
    out = pool_output_size(x_shape[2:], k, s, p, d, ceil_mode=ceil_mode)
    return k, s, p, d, out


def _check_grad_shape(grad_output, expected):
    if tuple(grad_output.shape) != tuple(expected):
        raise ShapeError(
            f"grad_output has shape {tuple(grad_output.shape)} but the forward output "
            f"has shape {tuple(expected)}")


def _check_p(p):
    if (not isinstance(p, (numbers.Real, np.floating, np.integer)) or isinstance(p, bool)
            or not math.isfinite(float(p)) or float(p) <= 0):
        raise ArgumentError(f"p must be a finite number > 0 (p = 2 is L2 pooling), got {p!r}")
    p = float(p)
    return p, (1 if p == 1 else 2 if p == 2 else 3)


def _indices(indices, shape, plane, name="indices"):
    """Validate integer indices of shape ``shape`` into planes of ``plane`` samples."""
    arr = np.asarray(indices)
    if arr.dtype.kind not in "iu":
        raise DTypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.shape != tuple(shape):
        raise ShapeError(f"{name} has shape {arr.shape}, expected {tuple(shape)}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr.size and (arr.min() < -1 or arr.max() >= plane):
        raise ArgumentError(
            f"{name} must be flat indices into each (n, c) plane of {plane} samples "
            f"(0 to {plane - 1}, or -1 for none); got values from {arr.min()} to {arr.max()}")
    return arr


def _empty(dtype):
    return np.empty(0, dtype)


# ---------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------

def max_pool(x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False,
             return_indices=False):
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
    x, nd = _input(x)
    k, s, p, d, osp = _window(x.shape, nd, kernel_size, stride, padding, dilation, ceil_mode)
    want = _flag(return_indices, "return_indices")
    out = np.empty(x.shape[:2] + osp, x.dtype)
    idx = np.empty(out.shape, np.int64) if want else np.empty(0, np.int64)
    _k.max_pool_forward(_flat(x), _table(x.shape), _flat(out), _flat(idx), _table(out.shape),
                        x.shape[1], _geom(k, s, p, d), want)
    return (out, idx) if want else out


def max_pool_backward(grad_output, indices, input_shape):
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
    g, nd = _input(grad_output, "grad_output")
    if len(input_shape) != g.ndim or g.shape[:2] != input_shape[:2]:
        raise ShapeError(
            f"grad_output has shape {g.shape}, which does not match input_shape {input_shape} "
            "in rank, batch size or channels")
    idx = _indices(indices, g.shape, math.prod(input_shape[2:]))
    gin = np.empty(input_shape, g.dtype)
    _k.index_scatter(_flat(g), _flat(idx), _table(g.shape), _flat(gin), _table(input_shape),
                     g.shape[1], True)
    return gin


# ---------------------------------------------------------------------------
# average, Lp and Gaussian pooling (window sums)
# ---------------------------------------------------------------------------

def avg_pool(x, kernel_size, *, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
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
    x, nd = _input(x)
    k, s, p, d, osp = _window(x.shape, nd, kernel_size, stride, padding, 1, ceil_mode)
    divmode = 1 if _flag(count_include_pad, "count_include_pad") else 2
    out = np.empty(x.shape[:2] + osp, x.dtype)
    _k.window_sum_forward(_flat(x), _table(x.shape), _flat(out), _table(out.shape), x.shape[1],
                          _geom(k, s, p, d), _empty(x.dtype), divmode, 0, 1.0)
    return out


def avg_pool_backward(grad_output, input_shape, kernel_size, *, stride=None, padding=0,
                      ceil_mode=False, count_include_pad=True):
    """Gradient of :func:`avg_pool` with respect to ``x`` (same options).

    Parameters
    ----------
    grad_output : array, shape (N, C, *out_spatial)
    input_shape : tuple of int, the forward input's shape

    Returns
    -------
    array, shape ``input_shape``
    """
    input_shape = _shape_arg(input_shape)
    g, nd = _input(grad_output, "grad_output")
    k, s, p, d, osp = _window(input_shape, len(input_shape) - 2, kernel_size, stride, padding,
                              1, ceil_mode)
    _check_grad_shape(g, input_shape[:2] + osp)
    divmode = 1 if _flag(count_include_pad, "count_include_pad") else 2
    gin = np.empty(input_shape, g.dtype)
    _k.window_sum_backward(_flat(g), _table(g.shape), _flat(gin), _table(input_shape),
                           g.shape[1], _geom(k, s, p, d), _empty(g.dtype), divmode, 0, 1.0,
                           _empty(g.dtype), _empty(g.dtype))
    return gin


def lp_pool(x, p, kernel_size, *, stride=None, ceil_mode=False):
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
    x, nd = _input(x)
    p, mode = _check_p(p)
    k, s, pad, d, osp = _window(x.shape, nd, kernel_size, stride, 0, 1, ceil_mode)
    out = np.empty(x.shape[:2] + osp, x.dtype)
    _k.window_sum_forward(_flat(x), _table(x.shape), _flat(out), _table(out.shape), x.shape[1],
                          _geom(k, s, pad, d), _empty(x.dtype), 0, mode, p)
    return out


def lp_pool_backward(grad_output, x, p, kernel_size, *, stride=None, ceil_mode=False,
                     output=None):
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
    g, x, nd = _pair(grad_output, x)
    p, mode = _check_p(p)
    k, s, pad, d, osp = _window(x.shape, nd, kernel_size, stride, 0, 1, ceil_mode)
    _check_grad_shape(g, x.shape[:2] + osp)
    if output is None:
        output = lp_pool(x, p, kernel_size, stride=stride, ceil_mode=ceil_mode)
    else:
        output = as_float_array(output, x.dtype, "output")
        if output.shape != g.shape:
            raise ShapeError(f"output has shape {output.shape}, expected {g.shape}")
    gin = np.empty(x.shape, x.dtype)
    _k.window_sum_backward(_flat(g), _table(g.shape), _flat(gin), _table(x.shape), x.shape[1],
                           _geom(k, s, pad, d), _empty(x.dtype), 0, mode, p,
                           _flat(x), _flat(output))
    return gin


def _gaussian_axis_weights(k, sigma):
    """One normalised 1-D weight vector per axis; their outer product is the window weight."""
    vectors = []
    for kk, sg in zip(k, _sigma(sigma, len(k))):
        j = np.arange(kk) - (kk - 1) / 2
        v = np.exp(-j * j / (2 * sg * sg))
        vectors.append(v / v.sum())
    return vectors


def _gaussian_kernel_weights(k, sigma, dtype):
    """The separable weights as the kernels take them: wD, wH, wW concatenated (3-D lifted)."""
    vectors = [np.ones(1)] * (3 - len(k)) + _gaussian_axis_weights(k, sigma)
    return np.concatenate(vectors).astype(dtype)


def gaussian_pool_weights(kernel_size, sigma):
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
        n = len(tuple(kernel_size))
    except TypeError:
        raise ArgumentError(f"kernel_size must be an int or a tuple of ints, got {kernel_size!r}") from None
    k = as_tuple(kernel_size, n, "kernel_size", minimum=1)
    w = np.ones(())
    for v in _gaussian_axis_weights(k, sigma):
        w = np.multiply.outer(w, v)
    return w


def _sigma(sigma, nd):
    if isinstance(sigma, (numbers.Real, np.floating, np.integer)) and not isinstance(sigma, bool):
        values = (float(sigma),) * nd
    else:
        try:
            values = tuple(float(v) for v in sigma)
        except (TypeError, ValueError):
            raise ArgumentError(f"sigma must be a number or one number per axis, got {sigma!r}") from None
        if len(values) != nd:
            raise ArgumentError(f"sigma must have one value per spatial axis ({nd}), got {sigma!r}")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ArgumentError(f"sigma must be finite and > 0, got {sigma!r}")
    return values


def gaussian_pool(x, kernel_size, *, sigma, stride=None, padding=0):
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
    x, nd = _input(x)
    k, s, p, d, osp = _window(x.shape, nd, kernel_size, stride, padding, 1, False)
    w = _gaussian_kernel_weights(k, sigma, x.dtype)
    out = np.empty(x.shape[:2] + osp, x.dtype)
    _k.window_sum_forward(_flat(x), _table(x.shape), _flat(out), _table(out.shape), x.shape[1],
                          _geom(k, s, p, d), w, 0, 0, 1.0)
    return out


def gaussian_pool_backward(grad_output, input_shape, kernel_size, *, sigma, stride=None,
                           padding=0):
    """Gradient of :func:`gaussian_pool` with respect to ``x`` (same options).

    Returns
    -------
    array, shape ``input_shape``
    """
    input_shape = _shape_arg(input_shape)
    g, nd = _input(grad_output, "grad_output")
    k, s, p, d, osp = _window(input_shape, len(input_shape) - 2, kernel_size, stride, padding,
                              1, False)
    _check_grad_shape(g, input_shape[:2] + osp)
    w = _gaussian_kernel_weights(k, sigma, g.dtype)
    gin = np.empty(input_shape, g.dtype)
    _k.window_sum_backward(_flat(g), _table(g.shape), _flat(gin), _table(input_shape),
                           g.shape[1], _geom(k, s, p, d), w, 0, 0, 1.0,
                           _empty(g.dtype), _empty(g.dtype))
    return gin


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


def adaptive_pool(x, output_size, kind="avg", *, p=2, return_indices=False):
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
    kind = check_choice(kind, "kind", POOL_KINDS)
    x, nd = _input(x)
    osp = _adaptive_size(output_size, x.shape[2:])
    want = _flag(return_indices, "return_indices")
    if want and kind != "max":
        raise ArgumentError(f"return_indices=True needs kind='max', got kind={kind!r}")
    pp, mode = _check_p(p) if kind == "lp" else (1.0, 0)
    out = np.empty(x.shape[:2] + osp, x.dtype)
    idx = np.empty(out.shape, np.int64) if want else np.empty(0, np.int64)
    _k.adaptive_forward(_flat(x), _table(x.shape), _flat(out), _flat(idx), _table(out.shape),
                        x.shape[1], _KIND_CODE[kind], mode, pp, want)
    return (out, idx) if want else out


def adaptive_pool_backward(grad_output, x, kind="avg", *, p=2, indices=None, output=None):
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
    kind = check_choice(kind, "kind", POOL_KINDS)
    g, x, nd = _pair(grad_output, x)
    if g.shape[:2] != x.shape[:2]:
        raise ShapeError(f"grad_output has shape {g.shape}, which does not match x {x.shape} "
                         "in batch size or channels")
    check_spatial_nonempty(g.shape, "grad_output")
    osp = g.shape[2:]
    if kind == "max":
        if indices is None:
            _, indices = adaptive_pool(x, osp, "max", return_indices=True)
        return max_pool_backward(g, indices, x.shape)
    pp, mode = _check_p(p) if kind == "lp" else (1.0, 0)
    if kind == "lp":
        if output is None:
            output = adaptive_pool(x, osp, "lp", p=pp)
        output = as_float_array(output, x.dtype, "output")
        if output.shape != g.shape:
            raise ShapeError(f"output has shape {output.shape}, expected {g.shape}")
    else:
        output = _empty(x.dtype)
    gin = np.empty(x.shape, x.dtype)
    _k.adaptive_backward(_flat(g), _table(g.shape), _flat(gin), _table(x.shape), x.shape[1],
                         _KIND_CODE[kind], mode, pp,
                         _flat(x) if kind == "lp" else _empty(x.dtype), _flat(output))
    return gin


def global_pool(x, kind="avg", *, p=2):
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
    kind = check_choice(kind, "kind", POOL_KINDS)
    nd = check_batch(x, "x")
    out = adaptive_pool(x, (1,) * nd, kind, p=p)
    return out.reshape(out.shape[:2])


def global_pool_backward(grad_output, x, kind="avg", *, p=2):
    """Gradient of :func:`global_pool` with respect to ``x``.

    Parameters
    ----------
    grad_output : array, shape (N, C)
    x : array, the forward input

    Returns
    -------
    array, shape of ``x``
    """
    kind = check_choice(kind, "kind", POOL_KINDS)
    nd = check_batch(x, "x")
    if np.ndim(grad_output) != 2 or tuple(np.shape(grad_output)) != tuple(np.shape(x)[:2]):
        raise ShapeError(f"grad_output must have shape (N, C) = {tuple(np.shape(x)[:2])}, "
                         f"got {np.shape(grad_output)}")
    g = np.reshape(grad_output, np.shape(grad_output) + (1,) * nd)
    return adaptive_pool_backward(g, x, kind, p=p)


# ---------------------------------------------------------------------------
# maxout (cross-channel pooling)
# ---------------------------------------------------------------------------

def _pieces(pieces, channels):
    if not isinstance(pieces, (numbers.Integral, np.integer)) or isinstance(pieces, bool) or pieces < 1:
        raise ArgumentError(f"pieces must be an int >= 1, got {pieces!r}")
    pieces = int(pieces)
    if channels % pieces:
        raise ShapeError(
            f"x has {channels} channels, which is not a multiple of pieces={pieces}; maxout "
            "pools consecutive groups of `pieces` channels")
    return pieces


def maxout(x, pieces):
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
    x, nd = _input(x, min_spatial=0)
    pieces = _pieces(pieces, x.shape[1])
    G = x.shape[1] // pieces
    out = np.empty((x.shape[0], G) + x.shape[2:], x.dtype)
    _k.maxout_forward(_flat(x), _table(x.shape), _flat(out), _table(out.shape), G, pieces)
    return out


def maxout_backward(grad_output, x, pieces):
    """Gradient of :func:`maxout`: each output's gradient goes to the channel that won.

    Returns
    -------
    array, shape of ``x``
    """
    g, x, nd = _pair(grad_output, x, min_spatial=0)
    pieces = _pieces(pieces, x.shape[1])
    _check_grad_shape(g, (x.shape[0], x.shape[1] // pieces) + x.shape[2:])
    gin = np.empty(x.shape, x.dtype)
    _k.maxout_backward(_flat(g), _flat(x), _table(x.shape), _flat(gin), _table(g.shape),
                       g.shape[1], pieces)
    return gin


# ---------------------------------------------------------------------------
# max unpooling
# ---------------------------------------------------------------------------

def max_unpool(x, indices, kernel_size, *, stride=None, padding=0, output_size=None):
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
        within ``stride`` of that default (PyTorch's rule).

    Returns
    -------
    array, shape (N, C, *output_size)
        Zeros, with ``x`` written at ``indices``.
    """
    x, nd = _input(x)
    k = as_tuple(kernel_size, nd, "kernel_size", minimum=1)
    s = k if stride is None else as_tuple(stride, nd, "stride", minimum=1)
    p = as_tuple(padding, nd, "padding", minimum=0)
    default = unpool_output_size(x.shape[2:], k, s, p)
    if output_size is None:
        osp = default
    else:
        try:
            osp = tuple(output_size)
        except TypeError:
            raise ArgumentError(f"output_size must be a tuple of ints, got {output_size!r}") from None
        if len(osp) == nd + 2:
            osp = osp[2:]
        osp = as_tuple(osp, nd, "output_size", minimum=1)
        for axis, (o, dft, ss) in enumerate(zip(osp, default, s)):
            if not dft - ss < o < dft + ss:
                raise ArgumentError(
                    f"output_size {osp} is invalid on spatial axis {axis}: it must lie strictly "
                    f"between {dft - ss} and {dft + ss} (default size {default})")
    if any(o < 1 for o in osp):
        raise ShapeError(f"max_unpool output size {osp} has an empty axis; check kernel_size, "
                         f"stride and padding against x's shape {x.shape}")
    idx = _indices(indices, x.shape, math.prod(osp))
    out = np.empty(x.shape[:2] + osp, x.dtype)
    _k.index_scatter(_flat(x), _flat(idx), _table(x.shape), _flat(out), _table(out.shape),
                     x.shape[1], False)
    return out


def max_unpool_backward(grad_output, indices):
    """Gradient of :func:`max_unpool` with respect to ``x``: ``grad_output`` read at ``indices``.

    Parameters
    ----------
    grad_output : array, shape (N, C, *out_spatial)
    indices : int array, shape (N, C, *spatial), the forward's indices

    Returns
    -------
    array, shape of ``indices``
    """
    g, nd = _input(grad_output, "grad_output")
    ishape = np.shape(indices)
    if len(ishape) != g.ndim or tuple(ishape[:2]) != g.shape[:2]:
        raise ShapeError(f"indices has shape {ishape}, which does not match grad_output "
                         f"{g.shape} in rank, batch size or channels")
    check_spatial_nonempty(ishape, "indices")
    idx = _indices(indices, ishape, math.prod(g.shape[2:]))
    gin = np.empty(idx.shape, g.dtype)
    _k.index_gather(_flat(g), _table(g.shape), _flat(idx), _flat(gin), _table(idx.shape),
                    g.shape[1])
    return gin
