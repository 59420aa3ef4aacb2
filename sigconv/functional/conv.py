r"""Convolution and its two gradients (chapter 9.1 and 9.5).

Notation follows the chapter.  For input ``V`` of shape ``(N, C_in, *spatial)``
and kernel ``K`` of shape ``(C_out, C_in / groups, *kernel)``, cross-correlation
with stride ``s`` and dilation ``d`` (``flip=False``, what networks use) is

.. math:: Z_{i, \mathbf{j}} = \sum_{l, \mathbf{m}}
          V_{l, \mathbf{j} s + \mathbf{m} d - \mathbf{lo}} \, K_{i, l, \mathbf{m}}

summed over the input channels ``l`` of output channel ``i``'s group and the
kernel offsets ``m``; samples outside the input are the zeros of the padding.
``flip=True`` flips ``K`` along every spatial axis: true convolution, as in
``scipy.signal.convolve``.  :func:`conv_grad_input` is the chapter's
``h(K, G, s)`` and :func:`conv_grad_weight` its ``g(G, V, s)``.

Output sizes and padding modes are defined once, in :mod:`sigconv.shapes`.
"""
import contextlib
import numbers
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from .. import shapes
from .._kernels import conv as _kernel
from .._validation import as_float_array, as_tuple, check_choice, result_dtype
from ..errors import ArgumentError, ShapeError

__all__ = ["conv", "conv_grad_input", "conv_grad_weight", "CONV_METHODS"]

#: Accepted values of ``method``.
CONV_METHODS = ("auto", "gemm", "direct")

#: Bytes of patch matrix each thread gathers at once (fits in a 2 MiB L2 cache).
WORKSPACE_BYTES = 1 << 20

#: Largest matrix dimension the 32-bit BLAS interface of scipy accepts.
_BLAS_INT_MAX = 2**31 - 1

_WEIGHT_LAYOUT = "(C_out, C_in // groups, *kernel)"

_blas_controller = None


def _blas_single_thread():
    """Context holding BLAS to one thread while the kernel's own threads call gemm."""
    global _blas_controller
    if _blas_controller is None:
        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


@dataclass(frozen=True)
class ConvGeometry:
    """A validated convolution problem: shapes and options, one entry per spatial axis."""

    x_shape: tuple
    weight_shape: tuple
    out_shape: tuple
    stride: tuple
    dilation: tuple
    padding: tuple  # (lo, hi) pairs
    groups: int

    @property
    def ndim(self):
        return len(self.x_shape) - 2


def _shape_of(value, name):
    if not isinstance(value, (tuple, list)) or not all(
            isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool) and v >= 0
            for v in value):
        raise ArgumentError(f"{name} must be a tuple of non-negative ints, got {value!r}")
    return tuple(int(v) for v in value)


