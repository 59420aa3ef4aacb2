r"""Separable convolution and the detection of separable kernels (chapter 9.8).

The chapter (section 9.8): "When a d-dimensional kernel can be expressed as
the outer product of d vectors, one vector per dimension, the kernel is
called separable.  When the kernel is separable, naive convolution is
inefficient.  It is equivalent to compose d one-dimensional convolutions with
each of these vectors.  The composed approach is significantly faster than
performing one d-dimensional convolution with their outer product.  [...] If
the kernel is w elements wide in each dimension, then naive multidimensional
convolution requires O(w^d) runtime and parameter storage space, while
separable convolution requires O(w x d) runtime and parameter storage space."

:func:`separable_conv` is depthwise: every channel is filtered on its own,

.. math:: Z_{n,c} = f^{(1)}_c \star_1 f^{(2)}_c \star_2 \dots f^{(d)}_c \star_d V_{n,c}

which equals :func:`sigconv.functional.conv` with ``groups = C`` and the
weight ``K[c, 0] = f^{(1)}_c \otimes \dots \otimes f^{(d)}_c`` (for one
channel, an ordinary single-channel convolution).  Padding, stride and
dilation act per axis, so each 1-D pass applies its own axis's share of them.

:func:`separable_factors` finds the factors of a kernel, or says it has none:
the best rank-1 approximation (SVD for 2-D; higher-order SVD refined by
alternating rank-1 updates for 3-D) is accepted when its residual is at most
``rtol`` times the kernel's norm.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import (_is_finite_real, as_float_array, check_flag, result_dtype,
                           shape_argument as _shape_of)
from ..errors import ArgumentError, ShapeError
from ..ragged import Ragged, map_grad_input, map_items, sum_over_items
from ..ragged import Batch
from ._core import (_check_array, _check_grad_output, _forward, _geometry, _grad_input,
                    _grad_weight)
from ..typing import BatchLike, IntOrTuple, Padding

__all__ = ["separable_conv", "separable_conv_grad_input", "separable_conv_grad_factors",
           "separable_factors"]

#: Alternating rank-1 refinement sweeps for 3-D kernels.
_ALS_SWEEPS = 8


# ---------------------------------------------------------------------------
# detection
# ---------------------------------------------------------------------------

def _default_rtol(dtype):
    """100 machine epsilons of ``dtype``: float32 ~1.2e-5, float64 ~2.2e-14."""
    return 100 * float(np.finfo(dtype).eps)


def _rank1(kernel):
    """Best rank-1 factors of a 1-3 axis float64 ``kernel`` (a list of vectors)."""
    d = kernel.ndim
    if d == 1:
        return [kernel.copy()]
    if d == 2:
        u, s, vt = np.linalg.svd(kernel, full_matrices=False)
        return [u[:, 0] * s[0], vt[0]]
    # higher-order SVD: leading left singular vector of each unfolding
    vectors = []
    for axis in range(d):
        unfolded = np.moveaxis(kernel, axis, 0).reshape(kernel.shape[axis], -1)
        u, _, _ = np.linalg.svd(unfolded, full_matrices=False)
        vectors.append(u[:, 0])
    # alternating rank-1 (higher-order power) sweeps
    for _ in range(_ALS_SWEEPS):
        vectors[0] = np.einsum("ijk,j,k->i", kernel, vectors[1], vectors[2])
        vectors[0] /= np.linalg.norm(vectors[0]) or 1.0
        vectors[1] = np.einsum("ijk,i,k->j", kernel, vectors[0], vectors[2])
        vectors[1] /= np.linalg.norm(vectors[1]) or 1.0
        vectors[2] = np.einsum("ijk,i,j->k", kernel, vectors[0], vectors[1])
        scale = np.linalg.norm(vectors[2])
        vectors[2] /= scale or 1.0
    core = np.einsum("ijk,i,j,k->", kernel, *vectors)
    return [vectors[0] * core, vectors[1], vectors[2]]


def _pivot_screen(kernel):
    """Cheap necessary test for rank 1: rebuild the kernel from the lines through its largest entry.

    For a rank-1 kernel ``K = u (x) v (x) w`` the lines through any non-zero
    entry ``K[i, j, k]`` rebuild it exactly:
    ``K = K[:, j, k] (x) K[i, :, k] (x) K[i, j, :] / K[i, j, k]^2``.  A kernel
    far from rank 1 (a random one) fails this at once, without an SVD.
    """
    if kernel.ndim == 1:
        return True
    pivot = np.unravel_index(np.argmax(np.abs(kernel)), kernel.shape)
    value = kernel[pivot]
    if value == 0:
        return True                                   # all zero
    lines = []
    for axis in range(kernel.ndim):
        index: list[Any] = list(pivot)
        index[axis] = slice(None)
        lines.append(kernel[tuple(index)])
    rebuilt = _outer(lines) / value ** (kernel.ndim - 1)
    return np.linalg.norm(kernel - rebuilt) <= 0.1 * np.linalg.norm(kernel)


def _outer(factors):
    result = factors[0]
    for f in factors[1:]:
        result = np.multiply.outer(result, f)
    return result


def _balance(factors):
    """Equal norms for every factor, the largest entry of each non-negative."""
    norms = [np.linalg.norm(f) for f in factors]
    total = float(np.prod(norms))
    if total == 0.0:
        return [np.zeros_like(f) for f in factors]
    share = total ** (1.0 / len(factors))
    out, sign = [], 1.0
    for f, norm in zip(factors, norms):
        g = f / norm * share
        if g[np.argmax(np.abs(g))] < 0:
            g, sign = -g, -sign
        out.append(g)
    out[0] = out[0] * sign
    return out


def separable_factors(kernel: ArrayLike, *, rtol: float | None = None,
                      per_channel: bool = False) -> list[NDArray[Any]] | None:
    """The 1-D factors of a separable kernel, or None when it is not separable.

    Parameters
    ----------
    kernel : array_like, shape (*kernel) or (C, *kernel)
        A kernel with 1 to 3 axes; with ``per_channel`` the first axis
        holds one kernel per channel (e.g. ``weight[:, 0]`` of a depthwise
        convolution weight).
    rtol : float, optional
        Largest accepted residual of the rank-1 fit, relative to the kernel's
        Frobenius norm (per channel).  Default: 100 machine epsilons of the
        kernel's float dtype (about ``1.2e-5`` for float32, ``2.2e-14`` for
        float64), so that convolving with the factors gives the same result
        as with the kernel within the dtype's tolerance.
    per_channel : bool
        Factor every channel's kernel separately.

    Returns
    -------
    list of ndarray or None
        ``d`` factors, shape ``(k_a,)`` (or ``(C, k_a)`` with
        ``per_channel``), in the kernel's float dtype, whose outer product
        equals ``kernel``; each factor carries an equal share of the norm and
        its largest entry is non-negative.  A 1-D kernel is its own factor;
        an all-zero kernel has zero factors.  None when some (channel's)
        kernel is not rank 1 within ``rtol``, or holds NaN or infinity.
    """
    array = _check_array(kernel, "kernel", "(*kernel) or (C, *kernel)")
    dtype = result_dtype(kernel=array)
    per_channel = check_flag(per_channel, "per_channel")
    lead = 1 if per_channel else 0
    if not 1 <= array.ndim - lead <= 3:
        layout = "(C, *kernel)" if per_channel else "(*kernel)"
        raise ShapeError(f"kernel must have shape {layout} with 1 to 3 kernel axes, "
                         f"got shape {array.shape}")
    if array.size == 0:
        raise ShapeError(f"kernel has an empty axis: shape {array.shape}")
    if rtol is None:
        rtol = _default_rtol(dtype)
    if not _is_finite_real(rtol) or not float(rtol) >= 0:
        raise ArgumentError(f"rtol must be a finite number >= 0, got {rtol!r}")
    tolerance = float(rtol)
    values = as_float_array(array, np.float64, "kernel")
    if not np.all(np.isfinite(values)):
        return None
    channels = values if per_channel else values[None]
    found = []
    for k in channels:
        if not _pivot_screen(k):
            return None
        factors = _balance(_rank1(k))
        norm = np.linalg.norm(k)
        if np.linalg.norm(k - _outer(factors)) > tolerance * norm:
            return None
        found.append(factors)
    result = [np.stack([f[a] for f in found]) for a in range(values.ndim - lead)]
    if not per_channel:
        result = [r[0] for r in result]
    return [np.ascontiguousarray(r, dtype=dtype) for r in result]


# ---------------------------------------------------------------------------
# separable convolution
# ---------------------------------------------------------------------------

def _check_factors(factors, x_shape, nd):
    """Validate ``factors`` against an input of shape ``x_shape``; return arrays and their dtype."""
    if isinstance(factors, np.ndarray) or not isinstance(factors, (list, tuple)):
        raise ArgumentError(
            f"factors must be a list or tuple of {nd} one-dimensional kernels (one per spatial "
            f"axis), got {type(factors).__name__}")
    if len(factors) != nd:
        raise ShapeError(
            f"factors must hold one kernel per spatial axis: x has shape {tuple(x_shape)} "
            f"({nd} spatial axes) but {len(factors)} factors were given")
    arrays = []
    channels = x_shape[1]
    for axis, f in enumerate(factors):
        a = _check_array(f, f"factors[{axis}]", "(k,) or (C, k)")
        if a.ndim == 2 and a.shape[0] != channels:
            raise ShapeError(
                f"factors[{axis}] has shape {a.shape}: a per-channel factor needs one row per "
                f"channel of x ({channels}), shape ({channels}, k)")
        if a.ndim not in (1, 2):
            raise ShapeError(
                f"factors[{axis}] must be one-dimensional, shape (k,), or per channel, shape "
                f"(C, k); got shape {a.shape}")
        if a.shape[-1] == 0:
            raise ShapeError(f"factors[{axis}] is empty: shape {a.shape}")
        arrays.append(a)
    return arrays


def _setup(x_shape, factors, stride, padding, dilation, flip, x_name="x"):
    """Validate the problem; return the factor arrays and the :class:`ConvGeometry`."""
    x_shape = tuple(x_shape)
    if not 3 <= len(x_shape) <= 5:
        raise ShapeError(f"{x_name} must have shape (N, C, *spatial) with 1 to 3 spatial axes, "
                         f"got shape {x_shape} ({len(x_shape)}-d)")
    nd = len(x_shape) - 2
    arrays = _check_factors(factors, x_shape, nd)
    channels = x_shape[1]
    kernel = tuple(f.shape[-1] for f in arrays)
    geometry = _geometry(x_shape, (channels, 1) + kernel, stride=stride, padding=padding,
                         dilation=dilation, groups=max(channels, 1), flip=flip,
                         x_name=x_name, weight_name="the factors' outer product")
    return arrays, geometry


def _named(arrays):
    return {f"factors[{a}]": f for a, f in enumerate(arrays)}


def _per_channel(arrays, channels, dtype, flip):
    """Every factor as a contiguous ``(C, k_a)`` array of ``dtype`` (reversed for ``flip``)."""
    result = []
    for a, f in enumerate(arrays):
        f = as_float_array(f[..., ::-1] if flip else f, dtype, f"factors[{a}]")
        result.append(np.ascontiguousarray(np.broadcast_to(f, (channels, f.shape[-1]))))
    return result


def _axis_weight(f, axis, nd):
    """``(C, 1, 1.., k, ..1)``: the per-channel factor ``f`` as a conv weight along ``axis``."""
    shape = [1] * nd
    shape[axis] = f.shape[-1]
    return f.reshape((f.shape[0], 1) + tuple(shape))


def _axis_options(geometry, axis):
    nd = geometry.ndim
    stride = tuple(geometry.stride[a] if a == axis else 1 for a in range(nd))
    dilation = tuple(geometry.dilation[a] if a == axis else 1 for a in range(nd))
    pad_lo = tuple(geometry.padding[a][0] if a == axis else 0 for a in range(nd))
    return dict(stride=stride, dilation=dilation, pad_lo=pad_lo)


def _passes(x, factors, geometry, axes):
    """Apply the 1-D passes of ``axes`` in turn; return every intermediate (inputs first)."""
    channels, nd = x.shape[1], geometry.ndim
    stages = [x]
    for axis in axes:
        v = stages[-1]
        opts = _axis_options(geometry, axis)
        out_shape = list(v.shape)
        out_shape[2 + axis] = geometry.out_shape[2 + axis]
        out = Batch.layout(tuple(out_shape), v.dtype)
        stages.append(_forward(Batch.of(v), _axis_weight(factors[axis], axis, nd), None, out,
                               opts["pad_lo"], groups=channels, stride=opts["stride"],
                               dilation=opts["dilation"], input_dilation=(1,) * nd,
                               method="auto").result())
    return stages


def _pass_order(geometry):
    """Axes in the order that shrinks the data soonest (largest size reduction first)."""
    spatial, out = geometry.x_shape[2:], geometry.out_shape[2:]
    return sorted(range(geometry.ndim), key=lambda a: out[a] / spatial[a])


@overload
def separable_conv(x: Ragged, factors: Sequence[ArrayLike], bias: ArrayLike | None = None, *,
                   stride: IntOrTuple = 1, padding: Padding = "valid", dilation: IntOrTuple = 1,
                   flip: bool = False) -> Ragged: ...
@overload
def separable_conv(x: ArrayLike, factors: Sequence[ArrayLike], bias: ArrayLike | None = None, *,
                   stride: IntOrTuple = 1, padding: Padding = "valid", dilation: IntOrTuple = 1,
                   flip: bool = False) -> NDArray[Any]: ...
def separable_conv(x: BatchLike, factors: Sequence[ArrayLike], bias: ArrayLike | None = None, *,
                   stride: IntOrTuple = 1, padding: Padding = "valid", dilation: IntOrTuple = 1,
                   flip: bool = False) -> NDArray[Any] | Ragged:
    """Depthwise convolution with a separable kernel, one 1-D pass per spatial axis.

    Parameters
    ----------
    x : array_like, shape (N, C, *spatial)
        A batch with 1, 2 or 3 spatial axes.
    factors : sequence of array_like
        One kernel per spatial axis, each of shape ``(k_a,)`` (applied to
        every channel) or ``(C, k_a)`` (one row per channel); both kinds may
        be mixed.
    bias : array_like, shape (C,), optional
    stride, padding, dilation, flip
        As for :func:`sigconv.functional.conv`, with the kernel
        ``factors[0] (x) factors[1] (x) ...``.

    Returns
    -------
    ndarray, shape (N, C, *out_spatial)
        Equal to ``conv(x, weight, bias, groups=C, ...)`` with
        ``weight[c, 0] = outer(factors[0][c], factors[1][c], ...)``, at a cost of
        ``sum_a k_a`` instead of ``prod_a k_a`` multiply-adds per output.
    """
    if isinstance(x, Ragged):  # item by item: each item sizes its own work
        return map_items(separable_conv, x, factors, bias, stride=stride, padding=padding,
            dilation=dilation, flip=flip)
    x = _check_array(x, "x")
    arrays, geometry = _setup(x.shape, factors, stride, padding, dilation, flip)
    dtype = result_dtype(x=x, bias=bias, **_named(arrays))
    if bias is not None and np.shape(bias) != (x.shape[1],):
        raise ShapeError(f"bias must have shape ({x.shape[1]},) (one value per channel), "
                         f"got shape {np.shape(bias)}")
    x = as_float_array(x, dtype, "x")
    per_channel = _per_channel(arrays, x.shape[1], dtype, flip)
    bias = None if bias is None else as_float_array(bias, dtype, "bias")
    if x.shape[0] == 0:
        return np.zeros(geometry.out_shape, dtype=x.dtype)
    out = _passes(x, per_channel, geometry, _pass_order(geometry))[-1]
    if bias is not None:
        out += bias.reshape((1, -1) + (1,) * geometry.ndim)
    return out


def _adjoint_passes(grad, factors, geometry, axes, shapes_before):
    """Apply the adjoints of the passes of ``axes`` (given in forward order) in reverse."""
    channels, nd = geometry.x_shape[1], geometry.ndim
    for axis, shape in zip(reversed(axes), reversed(shapes_before)):
        opts = _axis_options(geometry, axis)
        grad = _grad_input(Batch.of(grad), _axis_weight(factors[axis], axis, nd), None,
                           Batch.layout(shape, grad.dtype), opts["pad_lo"], groups=channels,
                           stride=opts["stride"], dilation=opts["dilation"], flip=False,
                           method="auto").result()
    return grad


def _stage_shapes(geometry, axes):
    shape = list(geometry.x_shape)
    result = []
    for axis in axes:
        result.append(tuple(shape))
        shape[2 + axis] = geometry.out_shape[2 + axis]
    return result


@overload
def separable_conv_grad_input(grad_output: Ragged, factors: Sequence[ArrayLike],
                              input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                              padding: Padding = "valid", dilation: IntOrTuple = 1,
                              flip: bool = False) -> Ragged: ...
@overload
def separable_conv_grad_input(grad_output: ArrayLike, factors: Sequence[ArrayLike],
                              input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                              padding: Padding = "valid", dilation: IntOrTuple = 1,
                              flip: bool = False) -> NDArray[Any]: ...
def separable_conv_grad_input(grad_output: BatchLike, factors: Sequence[ArrayLike],
                              input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                              padding: Padding = "valid", dilation: IntOrTuple = 1,
                              flip: bool = False) -> NDArray[Any] | Ragged:
    """Gradient of :func:`separable_conv` with respect to its input.

    The adjoint 1-D passes, in reverse order.

    Parameters
    ----------
    grad_output : array_like, shape (N, C, *out_spatial)
    factors : sequence of array_like
        As given to :func:`separable_conv`.
    input_shape : tuple of int
        ``(N, C, *spatial)``.

    Returns
    -------
    ndarray, shape input_shape
    """
    if isinstance(grad_output, Ragged):  # item by item: each item sizes its own work
        return map_grad_input(separable_conv_grad_input, grad_output, factors, input_shape,
            stride=stride, padding=padding, dilation=dilation, flip=flip)
    grad_output = _check_array(grad_output, "grad_output")
    input_shape = _shape_of(input_shape, "input_shape")
    arrays, geometry = _setup(input_shape, factors, stride, padding, dilation, flip,
                              "input_shape")
    _check_grad_output(grad_output, geometry.out_shape)
    dtype = result_dtype(grad_output=grad_output, **_named(arrays))
    grad = as_float_array(grad_output, dtype, "grad_output")
    per_channel = _per_channel(arrays, input_shape[1], dtype, flip)
    axes = _pass_order(geometry)
    if input_shape[0] == 0:
        return np.zeros(input_shape, dtype=dtype)
    return _adjoint_passes(grad, per_channel, geometry, axes, _stage_shapes(geometry, axes))


def separable_conv_grad_factors(x: BatchLike, grad_output: BatchLike, factors: Sequence[ArrayLike],
                                *, stride: IntOrTuple = 1, padding: Padding = "valid",
                                dilation: IntOrTuple = 1, flip: bool = False) -> list[NDArray[Any]]:
    """Gradients of :func:`separable_conv` with respect to each factor.

    The gradient of factor ``a`` is the weight gradient of pass ``a``, whose
    input is ``x`` after the passes before it and whose output gradient is
    ``grad_output`` after the adjoints of the passes behind it.

    Parameters
    ----------
    x : array_like, shape (N, C, *spatial)
    grad_output : array_like, shape (N, C, *out_spatial)
    factors : sequence of array_like
        As given to :func:`separable_conv`.

    Returns
    -------
    list of ndarray
        One gradient per factor, of the factor's own shape: ``(k_a,)`` for a
        factor shared by every channel (summed over channels), ``(C, k_a)``
        for a per-channel factor.
    """
    if isinstance(x, Ragged):  # item by item: each item sizes its own work
        return sum_over_items(separable_conv_grad_factors, x, grad_output, factors, stride=stride,
            padding=padding, dilation=dilation, flip=flip)
    x, grad_output = _check_array(x, "x"), _check_array(grad_output, "grad_output")
    arrays, geometry = _setup(x.shape, factors, stride, padding, dilation, flip)
    _check_grad_output(grad_output, geometry.out_shape)
    dtype = result_dtype(x=x, grad_output=grad_output, **_named(arrays))
    x = as_float_array(x, dtype, "x")
    grad = as_float_array(grad_output, dtype, "grad_output")
    per_channel = _per_channel(arrays, x.shape[1], dtype, flip)
    axes = _pass_order(geometry)
    channels, nd = x.shape[1], geometry.ndim
    stages = _passes(x, per_channel, geometry, axes)
    before = _stage_shapes(geometry, axes)
    grads: list[Any] = [None] * nd
    back = grad
    for position in reversed(range(nd)):
        axis = axes[position]
        weight_shape = _axis_weight(per_channel[axis], axis, nd).shape
        opts = _axis_options(geometry, axis)
        g = _grad_weight(Batch.of(stages[position]), Batch.of(back), weight_shape, opts["pad_lo"],
                         groups=channels, stride=opts["stride"], dilation=opts["dilation"])
        g = g.reshape(channels, -1)
        if flip:
            g = g[:, ::-1]
        grads[axis] = np.ascontiguousarray(g if arrays[axis].ndim == 2 else g.sum(axis=0))
        if position:
            back = _adjoint_passes(back, per_channel, geometry, [axis], [before[position]])
    return grads
