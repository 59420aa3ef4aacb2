r"""Transposed convolution (chapter 9.5): the input gradient of :func:`conv` as a layer.

Notation.  For input ``x`` of shape ``(N, C_in, *in)`` and weight ``w`` of
shape ``(C_in, C_out / groups, *kernel)`` (PyTorch's
``conv_transpose1d/2d/3d`` layout), stride ``s``, dilation ``d``, padding
``(lo, hi)`` and output padding ``op``, every input sample scatters its
kernel into the output:

.. math:: y_{n, o, \mathbf{i} s + \mathbf{m} d - \mathbf{lo}}
          \mathrel{+}= x_{n, c, \mathbf{i}} \, w_{c, o, \mathbf{m}}

for every input channel ``c`` of output channel ``o``'s group, with
``out = (in - 1) s - lo - hi + (k - 1) d + 1 + op`` samples per axis
(positions outside ``[0, out)`` are dropped).  That is exactly the chapter's
``h(K, G, s)``: ``conv_transpose(x, w)`` equals
``conv_grad_input(x, w, (N, C_out, *out))`` of a convolution whose weight is
``w`` read as ``(C_out_conv, C_in_conv / groups, *kernel)``.  Consequently

* the gradient with respect to ``x`` is a plain strided :func:`conv` of the
  output gradient with the same ``w`` (:func:`conv_transpose_grad_input`);
* the gradient with respect to ``w`` is :func:`conv_grad_weight` with the
  roles of input and output swapped (:func:`conv_transpose_grad_weight`).

Two computations share the convolution kernel of :mod:`.conv` (no second
copy of any loop):

``"dilated"``
    one call of the forward kernel on ``x`` input-dilated by the stride
    (``s - 1`` zeros between samples) with the flipped, channel-swapped
    kernel.  Simple, but with stride ``s`` it multiplies ``s**d`` times more
    numbers than there are useful products (most are the inserted zeros).
``"phase"`` (sub-pixel decomposition)
    output sample ``o`` only receives the taps ``m`` with
    ``m d = o + lo (mod s)``: per axis there are ``s`` output phases, each a
    *stride-1* convolution of ``x`` with the sub-kernel of the taps that hit
    it.  All ``prod(s)`` phases run as one stride-1 convolution with
    ``prod(s) * C_out`` output channels (sub-kernels stacked, padded with zero
    taps to a common length ``U = floor((k - 1) d / s) + 1``), whose result is
    interleaved into the output.  It does ``prod(U) / prod(k)`` of the
    dilated path's work (``1 / s**d`` when ``d = 1``).

``method="auto"`` takes the phase path whenever it does less work.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import shapes
from .. import _kernels as _unshared_kernel
from .._validation import (as_float_array, as_tuple, check_choice, check_int, check_size,
                           result_dtype)
from .._validation import shape_argument as _shape_of
from ..errors import ArgumentError, ShapeError
from ..ragged import Batch, Ragged, lift3, map_items
from ._core import (_BLAS_INT_MAX, _check_array, _check_bias, _check_grad_output, _forward,
                    _grad_input, _grad_input_problem)
from ._costmodel import _finite
from .conv import conv, conv_grad_weight
from ..typing import BatchLike, IntOrTuple, Padding, Shape, TransposeMethod

__all__ = ["conv_transpose", "conv_transpose_grad_input", "conv_transpose_grad_weight",
           "conv_transpose_output_size", "CONV_TRANSPOSE_METHODS"]

#: Accepted values of ``method``.
CONV_TRANSPOSE_METHODS = ("auto", "phase", "dilated")

_WEIGHT_LAYOUT = "(C_in, C_out // groups, *kernel)"

#: Patch rows (input channels x taps) from which the stacked phase
#: convolution takes the gemm path rather than the direct one (measured on
#: the issue's 3-D case: 16 x 8 rows, gemm 3x faster).
_PHASE_GEMM_ROWS = 64


class _Geometry:
    """A validated transposed convolution: one entry per spatial axis."""

    def __init__(self, x_shape, weight_shape, out_shape, stride, dilation, padding,
                 output_padding, groups):
        self.x_shape, self.weight_shape, self.out_shape = x_shape, weight_shape, out_shape
        self.stride, self.dilation, self.padding = stride, dilation, padding
        self.output_padding, self.groups = output_padding, groups
        self.ndim = len(x_shape) - 2
        self.kernel = weight_shape[2:]


def _padding_pairs(padding, nd, kernel):
    """``(lo, hi)`` per axis; ints, tuples or pairs as :func:`conv` takes them (no "same")."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        raise ArgumentError(
            f"conv_transpose padding must be 'valid', an int, a tuple of ints or a tuple of "
            f"(lo, hi) pairs (samples cropped from the output, as in PyTorch); got {padding!r}")
    return shapes.resolve_padding(padding, (1,) * nd, kernel)