def _geometry(x_shape, weight_shape, *, stride, padding, dilation, groups, flip,
              x_name="x", weight_name="weight"):
    """Validate shapes and options of a convolution; return its :class:`ConvGeometry`."""
    x_shape, weight_shape = tuple(x_shape), tuple(weight_shape)
    if not 3 <= len(x_shape) <= 5:
        raise ShapeError(
            f"{x_name} must have shape (N, C_in, *spatial) with 1 to 3 spatial axes, "
            f"got shape {x_shape} ({len(x_shape)}-d)")
    if not 3 <= len(weight_shape) <= 5 or len(weight_shape) != len(x_shape):
        raise ShapeError(
            f"{weight_name} must have shape (C_out, C_in // groups, *kernel) with as many "
            f"spatial axes as {x_name}: {x_name} has shape {x_shape}, "
            f"{weight_name} has shape {weight_shape}")
    nd = len(x_shape) - 2
    if not isinstance(groups, (numbers.Integral, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ArgumentError(f"groups must be a positive int, got {groups!r}")
    groups = int(groups)
    stride = as_tuple(stride, nd, "stride", minimum=1)
    dilation = as_tuple(dilation, nd, "dilation", minimum=1)
    n, c_in, spatial = x_shape[0], x_shape[1], x_shape[2:]
    c_out, c_in_g, kernel = weight_shape[0], weight_shape[1], weight_shape[2:]
    if c_in % groups or c_out % groups:
        raise ShapeError(
            f"groups={groups} must divide both C_in and C_out: {x_name} has shape {x_shape}, "
            f"{weight_name} has shape {weight_shape}")
    if c_in_g * groups != c_in:
        raise ShapeError(
            f"channel mismatch: {x_name} has {c_in} channels (shape {x_shape}) but "
            f"{weight_name} expects {c_in_g} * groups={groups} = {c_in_g * groups} "
            f"(shape {weight_shape})")
    if c_out == 0 or c_in == 0 or any(k == 0 for k in kernel):
        raise ShapeError(f"{weight_name} has an empty axis: shape {weight_shape}")
    if any(size == 0 for size in spatial):
        raise ShapeError(f"{x_name} has a zero-length spatial axis: shape {x_shape}")
    pads = shapes.resolve_padding(padding, spatial, kernel, stride, dilation, flip=flip)
    out_spatial = shapes.conv_output_size(spatial, kernel, stride, pads, dilation)
    if any(m < 1 for m in out_spatial):
        spans = shapes.dilated_size(kernel, dilation)
        raise ShapeError(
            f"kernel is larger than the padded input: {x_name} spatial shape {spatial} with "
            f"padding {pads}, dilated kernel span {spans}; pad the input or use a smaller kernel")
    largest = max(int(np.prod(spatial)), int(np.prod(out_spatial)), c_in_g * int(np.prod(kernel)))
    if largest > _BLAS_INT_MAX:
        raise ShapeError(
            f"{x_name} shape {x_shape} with {weight_name} shape {weight_shape} has {largest} "
            f"positions or taps per item; BLAS indexes at most {_BLAS_INT_MAX}: split the item")
    return ConvGeometry(x_shape, weight_shape, (n, c_out) + out_spatial, stride, dilation,
                        pads, groups)


def _to_3d(values, fill):
    """Prefix per-axis values with ``fill`` up to three spatial axes (1-D, 2-D are 3-D)."""
    return (fill,) * (3 - len(values)) + tuple(values)


def _item_table(n, in_channels, in_spatial, out_channels, out_spatial, pad_lo):
    """The kernel's per-item description of a dense batch (all items the same shape)."""
    in_size, out_size = int(np.prod(in_spatial)), int(np.prod(out_spatial))
    table = np.empty((n, 11), dtype=np.intp)
    table[:, 0] = np.arange(n) * in_channels * in_size
    table[:, 1:4] = _to_3d(in_spatial, 1)
    table[:, 4] = np.arange(n) * out_channels * out_size
    table[:, 5:8] = _to_3d(out_spatial, 1)
    table[:, 8:11] = _to_3d(pad_lo, 0)
    return table


def _flip_spatial(weight):
    """``weight`` reversed along every spatial axis (true convolution)."""
    return weight[(slice(None), slice(None)) + (slice(None, None, -1),) * (weight.ndim - 2)]


def _resolve_method(method, stride, input_dilation):
    """The kernel path for ``method``.

    ``"auto"`` takes the direct path whenever its vector loop applies (unit
    stride and no input dilation along the last axis): it measured faster
    than gemm on every layer of the benchmark, from 1 to 32 input channels.
    Strided layers take the gemm path.
    """
    check_choice(method, "method", CONV_METHODS)
    if method == "auto":
        return "direct" if stride[-1] == 1 and input_dilation[-1] == 1 else "gemm"
    return method


def _check_bias(bias, c_out):
    if bias is not None and np.shape(bias) != (c_out,):
        raise ShapeError(f"bias must have shape ({c_out},) (one value per output channel), "
                         f"got shape {np.shape(bias)}")


def _check_array(value, name, layout="(N, C, *spatial)"):
    """A numpy view of ``value``, with a clear error for a 0-d value."""
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.ndim == 0:
        raise ShapeError(f"{name} must have shape {layout}, got a 0-d value {value!r}")
    return array


def _pad_last_axis(x, out_width, kernel_width, dilation, pad_lo):
    """Zero-pad the last axis so that every unit-stride window lies inside it.

    The direct kernel then reads input rows in place instead of copying each
    row with its padding for every output row.  Costs one copy of ``x``.
    Returns the padded array and the remaining (non-positive) padding.
    """
    lo = pad_lo[-1]
    left = max(lo, 0)
    right = max(out_width + (kernel_width - 1) * dilation - lo - x.shape[-1], 0)
    if left == 0 and right == 0:
        return x, pad_lo
    padded = np.zeros(x.shape[:-1] + (x.shape[-1] + left + right,), dtype=x.dtype)
    padded[..., left:left + x.shape[-1]] = x
    return padded, tuple(pad_lo[:-1]) + (lo - left,)


def _forward(x, weight, bias, out_shape, *, groups, stride, dilation, input_dilation,
             pad_lo, method):
    """Run the forward kernel on contiguous float arrays; return the output array.

    ``input_dilation`` inserts ``d - 1`` zeros between input samples (the
    input gradient of a strided convolution); ``pad_lo`` may be negative.
    """
    out = np.empty(out_shape, dtype=x.dtype)
    if out.size == 0:
        return out
    path = _resolve_method(method, stride, input_dilation)
    if path == "direct" and stride[-1] == 1 and input_dilation[-1] == 1:
        x, pad_lo = _pad_last_axis(x, out_shape[-1], weight.shape[-1], dilation[-1], pad_lo)
    cin, cout = x.shape[1], out_shape[1]
    table = _item_table(x.shape[0], cin, x.shape[2:], cout, out_shape[2:], pad_lo)
    bias = np.empty(0, dtype=x.dtype) if bias is None else bias
    with _blas_single_thread() if path == "gemm" else contextlib.nullcontext():
        _kernel.conv_forward(x.reshape(-1), weight.reshape(-1), out.reshape(-1), table,
                             cin, cout, groups, _to_3d(weight.shape[2:], 1), _to_3d(stride, 1),
                             _to_3d(dilation, 1), _to_3d(input_dilation, 1),
                             bias, path == "direct", WORKSPACE_BYTES)
    return out


def conv(x, weight, bias=None, *, stride=1, padding="valid", dilation=1, groups=1,
         flip=False, method="auto"):
    """N-d multi-channel convolution (cross-correlation unless ``flip``).

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial)
        A batch with 1, 2 or 3 spatial axes.
    weight : array_like, shape (C_out, C_in // groups, *kernel)
    bias : array_like, shape (C_out,), optional
    stride, dilation : int or tuple of int
        One value for every axis, or one per spatial axis.
    padding : {"valid", "same", "full"}, int, tuple of int or tuple of (int, int)
        See :mod:`sigconv.shapes`; ``"same"`` gives ``ceil(n / stride)``
        outputs for any stride.
    groups : int
        Input and output channels are split into ``groups`` independent
        convolutions.
    flip : bool
        True convolution (kernel flipped), as ``scipy.signal.convolve``.
    method : {"auto", "gemm", "direct"}
        ``"gemm"`` gathers bounded tiles of patches and multiplies them with
        BLAS; ``"direct"`` accumulates shifted rows in registers; ``"auto"``
        takes the direct path when the stride along the last axis is 1.
        All give the same result.

    Returns
    -------
    ndarray, shape (N, C_out, *out_spatial)
        In the input's float dtype (see :func:`sigconv._validation.result_dtype`).
    """
    x, weight = _check_array(x, "x"), _check_array(weight, "weight", _WEIGHT_LAYOUT)
    dtype = result_dtype(x=x, weight=weight, bias=bias)
    geometry = _geometry(x.shape, weight.shape, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, flip=flip)
    _check_bias(bias, weight.shape[0])
    check_choice(method, "method", CONV_METHODS)
    x = as_float_array(x, dtype, "x")
    weight = as_float_array(_flip_spatial(weight) if flip else weight, dtype, "weight")
    bias = None if bias is None else as_float_array(bias, dtype, "bias")
    pad_lo = tuple(lo for lo, _ in geometry.padding)
    return _forward(x, weight, bias, geometry.out_shape, groups=geometry.groups,
                    stride=geometry.stride, dilation=geometry.dilation,
                    input_dilation=(1,) * geometry.ndim, pad_lo=pad_lo, method=method)


def conv_grad_input(grad_output, weight, input_shape, *, stride=1, padding="valid",
                    dilation=1, groups=1, flip=False, method="auto"):
    """Gradient of :func:`conv` with respect to its input: the chapter's h(K, G, s).

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, *out_spatial)
    weight : array_like, shape (C_out, C_in // groups, *kernel)
    input_shape : tuple of int
        ``(N, C_in, *spatial)``, the shape of the forward input.
    stride, padding, dilation, groups, flip, method
        As given to :func:`conv`.

    Returns
    -------
    ndarray, shape input_shape
    """
    grad_output = _check_array(grad_output, "grad_output")
    weight = _check_array(weight, "weight", _WEIGHT_LAYOUT)
    input_shape = _shape_of(input_shape, "input_shape")
    dtype = result_dtype(grad_output=grad_output, weight=weight)
    geometry = _geometry(input_shape, weight.shape, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, flip=flip, x_name="input_shape")
    if grad_output.shape != geometry.out_shape:
        raise ShapeError(f"grad_output must have the forward output's shape {geometry.out_shape}, "
                         f"got shape {grad_output.shape}")
    check_choice(method, "method", CONV_METHODS)
    grad_output = as_float_array(grad_output, dtype, "grad_output")
    # h(K, G, s) is a convolution of G, input-dilated by the stride, with the
    # kernel flipped and its channel axes swapped within each group.
    effective = weight if flip else _flip_spatial(weight)
    c_out, c_in_g, kernel = weight.shape[0], weight.shape[1], weight.shape[2:]
    g = geometry.groups
    swapped = (np.asarray(effective).reshape((g, c_out // g, c_in_g) + kernel)
               .swapaxes(1, 2).reshape((c_in_g * g, c_out // g) + kernel))
    swapped = as_float_array(swapped, dtype, "weight")
    spans = shapes.dilated_size(kernel, geometry.dilation)
    pad_lo = tuple(e - 1 - lo for e, (lo, _) in zip(spans, geometry.padding))
    return _forward(grad_output, swapped, None, input_shape, groups=geometry.groups,
                    stride=(1,) * geometry.ndim, dilation=geometry.dilation,
                    input_dilation=geometry.stride, pad_lo=pad_lo, method=method)


def conv_grad_weight(x, grad_output, weight_shape, *, stride=1, padding="valid",
                     dilation=1, groups=1, flip=False, method="auto"):
    """Gradient of :func:`conv` with respect to its weight: the chapter's g(G, V, s).

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial)
    grad_output : array_like, shape (N, C_out, *out_spatial)
    weight_shape : tuple of int
        ``(C_out, C_in // groups, *kernel)``.
    stride, padding, dilation, groups, flip, method
        As given to :func:`conv` (``method`` is accepted for symmetry; the
        weight gradient always uses gemm).

    Returns
    -------
    ndarray, shape weight_shape
    """
    x, grad_output = _check_array(x, "x"), _check_array(grad_output, "grad_output")
    weight_shape = _shape_of(weight_shape, "weight_shape")
    dtype = result_dtype(x=x, grad_output=grad_output)
    geometry = _geometry(x.shape, weight_shape, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, flip=flip, weight_name="weight_shape")
    if grad_output.shape != geometry.out_shape:
        raise ShapeError(f"grad_output must have the forward output's shape {geometry.out_shape}, "
                         f"got shape {grad_output.shape}")
    check_choice(method, "method", CONV_METHODS)
    x = as_float_array(x, dtype, "x")
    grad_output = as_float_array(grad_output, dtype, "grad_output")
    grad_weight = np.empty(weight_shape, dtype=dtype)
    if x.shape[0] == 0 or grad_weight.size == 0:
        grad_weight[...] = 0
        return grad_weight
    table = _item_table(x.shape[0], x.shape[1], x.shape[2:], weight_shape[0],
                        geometry.out_shape[2:], tuple(lo for lo, _ in geometry.padding))
    with _blas_single_thread():
        _kernel.conv_weight_grad(x.reshape(-1), grad_output.reshape(-1), grad_weight.reshape(-1),
                                 table, x.shape[1], weight_shape[0], geometry.groups,
                                 _to_3d(weight_shape[2:], 1), _to_3d(geometry.stride, 1),
                                 _to_3d(geometry.dilation, 1), WORKSPACE_BYTES)
    return _flip_spatial(grad_weight).copy() if flip else grad_weight
