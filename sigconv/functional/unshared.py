r"""Unshared (locally connected) and tiled convolution (chapter 9.5).

Notation of the chapter, 0-based, for input ``V`` of shape ``(N, C_in, *in)``,
stride ``s`` and padding ``lo`` before the input (samples outside the input
are zeros):

**Unshared convolution** (:func:`local_conv`) has a separate filter bank at
every output position ``j``; the weight ``w`` has shape
``(C_out, *out, C_in, *kernel)``:

.. math:: Z_{n, i, \mathbf{j}} = \sum_{l, \mathbf{m}}
          V_{n, l, \mathbf{j} s + \mathbf{m} - \mathbf{lo}} \, w_{i, \mathbf{j}, l, \mathbf{m}}

(the chapter's :math:`Z_{i,j,k} = \sum_{l,m,n} V_{l, j+m-1, k+n-1} w_{i,j,k,l,m,n}`).
It has the connectivity of a convolution and the parameters of a dense
layer restricted to it: no parameter sharing.

**Tiled convolution** (:func:`tiled_conv`) cycles through ``prod(t)`` kernels
as one moves through space; the weight ``K`` has shape
``(C_out, C_in, *kernel, *t)`` and output position ``j`` uses kernel
``j % t`` per axis:

.. math:: Z_{n, i, \mathbf{j}} = \sum_{l, \mathbf{m}}
          V_{n, l, \mathbf{j} s + \mathbf{m} - \mathbf{lo}}
          \, K_{i, l, \mathbf{m}, \mathbf{j} \% \mathbf{t}}

With ``t`` all ones it is :func:`conv`; with ``t`` equal to the output size it
is :func:`local_conv` (with the weight laid out differently).

Computation.  :func:`local_conv` and its gradients run the nogil kernels of
``sigconv._kernels.unshared``: for each segment of an output row the patches
of a chunk of items are gathered into a bounded per-thread workspace and every
filter row is dotted with them (the layer is limited by reading its weight
once per chunk of items).  :func:`tiled_conv` is ``prod(t)`` ordinary
convolutions, one per kernel: the outputs using kernel ``r`` are positions
``r + q t``, i.e. a convolution with stride ``s t`` of the input shifted by
``r s``; they run on :func:`conv`'s kernels and are interleaved into the
output.  The gradients are the same decomposition of :func:`conv_grad_input`
and :func:`conv_grad_weight`.

Padding accepts what :func:`conv` accepts (``"valid"``, ``"same"``,
``"full"``, ints, ``(lo, hi)`` pairs), resolved by
:func:`sigconv.shapes.resolve_padding`.  There is no dilation or groups.
The bias gradient is ``grad_output`` summed over the axes the bias is
broadcast along.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import shapes
from .. import _kernels as _kernel
from .._validation import as_float_array, as_tuple, check_size, result_dtype
from .._validation import shape_argument as _shape_of
from ..errors import ShapeError
from ..ragged import Ragged, lift3, map_grad_input, map_items, sum_over_items
from ._core import _check_array, _check_grad_output
from .conv import conv, conv_grad_input, conv_grad_weight
from .fft import _workers
from ..typing import BatchLike, IntOrTuple, Padding, Shape

__all__ = ["local_conv", "local_conv_grad_input", "local_conv_grad_weight",
           "tiled_conv", "tiled_conv_grad_input", "tiled_conv_grad_weight"]

_LOCAL_LAYOUT = "(C_out, *out_spatial, C_in, *kernel)"
_TILED_LAYOUT = "(C_out, C_in, *kernel, *tile)"

#: Bytes of patches each thread gathers at once.
WORKSPACE_BYTES = 1 << 18


class _Geometry:
    """A validated unshared/tiled problem: one entry per spatial axis."""

    def __init__(self, x_shape, c_out, kernel, out_spatial, stride, padding):
        self.x_shape, self.c_out, self.kernel = x_shape, c_out, kernel
        self.out_spatial, self.stride, self.padding = out_spatial, stride, padding
        self.ndim = len(x_shape) - 2
        self.out_shape = (x_shape[0], c_out) + out_spatial


def _x_rank(x_shape, name):
    if not 3 <= len(x_shape) <= 5:
        raise ShapeError(f"{name} must have shape (N, C_in, *spatial) with 1 to 3 spatial axes, "
                         f"got shape {x_shape} ({len(x_shape)}-d)")
    if any(size == 0 for size in x_shape[2:]):
        raise ShapeError(f"{name} has a zero-length spatial axis: shape {x_shape}")
    return len(x_shape) - 2


def _output_geometry(x_shape, c_out, kernel, stride, padding, x_name):
    nd = len(x_shape) - 2
    stride = as_tuple(stride, nd, "stride", minimum=1)
    spatial = x_shape[2:]
    lo, hi, out = shapes._conv_sizes(np.array([spatial], dtype=np.int64), tuple(kernel), stride,
                                     padding, (1,) * nd, False)
    pads = tuple(zip(lo[0].tolist(), hi[0].tolist()))
    out = tuple(out[0].tolist())
    if any(m < 1 for m in out):
        raise ShapeError(f"kernel {kernel} is larger than the padded input: {x_name} spatial "
                         f"shape {spatial} with padding {pads}; pad the input or use a "
                         "smaller kernel")
    check_size((x_shape[0], c_out) + out, np.float32, "the output",
               f"padding {pads} and stride {stride} against {x_name} shape {tuple(x_shape)}")
    return _Geometry(tuple(x_shape), c_out, kernel, out, stride, pads)


def _local_geometry(x_shape, weight_shape, stride, padding, *, x_name="x",
                    weight_name="weight"):
    """Validate :func:`local_conv`'s shapes; the weight's position axes must match the output."""
    x_shape, weight_shape = tuple(x_shape), tuple(weight_shape)
    nd = _x_rank(x_shape, x_name)
    if len(weight_shape) != 2 + 2 * nd:
        raise ShapeError(
            f"{weight_name} must have shape {_LOCAL_LAYOUT}, {2 + 2 * nd} axes for {nd} spatial "
            f"axes, got shape {weight_shape} ({len(weight_shape)}-d)")
    c_out, c_in, kernel = weight_shape[0], weight_shape[1 + nd], weight_shape[2 + nd:]
    if c_in != x_shape[1]:
        raise ShapeError(f"channel mismatch: {x_name} has {x_shape[1]} channels (shape "
                         f"{x_shape}) but {weight_name} has C_in = {c_in} (shape {weight_shape},"
                         f" layout {_LOCAL_LAYOUT})")
    if c_out == 0 or c_in == 0 or any(k == 0 for k in kernel):
        raise ShapeError(f"{weight_name} has an empty axis: shape {weight_shape}")
    geometry = _output_geometry(x_shape, c_out, kernel, stride, padding, x_name)
    if weight_shape[1:1 + nd] != geometry.out_spatial:
        expected = (c_out,) + geometry.out_spatial + (c_in,) + kernel
        raise ShapeError(
            f"{weight_name} must have one filter bank per output position: the output size is "
            f"{geometry.out_spatial} (input {x_shape[2:]}, kernel {kernel}, stride "
            f"{geometry.stride}, padding {geometry.padding}), so expected {weight_name} shape "
            f"{expected} {_LOCAL_LAYOUT}, got {weight_shape}")
    return geometry


def _tiled_geometry(x_shape, weight_shape, stride, padding, *, x_name="x",
                    weight_name="weight"):
    """Validate :func:`tiled_conv`'s shapes; return the geometry and the tile."""
    x_shape, weight_shape = tuple(x_shape), tuple(weight_shape)
    nd = _x_rank(x_shape, x_name)
    if len(weight_shape) != 2 + 2 * nd:
        raise ShapeError(
            f"{weight_name} must have shape {_TILED_LAYOUT}, {2 + 2 * nd} axes for {nd} spatial "
            f"axes (a kernel size and a tile size per axis), got shape {weight_shape} "
            f"({len(weight_shape)}-d)")
    c_out, c_in = weight_shape[0], weight_shape[1]
    kernel, tile = weight_shape[2:2 + nd], weight_shape[2 + nd:]
    if c_in != x_shape[1]:
        raise ShapeError(f"channel mismatch: {x_name} has {x_shape[1]} channels (shape "
                         f"{x_shape}) but {weight_name} has C_in = {c_in} (shape {weight_shape},"
                         f" layout {_TILED_LAYOUT})")
    if any(t == 0 for t in tile):
        raise ShapeError(f"{weight_name} has an empty tile axis: shape {weight_shape} "
                         f"{_TILED_LAYOUT} has tile {tile}; every tile size must be >= 1")
    if c_out == 0 or c_in == 0 or any(k == 0 for k in kernel):
        raise ShapeError(f"{weight_name} has an empty axis: shape {weight_shape}")
    return _output_geometry(x_shape, c_out, kernel, stride, padding, x_name), tile