def _geometry(x_shape, weight_shape, *, stride, padding, output_padding, dilation, groups,
              output_size, x_name="x", weight_name="weight"):
    """Validate a transposed convolution; return its :class:`_Geometry`."""
    x_shape, weight_shape = tuple(x_shape), tuple(weight_shape)
    if not 3 <= len(x_shape) <= 5:
        raise ShapeError(
            f"{x_name} must have shape (N, C_in, *spatial) with 1 to 3 spatial axes, "
            f"got shape {x_shape} ({len(x_shape)}-d)")
    if len(weight_shape) != len(x_shape):
        raise ShapeError(
            f"{weight_name} must have shape {_WEIGHT_LAYOUT} with as many spatial axes as "
            f"{x_name}: {x_name} has shape {x_shape}, {weight_name} has shape {weight_shape}")
    nd = len(x_shape) - 2
    groups = check_int(groups, "groups")
    stride = as_tuple(stride, nd, "stride", minimum=1)
    dilation = as_tuple(dilation, nd, "dilation", minimum=1)
    n, c_in, spatial = x_shape[0], x_shape[1], x_shape[2:]
    kernel = weight_shape[2:]
    if weight_shape[0] != c_in:
        raise ShapeError(
            f"channel mismatch: {x_name} has {c_in} channels (shape {x_shape}) but "
            f"{weight_name} has shape {weight_shape}, whose first axis must be C_in = {c_in} "
            f"(layout {_WEIGHT_LAYOUT}, as torch.nn.functional.conv_transpose)")
    if c_in % groups:
        raise ShapeError(f"groups={groups} must divide C_in: {x_name} has shape {x_shape}")
    if c_in == 0 or weight_shape[1] == 0 or any(k == 0 for k in kernel):
        raise ShapeError(f"{weight_name} has an empty axis: shape {weight_shape}")
    if any(size == 0 for size in spatial):
        raise ShapeError(f"{x_name} has a zero-length spatial axis: shape {x_shape}")
    pads = _padding_pairs(padding, nd, kernel)
    spans = shapes.dilated_size(kernel, dilation)
    smallest = tuple((i - 1) * s - lo - hi + e
                     for i, s, (lo, hi), e in zip(spatial, stride, pads, spans))
    if output_size is not None:
        if output_padding not in (0, None) and any(
                as_tuple(output_padding, nd, "output_padding")):
            raise ArgumentError("give output_size or output_padding, not both "
                                f"(got output_padding={output_padding!r})")
        size = _shape_of(output_size, "output_size")
        if len(size) == nd + 2:
            if size[0] != n or size[1] != weight_shape[1] * groups:
                raise ShapeError(
                    f"output_size {size} does not match the batch and channels of the result "
                    f"({n}, {weight_shape[1] * groups}); give the spatial size only")
            size = size[2:]
        if len(size) != nd:
            raise ArgumentError(f"output_size must have {nd} spatial sizes (or {nd + 2} "
                                f"entries with batch and channels), got {output_size!r}")
        largest = tuple(m + s - 1 for m, s in zip(smallest, stride))
        if any(not lo <= m <= hi for m, lo, hi in zip(size, smallest, largest)):
            raise ShapeError(
                f"output_size {size} is out of range: with {x_name} spatial shape {spatial}, "
                f"stride {stride}, padding {pads} and dilation {dilation} each size must lie "
                f"between {smallest} and {largest} (smallest + stride - 1)")
        output_padding = tuple(m - lo for m, lo in zip(size, smallest))
    else:
        output_padding = as_tuple(output_padding, nd, "output_padding", minimum=0)
        if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation)):
            raise ArgumentError(
                f"output_padding must be smaller than either stride or dilation on every axis "
                f"(PyTorch's rule): got output_padding {output_padding} with stride {stride} "
                f"and dilation {dilation}")
    out_spatial = tuple(m + op for m, op in zip(smallest, output_padding))
    if any(m < 1 for m in out_spatial):
        raise ShapeError(
            f"conv_transpose output would be empty: {x_name} spatial shape {spatial}, stride "
            f"{stride}, dilated kernel span {spans}, padding {pads} and output_padding "
            f"{output_padding} give (in - 1) * stride - lo - hi + span + output_padding = "
            f"{out_spatial}; reduce the padding")
    out_shape = (n, weight_shape[1] * groups) + out_spatial
    options = (f"stride {stride}, dilation {dilation}, padding {pads} and output_padding "
               f"{output_padding} against {x_name} shape {x_shape}")
    check_size(out_shape, np.float32, "the output", options)
    largest = max(math.prod(spatial), math.prod(out_spatial), c_in * math.prod(kernel))
    if largest > _BLAS_INT_MAX:
        raise ShapeError(f"{x_name} shape {x_shape} with {weight_name} shape {weight_shape}, "
                         f"{options[:options.index(' against')]} has {largest} positions or taps "
                         f"per item; BLAS indexes at most {_BLAS_INT_MAX}: split the item")
    return _Geometry(x_shape, weight_shape, out_shape, stride, dilation, pads, output_padding,
                     groups)


def conv_transpose_output_size(input_size: Sequence[int], kernel_size: Sequence[int],
                               stride: IntOrTuple = 1, padding: Padding = 0,
                               output_padding: IntOrTuple = 0, dilation: IntOrTuple = 1) -> Shape:
    """Spatial output size of :func:`conv_transpose`.

    ``(in - 1) * stride - lo - hi + (kernel - 1) * dilation + 1 + output_padding``
    per axis (PyTorch's formula, with ``lo = hi = padding`` for an int).
    """
    input_size, kernel_size = tuple(input_size), tuple(kernel_size)
    nd = len(input_size)
    stride = as_tuple(stride, nd, "stride", minimum=1)
    dilation = as_tuple(dilation, nd, "dilation", minimum=1)
    output_padding = as_tuple(output_padding, nd, "output_padding", minimum=0)
    pads = _padding_pairs(padding, nd, kernel_size)
    return tuple((i - 1) * s - lo - hi + e + op for i, s, (lo, hi), e, op in zip(
        input_size, stride, pads, shapes.dilated_size(kernel_size, dilation), output_padding))


def _phase_taps(k, s, d):
    """Per output phase ``r`` (of ``o + lo`` mod ``s``) the tap feeding each sub-kernel slot.

    Returns ``(table, U)``: ``table[r, u]`` is the tap ``m`` of the original
    kernel at slot ``u`` of phase ``r``'s stride-1 correlation kernel, or
    ``k`` (an appended zero tap) where no tap falls.  Tap ``m`` with
    ``m d = r + c s`` reads input ``q - c`` for phase sample ``q``; slot
    ``u = U - 1 - c`` of a correlation reading ``x[q - (U - 1) + u]``.
    """
    span = (k - 1) * d // s + 1
    table = np.full((s, span), k, dtype=np.intp)
    for m in range(k):
        r, c = (m * d) % s, (m * d) // s
        table[r, span - 1 - c] = m
    return table, span


def _forward_dilated(x, weight, bias, geometry, method):
    """One input-dilated call of the convolution kernel: h(K, G, s) with ``weight`` as K."""
    return _grad_input(Batch.of(x), weight, bias, Batch.layout(geometry.out_shape, x.dtype),
                       [lo for lo, _ in geometry.padding], groups=geometry.groups,
                       stride=geometry.stride, dilation=geometry.dilation, flip=False,
                       method=method).result()