def _grad_input_problem(grad_output, weight, input_shape, stride, padding, layout,
                        geometry_of):
    """An input gradient's checks: ``(grad_output, weight, found, grad_input)``.

    ``geometry_of`` is :func:`_local_geometry` or :func:`_tiled_geometry`,
    ``found`` what it returns; ``grad_input`` holds zeros, and the arrays are
    converted to its dtype unless it is empty.
    """
    grad_output = _check_array(grad_output, "grad_output")
    weight = _check_array(weight, "weight", layout)
    input_shape = _shape_of(input_shape, "input_shape")
    dtype = result_dtype(grad_output=grad_output, weight=weight)
    found = geometry_of(input_shape, weight.shape, stride, padding, x_name="input_shape")
    _check_grad_output(grad_output, _geometry_of(found).out_shape)
    grad_input = np.zeros(input_shape, dtype=dtype)
    if grad_input.size:
        grad_output = as_float_array(grad_output, dtype, "grad_output")
        weight = as_float_array(weight, dtype, "weight")
    return grad_output, weight, found, grad_input


def _grad_weight_problem(x, grad_output, weight_shape, stride, padding, geometry_of):
    """A weight gradient's checks: ``(x, grad_output, found, grad_weight)``.

    As :func:`_grad_input_problem`; the arrays are converted unless ``x``
    holds no items.
    """
    x = _check_array(x, "x")
    grad_output = _check_array(grad_output, "grad_output")
    weight_shape = _shape_of(weight_shape, "weight_shape")
    dtype = result_dtype(x=x, grad_output=grad_output)
    found = geometry_of(x.shape, weight_shape, stride, padding, weight_name="weight_shape")
    _check_grad_output(grad_output, _geometry_of(found).out_shape)
    grad_weight = np.zeros(weight_shape, dtype=dtype)
    if x.shape[0]:
        x = as_float_array(x, dtype, "x")
        grad_output = as_float_array(grad_output, dtype, "grad_output")
    return x, grad_output, found, grad_weight