def _forward_phase(x, weight, bias, geometry, method):
    """All output phases as one stride-1 convolution, then interleaved (sub-pixel)."""
    nd, g = geometry.ndim, geometry.groups
    stride, kernel = geometry.stride, geometry.kernel
    n, c_in = x.shape[:2]
    c_out_g = weight.shape[1]
    tables: tuple[Any, ...]
    spans: tuple[Any, ...]
    tables, spans = zip(*(_phase_taps(k, s, d)
                          for k, s, d in zip(kernel, stride, geometry.dilation)))
    # append one zero tap per axis, then gather every phase's sub-kernel:
    # (C_in, C_out/g, *(k + 1)) -> (C_in, C_out/g, s_1, U_1, ..., s_nd, U_nd)
    padded = np.zeros(weight.shape[:2] + tuple(k + 1 for k in kernel), dtype=x.dtype)
    padded[(slice(None), slice(None)) + tuple(slice(0, k) for k in kernel)] = weight
    index = tuple(t.reshape((1,) * (2 * a) + t.shape + (1,) * (2 * (nd - a - 1)))
                  for a, t in enumerate(tables))
    sub = padded[(slice(None), slice(None)) + index]
    # -> (g, C_in/g, C_out/g, s_1..s_nd, U_1..U_nd) -> (g, s.., C_out/g, C_in/g, U..)
    sub = sub.reshape((g, c_in // g, c_out_g) + sum(((s, u) for s, u in zip(stride, spans)), ()))
    order = ((0,) + tuple(3 + 2 * a for a in range(nd)) + (2, 1)
             + tuple(4 + 2 * a for a in range(nd)))
    phases = int(np.prod(stride))
    stacked = np.ascontiguousarray(sub.transpose(order)).reshape(
        (g * phases * c_out_g, c_in // g) + spans)
    # phase sample q of axis a covers outputs o = q s + r - lo; common range of q
    q_lo = tuple(lo // s for (lo, _), s in zip(geometry.padding, stride))
    q_hi = tuple((lo + m - 1) // s for (lo, _), s, m in zip(geometry.padding, stride,
                                                           geometry.out_shape[2:]))
    q_count = tuple(h - l + 1 for l, h in zip(q_lo, q_hi))
    pad_lo = tuple(u - 1 - l for u, l in zip(spans, q_lo))
    stacked_bias = None if bias is None else np.ascontiguousarray(
        np.broadcast_to(bias.reshape(g, 1, c_out_g), (g, phases, c_out_g)).reshape(-1))
    rows = (c_in // g) * int(np.prod(spans))
    inner = method if method != "auto" else ("gemm" if rows >= _PHASE_GEMM_ROWS else "auto")
    z = _forward(Batch.of(x), stacked, stacked_bias,
                 Batch.layout((n, g * phases * c_out_g) + q_count, x.dtype), pad_lo, groups=g,
                 stride=(1,) * nd, dilation=(1,) * nd, input_dilation=(1,) * nd,
                 method=inner).result()
    # z is (N, g, s_1..s_nd, C_out/g, Q_1..Q_nd); output o of an axis is phase
    # r = (o + lo) % s, phase sample (o + lo) // s - q_lo
    out = np.empty(geometry.out_shape, dtype=x.dtype)
    phase_tables = []
    for (lo, _), s, m, first_q in zip(geometry.padding, stride, geometry.out_shape[2:], q_lo):
        v = np.arange(m, dtype=np.intp) + lo
        phase_tables += [v % s, v // s - first_q]
    ones = [np.zeros(1, dtype=np.intp)] * 2 * (3 - nd)
    _unshared_kernel.interleave_phases(z.reshape(-1), out.reshape(-1), n, g, c_out_g,
                                       lift3(stride, 1), lift3(q_count, 1),
                                       lift3(geometry.out_shape[2:], 1), *(ones + phase_tables))
    return out


def _forward_taps(x, weight, bias, geometry):
    """The defining sum tap by tap: each output adds ``x * w`` only over the taps that reach it.

    The phase and dilated paths also multiply zeros (the zero taps that pad
    the phase sub-kernels, the samples inserted between inputs) by the input
    or the weight; with an infinite or NaN operand those products are NaN
    where the output does not depend on that operand.  This path forms only
    the products of the formula in the module docstring (as PyTorch does),
    one ``einsum`` per kernel tap; :func:`conv_transpose` takes it when ``x``
    or ``weight`` is not all finite.
    """
    nd, g = geometry.ndim, geometry.groups
    n, c_in = x.shape[:2]
    out = np.zeros(geometry.out_shape, dtype=x.dtype)
    xg = x.reshape((n, g, c_in // g) + x.shape[2:])                       # (N, g, C_in/g, *in)
    wg = weight.reshape((g, c_in // g, weight.shape[1]) + geometry.kernel)  # (g, C_in/g, C_out/g, *k)
    og = out.reshape((n, g, weight.shape[1]) + geometry.out_shape[2:])     # (N, g, C_out/g, *out)
    head = (slice(None),) * 3
    for tap in np.ndindex(*geometry.kernel):
        src, dst = [], []
        for m, s, d, (lo, _), size, m_out in zip(tap, geometry.stride, geometry.dilation,
                                                 geometry.padding, x.shape[2:],
                                                 geometry.out_shape[2:]):
            # input i lands on output o = i s + m d - lo, kept when 0 <= o < m_out
            first = max(0, -(-(lo - m * d) // s))
            last = min(size - 1, (m_out - 1 + lo - m * d) // s)
            if last < first:
                break
            start = first * s + m * d - lo
            src.append(slice(first, last + 1))
            dst.append(slice(start, start + (last - first) * s + 1, s))
        else:
            og[head + tuple(dst)] += np.einsum("ngc...,gco->ngo...", xg[head + tuple(src)],
                                               wg[head + tap])
    if bias is not None:
        out += bias.reshape((1, -1) + (1,) * nd)
    return out


def _phase_is_cheaper(geometry):
    """True when the sub-pixel phases multiply fewer zeros than the input-dilated convolution.

    A stride larger than the dilated kernel leaves phases without a tap: their
    stacked sub-kernels and outputs would be zeros only (a stride of 10**8
    would stack 10**8 empty phases), so the dilated path is taken then.
    """
    spans = [(k - 1) * d // s + 1 for k, s, d in zip(geometry.kernel, geometry.stride,
                                                      geometry.dilation)]
    every_phase_has_taps = all(s <= (k - 1) * d + 1 for k, s, d in
                               zip(geometry.kernel, geometry.stride, geometry.dilation))
    return (any(s > 1 for s in geometry.stride) and every_phase_has_taps
            and math.prod(spans) < math.prod(geometry.kernel))


@overload
def conv_transpose(x: Ragged, weight: ArrayLike, bias: ArrayLike | None = None, *,
                   stride: IntOrTuple = 1, padding: Padding = 0, output_padding: IntOrTuple = 0,
                   dilation: IntOrTuple = 1, groups: int = 1,
                   output_size: Sequence[int] | None = None,
                   method: TransposeMethod = "auto") -> Ragged: ...
@overload
def conv_transpose(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
                   stride: IntOrTuple = 1, padding: Padding = 0, output_padding: IntOrTuple = 0,
                   dilation: IntOrTuple = 1, groups: int = 1,
                   output_size: Sequence[int] | None = None,
                   method: TransposeMethod = "auto") -> NDArray[Any]: ...
def conv_transpose(x: BatchLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
                   stride: IntOrTuple = 1, padding: Padding = 0, output_padding: IntOrTuple = 0,
                   dilation: IntOrTuple = 1, groups: int = 1,
                   output_size: Sequence[int] | None = None,
                   method: TransposeMethod = "auto") -> NDArray[Any] | Ragged:
    """Transposed convolution, ``torch.nn.functional.conv_transpose1d/2d/3d`` semantics.

    Parameters
    ----------
    x : array_like, shape (N, C_in, *in)
        1, 2 or 3 spatial axes.
    weight : array_like, shape (C_in, C_out // groups, *kernel)
        PyTorch's layout for transposed convolution.
    bias : array_like, shape (C_out,), optional
    stride, dilation : int or tuple of int
    padding : int, tuple of int or tuple of (int, int)
        Samples cropped from each end of the full result (``"valid"`` = 0);
        ``(lo, hi)`` pairs are an extension of PyTorch's symmetric padding.
    output_padding : int or tuple of int
        Samples added at the end of each axis; must be smaller than the
        stride or the dilation of that axis (PyTorch's rule).  It picks one
        of the ``stride`` input sizes that a strided convolution maps to the
        same output size.
    groups : int
    output_size : tuple of int, optional
        The spatial size wanted (or the full ``(N, C_out, *spatial)``); it
        chooses ``output_padding`` as PyTorch's ``ConvTranspose`` modules do.
        Must lie between the smallest size and that plus ``stride - 1``.
    method : {"auto", "phase", "dilated"}
        See the module docstring; all give the same result.

    Returns
    -------
    ndarray, shape (N, C_out, *out)
        ``out = (in - 1) * stride - lo - hi + (kernel - 1) * dilation + 1
        + output_padding``, in the input's float dtype.
    """
    check_choice(method, "method", CONV_TRANSPOSE_METHODS)
    if isinstance(x, Ragged):
        return _ragged_conv_transpose(x, weight, bias, stride=stride, padding=padding,
                                      output_padding=output_padding, dilation=dilation,
                                      groups=groups, output_size=output_size)
    x = _check_array(x, "x")
    weight = _check_array(weight, "weight", _WEIGHT_LAYOUT)
    dtype = result_dtype(x=x, weight=weight, bias=bias)
    geometry = _geometry(x.shape, weight.shape, stride=stride, padding=padding,
                         output_padding=output_padding, dilation=dilation, groups=groups,
                         output_size=output_size)
    _check_bias(bias, geometry.out_shape[1])
    x = as_float_array(x, dtype, "x")
    weight = as_float_array(weight, dtype, "weight")
    bias = None if bias is None else as_float_array(bias, dtype, "bias")
    if x.shape[0] == 0:
        return np.empty(geometry.out_shape, dtype=dtype)
    if not _finite(x, weight):  # only the products of the formula: no 0 * inf
        return _forward_taps(x, weight, bias, geometry)
    if method == "phase" or (method == "auto" and _phase_is_cheaper(geometry)):
        return _forward_phase(x, weight, bias, geometry, "auto")
    return _forward_dilated(x, weight, bias, geometry, "auto")


def _adjoint_conv(grad_output, geometry):
    """``grad_output`` and ``(lo, hi)`` pairs of the convolution whose input gradient is ours.

    That convolution maps ``out`` samples to ``in``: padding ``lo`` before and
    ``hi - output_padding`` after.  When that is negative the last output
    samples are never written by the transposed convolution (they are
    ``output_padding`` zeros); they are cropped instead.
    """
    crop, pairs = [], []
    for (lo, hi), op, m in zip(geometry.padding, geometry.output_padding,
                               geometry.out_shape[2:]):
        after = hi - op
        pairs.append((lo, max(after, 0)))
        crop.append(slice(0, m + min(after, 0)))
    return grad_output[(slice(None), slice(None)) + tuple(crop)], tuple(pairs)


def _gradient_problem(arrays, shape, shape_name, options):
    """Checks of either gradient: ``(arrays, shape, dtype, geometry)``.

    ``arrays`` are ``(value, name[, layout])``, checked in order: grad_output
    and weight for the input gradient (``shape_name`` "input_shape"), x and
    grad_output for the weight gradient ("weight_shape").  ``options`` are
    :func:`_geometry`'s.
    """
    checked = {name: _check_array(value, name, *layout) for value, name, *layout in arrays}
    shape = _shape_of(shape, shape_name)
    dtype = result_dtype(**checked)
    if shape_name == "input_shape":
        geometry = _geometry(shape, checked["weight"].shape, x_name=shape_name, **options)
    else:
        geometry = _geometry(checked["x"].shape, shape, weight_name=shape_name, **options)
    _check_grad_output(checked["grad_output"], geometry.out_shape)
    return list(checked.values()), shape, dtype, geometry


@overload
def conv_transpose_grad_input(grad_output: Ragged, weight: ArrayLike,
                              input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                              padding: Padding = 0, output_padding: IntOrTuple = 0,
                              dilation: IntOrTuple = 1, groups: int = 1,
                              output_size: Sequence[int] | None = None) -> Ragged: ...
@overload
def conv_transpose_grad_input(grad_output: ArrayLike, weight: ArrayLike,
                              input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                              padding: Padding = 0, output_padding: IntOrTuple = 0,
                              dilation: IntOrTuple = 1, groups: int = 1,
                              output_size: Sequence[int] | None = None) -> NDArray[Any]: ...
def conv_transpose_grad_input(grad_output: BatchLike, weight: ArrayLike,
                              input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                              padding: Padding = 0, output_padding: IntOrTuple = 0,
                              dilation: IntOrTuple = 1, groups: int = 1,
                              output_size: Sequence[int] | None = None) -> NDArray[Any] | Ragged:
    """Gradient of :func:`conv_transpose` with respect to ``x``: a strided :func:`conv`.

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, *out)
    weight : array_like, shape (C_in, C_out // groups, *kernel)
    input_shape : tuple of int
        ``(N, C_in, *in)``, the shape of the forward input.
    stride, padding, output_padding, dilation, groups, output_size
        As given to :func:`conv_transpose`.

    Returns
    -------
    ndarray, shape input_shape
    """
    if isinstance(grad_output, Ragged):
        pairs, _ = _ragged_pairs(input_shape, weight, stride, padding, output_padding, dilation,
                              groups, output_size, "input_shape")
        return conv(grad_output, weight, stride=stride, padding=pairs, dilation=dilation,
                    groups=groups)
    (grad_output, weight), input_shape, dtype, geometry = _gradient_problem(
        [(grad_output, "grad_output"), (weight, "weight", _WEIGHT_LAYOUT)], input_shape,
        "input_shape", dict(stride=stride, padding=padding, output_padding=output_padding,
                            dilation=dilation, groups=groups, output_size=output_size))
    if input_shape[0] == 0:
        return np.zeros(input_shape, dtype=dtype)
    cropped, pairs = _adjoint_conv(grad_output, geometry)
    if cropped.size == 0:  # every output sample lies in the cropped padding
        return np.zeros(input_shape, dtype=dtype)
    # the weight (C_in, C_out/g, *k) is already the convolution's (C_out_conv, C_in_conv/g, *k)
    return conv(cropped, weight, stride=geometry.stride, padding=pairs,
                      dilation=geometry.dilation, groups=geometry.groups)


def conv_transpose_grad_weight(x: BatchLike, grad_output: BatchLike, weight_shape: Sequence[int],
                               *, stride: IntOrTuple = 1, padding: Padding = 0,
                               output_padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
                               groups: int = 1,
                               output_size: Sequence[int] | None = None) -> NDArray[Any]:
    """Gradient of :func:`conv_transpose` with respect to ``weight``.

    :func:`conv_grad_weight` with input and output swapped: the output
    gradient plays the convolution's input and ``x`` its output gradient.

    Parameters
    ----------
    x : array_like, shape (N, C_in, *in)
    grad_output : array_like, shape (N, C_out, *out)
    weight_shape : tuple of int
        ``(C_in, C_out // groups, *kernel)``.
    stride, padding, output_padding, dilation, groups, output_size
        As given to :func:`conv_transpose`.

    Returns
    -------
    ndarray, shape weight_shape
    """
    if isinstance(x, Ragged):
        weight_shape = _shape_of(weight_shape, "weight_shape")
        pairs, _ = _ragged_pairs(x, np.empty(weight_shape), stride, padding, output_padding,
                              dilation, groups, output_size, "x")
        return conv_grad_weight(grad_output, x, weight_shape, stride=stride, padding=pairs,
                                dilation=dilation, groups=groups)
    (x, grad_output), weight_shape, dtype, geometry = _gradient_problem(
        [(x, "x"), (grad_output, "grad_output")], weight_shape, "weight_shape",
        dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
             groups=groups, output_size=output_size))
    if x.shape[0] == 0:
        return np.zeros(weight_shape, dtype=dtype)
    cropped, pairs = _adjoint_conv(grad_output, geometry)
    if cropped.size == 0:  # every output sample lies in the cropped padding
        return np.zeros(weight_shape, dtype=dtype)
    return conv_grad_weight(cropped, x, weight_shape, stride=geometry.stride,
                                  padding=pairs, dilation=geometry.dilation,
                                  groups=geometry.groups)


# -- Ragged batches: the input gradient of conv, one kernel call for the batch --

def _ragged_pairs(x, weight, stride, padding, output_padding, dilation, groups, output_size,
                  name):
    """Validate a transposed convolution of a Ragged ``x``; return its padding pairs and geometry.

    Every item shares the options, so the first item's geometry gives the
    ``(lo, hi)`` pairs of the equivalent convolution (its output_padding is
    implied by each item's output size) and the forward's own padding,
    stride, dilation and output_padding.
    """
    if not isinstance(x, Ragged):
        raise ShapeError(f"{name} must be the forward input (a Ragged) when the gradient is a "
                         f"Ragged, got {type(x).__name__}")
    if output_size is not None:
        raise ArgumentError("output_size is not supported for Ragged batches: each item takes "
                            "the size its own input gives (use output_padding)")
    weight = _check_array(weight, "weight", _WEIGHT_LAYOUT)
    geometry = _geometry((1, x.channels) + tuple(int(v) for v in x.shapes[0]), weight.shape,
                         stride=stride, padding=padding, output_padding=output_padding,
                         dilation=dilation, groups=groups, output_size=None, x_name=f"{name} item 0")
    # the convolution whose input gradient this is maps `out` samples back to
    # `in` when its padding after the input is hi - output_padding (>= 0)
    pairs = []
    for (lo, hi), op, st in zip(geometry.padding, geometry.output_padding, geometry.stride):
        hi_conv = max(hi - op, 0)
        if hi_conv - hi + op >= st:
            raise ArgumentError(
                f"output_padding {tuple(geometry.output_padding)} at least the stride "
                f"{tuple(geometry.stride)} (allowed by a larger dilation) is not supported for "
                "Ragged batches; run the items one at a time")
        pairs.append((lo, hi_conv))
    return tuple(pairs), geometry


def _ragged_conv_transpose(x, weight, bias, *, stride, padding, output_padding, dilation, groups,
                           output_size):
    """conv_transpose of a Ragged batch: conv's input gradient with one item table.

    Item ``i`` has the output size its own input gives; it equals the item
    run alone (through the input-dilated route, not the phase split).
    """
    pairs, geometry = _ragged_pairs(x, weight, stride, padding, output_padding, dilation, groups,
                                    output_size, "x")
    weight = _check_array(weight, "weight", _WEIGHT_LAYOUT)
    # sizes with the forward's own padding; `pairs` is the equivalent convolution's
    in_shapes = np.asarray(x.shapes, dtype=np.int64).reshape(-1, x.ndim)
    lo, hi = (np.array([p[i] for p in geometry.padding], dtype=np.int64) for i in (0, 1))
    spans = np.array(shapes.dilated_size(geometry.kernel, geometry.dilation), dtype=np.int64)
    out_shapes = ((in_shapes - 1) * np.array(geometry.stride, dtype=np.int64) - lo - hi + spans
                  + np.array(geometry.output_padding, dtype=np.int64))
    empty = np.flatnonzero(out_shapes.min(axis=1, initial=1) < 1)
    if len(empty):
        i = int(empty[0])
        raise ShapeError(f"x item {i} of spatial shape {tuple(in_shapes[i].tolist())} gives "
                         f"an empty output {tuple(out_shapes[i].tolist())}: padding {padding} "
                         "crops more than the transposed convolution produces")
    _check_bias(bias, weight.shape[1] * groups)
    total = weight.shape[1] * groups * sum(math.prod(row) for row in out_shapes.tolist())
    check_size((total,), result_dtype(x=x.data, weight=weight, bias=bias), "the output (all items)",
               f"stride {geometry.stride}, dilation {geometry.dilation}, padding {padding} and "
               f"output_padding {output_padding}")
    if not _finite(x.data, weight):  # item by item through the formula's products (no 0 * inf)
        return map_items(conv_transpose, x, weight, bias, stride=stride, padding=padding,
                         output_padding=output_padding, dilation=dilation, groups=groups)
    x, weight, geometry = _grad_input_problem(x, weight, out_shapes, stride, pairs, dilation,
                                              groups, False)
    # np.ascontiguousarray, not as_float_array: a bias that cannot be converted
    # raises numpy's own error, as the bias add this replaced did
    bias = None if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    grad_input = x.empty_like(geometry.in_shapes, weight.shape[1] * geometry.groups)
    return _grad_input(x, weight, bias, grad_input, geometry.pad_lo, groups=geometry.groups,
                       stride=geometry.stride, dilation=geometry.dilation, flip=False,
                       method="auto").result()