def _geometry_of(found):
    """The :class:`_Geometry` of what :func:`_local_geometry` or :func:`_tiled_geometry` found."""
    return found if isinstance(found, _Geometry) else found[0]


def _check_bias(bias, c_out, per, what):
    """``bias`` of shape ``(C_out,)`` or ``(C_out, *per)``, broadcastable to ``(C_out, *per)``."""
    if bias is None:
        return None
    shape = np.shape(bias)
    if shape == (c_out,):
        return np.reshape(bias, (c_out,) + (1,) * len(per))
    if shape == (c_out,) + tuple(per):
        return bias
    raise ShapeError(f"bias must have shape ({c_out},) (one value per output channel) or "
                     f"{(c_out,) + tuple(per)} (one per channel and {what}), got shape {shape}")


# ---------------------------------------------------------------------------
# unshared convolution
# ---------------------------------------------------------------------------

def _units(out_spatial, patch_bytes):
    """Work units ``(od, oh, ow0, ow1)``: output rows, split so that every thread has work.

    A segment's patches of one item (``patch_bytes`` per position) fit in the workspace.
    """
    do, ho, wo = lift3(out_spatial, 1)
    rows = do * ho
    pieces = max(1, min(wo, math.ceil(4 * _workers() / rows)))
    seg = min(math.ceil(wo / pieces), max(1, WORKSPACE_BYTES // patch_bytes))
    units = [(d, h, w0, min(w0 + seg, wo))
             for d in range(do) for h in range(ho) for w0 in range(0, wo, seg)]
    return np.array(units, dtype=np.intp).reshape(-1, 4)


def _patch_bytes(x, geometry):
    """Bytes of one position's patch: C_in * prod(kernel) samples."""
    return x.shape[1] * int(np.prod(geometry.kernel)) * x.itemsize


def _kernel_args(geometry: Any) -> tuple[Shape, Shape, Shape, Shape, Shape]:
    return (lift3(geometry.x_shape[2:], 1), lift3(geometry.out_spatial, 1),
            lift3(geometry.kernel, 1), lift3(geometry.stride, 1),
            lift3(tuple(lo for lo, _ in geometry.padding), 0))


def local_conv(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
               stride: IntOrTuple = 1, padding: Padding = "valid") -> NDArray[Any]:
    """Unshared (locally connected) convolution: a separate filter bank per output position.

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial)
        1, 2 or 3 spatial axes.
    weight : array_like, shape (C_out, *out_spatial, C_in, *kernel)
        ``weight[i, j, l, m]`` connects input channel ``l`` at offset ``m``
        of the window of output position ``j`` to output channel ``i``.
        ``out_spatial`` must be the output size that ``stride`` and
        ``padding`` give (as for :func:`conv`).
    bias : array_like, shape (C_out,) or (C_out, *out_spatial), optional
        One value per channel, or one per channel and position (no sharing).
    stride : int or tuple of int
    padding : {"valid", "same", "full"}, int, tuple of int or tuple of (int, int)

    Returns
    -------
    ndarray, shape (N, C_out, *out_spatial)
        In the input's float dtype.
    """
    x = _check_array(x, "x")
    weight = _check_array(weight, "weight", _LOCAL_LAYOUT)
    dtype = result_dtype(x=x, weight=weight, bias=bias)
    geometry = _local_geometry(x.shape, weight.shape, stride, padding)
    bias = _check_bias(bias, geometry.c_out, geometry.out_spatial, "output position")
    out = np.empty(geometry.out_shape, dtype=dtype)
    if out.size == 0:
        return out
    x = as_float_array(x, dtype, "x")
    weight = as_float_array(weight, dtype, "weight")
    if bias is None:
        bias_mode, flat_bias = 0, np.empty(0, dtype=dtype)
    else:
        bias_mode = 1 if np.ndim(bias) == 1 or np.shape(bias)[1:] == (1,) * geometry.ndim else 2
        flat_bias = as_float_array(bias, dtype, "bias").reshape(-1)
    _kernel.local_forward(x.reshape(-1), weight.reshape(-1), out.reshape(-1), flat_bias,
                          bias_mode, x.shape[0], x.shape[1], geometry.c_out,
                          *_kernel_args(geometry),
                          _units(geometry.out_spatial, _patch_bytes(x, geometry)), WORKSPACE_BYTES)
    return out


def local_conv_grad_input(grad_output: ArrayLike, weight: ArrayLike, input_shape: Sequence[int],
                          *, stride: IntOrTuple = 1, padding: Padding = "valid") -> NDArray[Any]:
    """Gradient of :func:`local_conv` with respect to its input.

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, *out_spatial)
    weight : array_like, shape (C_out, *out_spatial, C_in, *kernel)
    input_shape : tuple of int
        ``(N, C_in, *spatial)``, the shape of the forward input.
    stride, padding
        As given to :func:`local_conv`.

    Returns
    -------
    ndarray, shape input_shape
    """
    grad_output, weight, geometry, grad_input = _grad_input_problem(
        grad_output, weight, input_shape, stride, padding, _LOCAL_LAYOUT, _local_geometry)
    if grad_input.size == 0:
        return grad_input
    _kernel.local_grad_input(grad_output.reshape(-1), weight.reshape(-1), grad_input.reshape(-1),
                             grad_input.shape[0], grad_input.shape[1], geometry.c_out,
                             *_kernel_args(geometry), WORKSPACE_BYTES)
    return grad_input


def local_conv_grad_weight(x: ArrayLike, grad_output: ArrayLike, weight_shape: Sequence[int], *,
                           stride: IntOrTuple = 1, padding: Padding = "valid") -> NDArray[Any]:
    """Gradient of :func:`local_conv` with respect to its weight.

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial)
    grad_output : array_like, shape (N, C_out, *out_spatial)
    weight_shape : tuple of int
        ``(C_out, *out_spatial, C_in, *kernel)``.
    stride, padding
        As given to :func:`local_conv`.

    Returns
    -------
    ndarray, shape weight_shape
    """
    x, grad_output, geometry, grad_weight = _grad_weight_problem(
        x, grad_output, weight_shape, stride, padding, _local_geometry)
    if x.shape[0] == 0:
        return grad_weight
    _kernel.local_grad_weight(x.reshape(-1), grad_output.reshape(-1), grad_weight.reshape(-1),
                              x.shape[0], x.shape[1], geometry.c_out, *_kernel_args(geometry),
                              _units(geometry.out_spatial, _patch_bytes(x, geometry)),
                              WORKSPACE_BYTES)
    return grad_weight


# ---------------------------------------------------------------------------
# tiled convolution: prod(tile) strided convolutions
# ---------------------------------------------------------------------------

def _tile_phases(geometry, tile):
    """For every kernel ``r`` of the tile: the outputs using it and the convolution giving them.

    Yields ``(r, out_index, in_index, pairs)``: outputs ``r + q t`` (a strided
    slice), the input slice that convolution reads and its ``(lo, hi)``
    zero padding, or ``in_index = None`` when those outputs read only padding.
    """
    for r in np.ndindex(*tile):
        out_index, in_index, pairs = [], [], []
        empty = False
        for rr, t, s, k, (lo, _), m, size in zip(r, tile, geometry.stride, geometry.kernel,
                                                geometry.padding, geometry.out_spatial,
                                                geometry.x_shape[2:]):
            count = len(range(rr, m, t))
            if count == 0:
                break
            # output q of this phase reads padded input (rr + q t) s + (0..k-1)
            first = rr * s - lo
            last = (rr + (count - 1) * t) * s + k - 1 - lo
            start, stop = max(first, 0), min(last + 1, size)
            empty = empty or start >= stop
            out_index.append(slice(rr, m, t))
            in_index.append(slice(start, stop))
            pairs.append((start - first, last + 1 - stop))
        else:
            yield (r, (slice(None), slice(None)) + tuple(out_index),
                   None if empty else (slice(None), slice(None)) + tuple(in_index),
                   tuple(pairs))


@overload
def tiled_conv(x: Ragged, weight: ArrayLike, bias: ArrayLike | None = None, *,
               stride: IntOrTuple = 1, padding: Padding = "valid") -> Ragged: ...
@overload
def tiled_conv(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
               stride: IntOrTuple = 1, padding: Padding = "valid") -> NDArray[Any]: ...
def tiled_conv(x: BatchLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
               stride: IntOrTuple = 1, padding: Padding = "valid") -> NDArray[Any] | Ragged:
    """Tiled convolution: output position ``j`` uses kernel ``j % tile`` (per axis).

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial)
        1, 2 or 3 spatial axes.
    weight : array_like, shape (C_out, C_in, *kernel, *tile)
        ``prod(tile)`` kernels; ``tile`` all ones is :func:`conv`.  A tile
        larger than the output leaves some kernels unused.
    bias : array_like, shape (C_out,) or (C_out, *tile), optional
        One value per channel, or one per channel and kernel of the tile.
    stride : int or tuple of int
    padding : {"valid", "same", "full"}, int, tuple of int or tuple of (int, int)

    Returns
    -------
    ndarray, shape (N, C_out, *out_spatial)
        ``out_spatial`` as for :func:`conv`; in the input's float dtype.
    """
    if isinstance(x, Ragged):  # item by item: each item sizes its own work
        return map_items(tiled_conv, x, weight, bias, stride=stride, padding=padding)
    x = _check_array(x, "x")
    weight = _check_array(weight, "weight", _TILED_LAYOUT)
    dtype = result_dtype(x=x, weight=weight, bias=bias)
    geometry, tile = _tiled_geometry(x.shape, weight.shape, stride, padding)
    bias = _check_bias(bias, geometry.c_out, tile, "kernel of the tile")
    x = as_float_array(x, dtype, "x")
    weight = as_float_array(weight, dtype, "weight")
    if bias is not None:  # (C_out, *tile), one bias per kernel of the tile
        bias = np.broadcast_to(as_float_array(bias, dtype, "bias"), (geometry.c_out,) + tile)
    out = np.zeros(geometry.out_shape, dtype=dtype)
    if out.size == 0:
        return out
    nd = geometry.ndim
    for r, out_index, in_index, pairs in _tile_phases(geometry, tile):
        kernel = weight[(Ellipsis,) + r]                       # (C_out, C_in, *kernel)
        phase_bias = None if bias is None else np.ascontiguousarray(bias[(slice(None),) + r])
        if in_index is None:
            out[out_index] = 0 if phase_bias is None else phase_bias.reshape(
                (1, -1) + (1,) * nd)
            continue
        out[out_index] = conv(x[in_index], kernel, phase_bias,
                                    stride=tuple(s * t for s, t in zip(geometry.stride, tile)),
                                    padding=pairs)
    return out


@overload
def tiled_conv_grad_input(grad_output: Ragged, weight: ArrayLike,
                          input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                          padding: Padding = "valid") -> Ragged: ...
@overload
def tiled_conv_grad_input(grad_output: ArrayLike, weight: ArrayLike,
                          input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                          padding: Padding = "valid") -> NDArray[Any]: ...
def tiled_conv_grad_input(grad_output: BatchLike, weight: ArrayLike,
                          input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                          padding: Padding = "valid") -> NDArray[Any] | Ragged:
    """Gradient of :func:`tiled_conv` with respect to its input.

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, *out_spatial)
    weight : array_like, shape (C_out, C_in, *kernel, *tile)
    input_shape : tuple of int
        ``(N, C_in, *spatial)``, the shape of the forward input.
    stride, padding
        As given to :func:`tiled_conv`.

    Returns
    -------
    ndarray, shape input_shape
    """
    if isinstance(grad_output, Ragged):  # item by item: each item sizes its own work
        return map_grad_input(tiled_conv_grad_input, grad_output, weight, input_shape,
            stride=stride, padding=padding)
    grad_output, weight, (geometry, tile), grad_input = _grad_input_problem(
        grad_output, weight, input_shape, stride, padding, _TILED_LAYOUT, _tiled_geometry)
    if grad_input.size == 0:
        return grad_input
    for r, out_index, in_index, pairs in _tile_phases(geometry, tile):
        if in_index is None:
            continue
        target = grad_input[in_index]
        target += conv_grad_input(
            grad_output[out_index], weight[(Ellipsis,) + r], target.shape,
            stride=tuple(s * t for s, t in zip(geometry.stride, tile)), padding=pairs)
    return grad_input


def tiled_conv_grad_weight(x: BatchLike, grad_output: BatchLike, weight_shape: Sequence[int], *,
                           stride: IntOrTuple = 1, padding: Padding = "valid") -> NDArray[Any]:
    """Gradient of :func:`tiled_conv` with respect to its weight.

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial)
    grad_output : array_like, shape (N, C_out, *out_spatial)
    weight_shape : tuple of int
        ``(C_out, C_in, *kernel, *tile)``.
    stride, padding
        As given to :func:`tiled_conv`.

    Returns
    -------
    ndarray, shape weight_shape
        Kernels of the tile that no output position uses get zeros.
    """
    if isinstance(x, Ragged):  # item by item: each item sizes its own work
        return sum_over_items(tiled_conv_grad_weight, x, grad_output, weight_shape, stride=stride,
            padding=padding)
    x, grad_output, (geometry, tile), grad_weight = _grad_weight_problem(
        x, grad_output, weight_shape, stride, padding, _tiled_geometry)
    if x.shape[0] == 0:
        return grad_weight
    kernel_shape = grad_weight.shape[:2 + geometry.ndim]
    for r, out_index, in_index, pairs in _tile_phases(geometry, tile):
        if in_index is None:
            continue
        grad_weight[(Ellipsis,) + r] = conv_grad_weight(
            x[in_index], grad_output[out_index], kernel_shape,
            stride=tuple(s * t for s, t in zip(geometry.stride, tile)), padding=pairs)
    return grad_weight
