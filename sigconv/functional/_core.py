r"""What every convolution variant shares: geometry, checks and the kernel calls.

A leaf of :mod:`sigconv.functional`: it imports no sibling but
:mod:`~sigconv.functional.tuning`.  :mod:`~sigconv.functional.conv` (the
public functions and the one plan that picks a path),
:mod:`~sigconv.functional.fft`, :mod:`~sigconv.functional.separable`,
:mod:`~sigconv.functional.transposed` and :mod:`~sigconv.functional.unshared`
build on it.  Notation as in :mod:`sigconv.functional.conv`.

- :class:`ConvGeometry`, from :func:`_geometry` (dense) or :func:`_ragged_geometry`
  (every item of a Ragged batch at once), both through :func:`_validate`;
- argument checks (``_check_array``, ``_check_bias``, ``_check_grad_output``);
- kernel layouts (``_flip_spatial``, ``_swap_groups``, ``_swapped_kernel``,
  the item tables);
- the kernel calls: :func:`_run_forward`, :func:`_run_weight_grad`, and on
  them one path each for the forward and both gradients (``_forward``,
  ``_grad_input``, ``_grad_weight``), reading a dense or a Ragged batch
  alike as a :class:`sigconv.ragged.Batch`.
"""
from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from .. import shapes
from .. import _kernels as _kernel
from . import tuning
from .._validation import (as_float_array, as_tuple, check_choice, check_flag, check_int,
                           check_size, result_dtype, shape_argument as _shape_of)
from ..errors import ShapeError
from ..ragged import Batch, Ragged, lift3

#: Accepted values of ``method``.  "fft" and "separable" live in
#: :mod:`sigconv.functional.fft` and :mod:`sigconv.functional.separable`;
#: "auto" asks the cost model of :mod:`sigconv.functional.choose` (FFT, separable) and times
#: direct against gemm (:mod:`sigconv.functional.tuning`).
CONV_METHODS = ("auto", "gemm", "direct", "fft", "separable")


#: Bytes of patch matrix each thread gathers at once (fits in a 2 MiB L2 cache).
WORKSPACE_BYTES = 1 << 20


#: Largest matrix dimension the 32-bit BLAS interface of scipy accepts.
_BLAS_INT_MAX = 2**31 - 1


_WEIGHT_LAYOUT = "(C_out, C_in // groups, *kernel)"


class _BlasOneThread:
    """Holds BLAS to one thread while any caller is inside; thread-safe and re-entrant.

    sigconv's OpenMP threads call gemm themselves, and scipy's OpenBLAS is a
    pthreads build that would start its own threads inside each call.  The
    first caller to enter sets the limit, the last to leave restores the
    limits found on entry, so concurrent callers (the kernels release the
    GIL) never leave the process's BLAS at one thread.  While any sigconv
    gemm call runs, other BLAS calls of the process also get one thread.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._limiter: Any = None  # a threadpoolctl limit while a caller is inside
        self._controller: ThreadpoolController | None = None

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                if self._controller is None:
                    self._controller = ThreadpoolController()
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._depth += 1
        return self

    def __exit__(self, *exc_info):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                self._limiter.restore_original_limits()
                self._limiter = None
        return False


_blas_one_thread = _BlasOneThread()


def _blas_single_thread():
    """Context holding BLAS to one thread while the kernel's own threads call gemm."""
    return _blas_one_thread


@dataclass(frozen=True)
class ConvGeometry:
    """A validated convolution problem: the options and each item's padding and output size.

    ``in_shapes``, ``out_shapes`` and ``pad_lo`` are ``(M, nd)`` int64
    arrays: one row for a dense batch (every item alike), one per item of a
    Ragged batch.  ``x_shape``, ``out_shape`` and ``padding`` (``(lo, hi)``
    pairs) describe a dense batch, and are None for a Ragged one.
    """

    x_shape: tuple[int, ...] | None
    weight_shape: tuple[int, ...]
    out_shape: tuple[int, ...] | None
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[tuple[int, int], ...] | None  # (lo, hi) pairs
    groups: int
    in_shapes: np.ndarray
    out_shapes: np.ndarray
    pad_lo: np.ndarray

    @property
    def ndim(self):
        return len(self.weight_shape) - 2

    @property
    def ragged(self):
        return self.x_shape is None


def _validate(describe, spatial, weight_shape, *, stride, padding, dilation, groups, flip,
              weight_name):
    """Validate a convolution of a batch of items; their padding and output sizes, all at once.

    ``spatial`` holds the items' spatial shapes, an ``(M, nd)`` int array
    (one row for a dense batch); ``describe(i)`` gives the name and
    ``(N, C_in, *spatial)`` shape that errors quote for item ``i`` (item 0
    for what all items share).  Returns ``stride``, ``dilation``, ``groups``
    and the ``(M, nd)`` arrays ``pad_lo``, ``pad_hi``, ``out_spatial``.
    """
    x_name, x_shape = describe(0)
    weight_shape = tuple(weight_shape)
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
    groups = check_int(groups, "groups")
    check_flag(flip, "flip")
    stride = as_tuple(stride, nd, "stride", minimum=1)
    dilation = as_tuple(dilation, nd, "dilation", minimum=1)
    c_in = x_shape[1]
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
    empty = (spatial == 0).any(axis=1)
    if empty.any():
        x_name, x_shape = describe(int(np.argmax(empty)))
        raise ShapeError(f"{x_name} has a zero-length spatial axis: shape {x_shape}")
    lo, hi, out = shapes._conv_sizes(np.asarray(spatial, dtype=np.int64), tuple(kernel), stride,
                                     padding, dilation, flip)
    too_small = (out < 1).any(axis=1)
    if too_small.any():
        i = int(np.argmax(too_small))
        x_name, x_shape = describe(i)
        pads = tuple(zip(lo[i].tolist(), hi[i].tolist()))
        spans = shapes.dilated_size(kernel, dilation)
        raise ShapeError(
            f"kernel is larger than the padded input: {x_name} spatial shape {x_shape[2:]} with "
            f"padding {pads}, dilated kernel span {spans}; pad the input or use a smaller kernel")
    # Python ints: no int64 wrap-around however large the sizes
    outputs = c_out * x_shape[0] * sum(math.prod(row) for row in out.tolist())
    check_size((outputs,), np.float32, "the output",
               f"padding {tuple(zip(lo[0].tolist(), hi[0].tolist()))}, stride {stride} and "
               f"dilation {dilation} against {x_name} shape {x_shape}")
    largest = np.maximum(np.maximum(np.prod(spatial, axis=1), np.prod(out, axis=1)),
                         c_in_g * int(np.prod(kernel)))
    too_large = largest > _BLAS_INT_MAX
    if too_large.any():
        i = int(np.argmax(too_large))
        x_name, x_shape = describe(i)
        raise ShapeError(
            f"{x_name} shape {x_shape} with {weight_name} shape {weight_shape}, padding "
            f"{tuple(zip(lo[i].tolist(), hi[i].tolist()))}, stride {stride} and dilation "
            f"{dilation} has {largest[i]} positions or taps per item; BLAS indexes at most "
            f"{_BLAS_INT_MAX}: split the item")
    return stride, dilation, groups, lo, hi, out


def _geometry(x_shape, weight_shape, *, stride, padding, dilation, groups, flip,
              x_name="x", weight_name="weight"):
    """Validate shapes and options of a convolution; return its :class:`ConvGeometry`."""
    x_shape, weight_shape = tuple(x_shape), tuple(weight_shape)
    stride, dilation, groups, lo, hi, out = _validate(
        lambda i: (x_name, x_shape), np.array([x_shape[2:]], dtype=np.int64), weight_shape,
        stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip,
        weight_name=weight_name)
    out_shape = (x_shape[0], weight_shape[0]) + tuple(out[0].tolist())
    return ConvGeometry(x_shape, weight_shape, out_shape, stride, dilation,
                        tuple(zip(lo[0].tolist(), hi[0].tolist())), groups,
                        np.array([x_shape[2:]], dtype=np.int64), out, lo)


def _ragged_geometry(shapes_, channels, weight_shape, options, *, x_name="x",
                     weight_name="weight"):
    """Validate every item of a Ragged batch at once; its :class:`ConvGeometry`.

    Errors name the first offending item (``"x item 3"``) and its
    ``(1, C, *spatial)`` shape; what all items share is checked once,
    quoting item 0.
    """
    spatial = np.asarray(shapes_, dtype=np.int64)
    if len(spatial) == 0:
        raise ShapeError(f"{x_name} is a Ragged batch of no items")
    stride, dilation, groups, lo, _, out = _validate(
        lambda i: (f"{x_name} item {i}", (1, channels) + tuple(spatial[i].tolist())), spatial,
        weight_shape, weight_name=weight_name, **options)
    return ConvGeometry(None, tuple(weight_shape), None, stride, dilation, None, groups,
                        spatial, out, lo)


def _forward_problem(x, weight, bias, stride, padding, dilation, groups, flip):
    """A forward, checked and converted: ``x`` (a :class:`~sigconv.ragged.Batch`), ``weight``, ``bias``, geometry.

    ``x`` is an ``(N, C_in, *spatial)`` array or a Ragged; ``weight`` is
    flipped when ``flip`` (true convolution).
    """
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    weight = _check_array(weight, "weight", _WEIGHT_LAYOUT)
    if isinstance(x, Ragged):
        dtype = result_dtype(x=x.data, weight=weight, bias=bias)
        geometry = _ragged_geometry(x.shapes, x.channels, weight.shape, options)
    else:
        x = _check_array(x, "x")
        dtype = result_dtype(x=x, weight=weight, bias=bias)
        geometry = _geometry(x.shape, weight.shape, **options)
    _check_bias(bias, weight.shape[0])
    weight = as_float_array(_flip_spatial(weight) if flip else weight, dtype, "weight")
    bias = None if bias is None else as_float_array(bias, dtype, "bias")
    return Batch.of(x, dtype, "x"), weight, bias, geometry


def _grad_input_problem(grad_output, weight, input_shape, stride, padding, dilation, groups,
                        flip):
    """An input gradient, checked and converted: ``grad_output`` (a Batch), ``weight``, geometry.

    ``input_shape`` is the forward input's shape, or for a Ragged
    ``grad_output`` the forward input itself (or its ``(N, nd)`` shapes).
    ``weight`` is flipped when ``flip`` (as the forward uses it).
    """
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    weight = _check_array(weight, "weight", _WEIGHT_LAYOUT)
    if isinstance(grad_output, Ragged):
        dtype = result_dtype(grad_output=grad_output.data, weight=weight)
        channels = weight.shape[1] * check_int(groups, "groups")
        geometry = _ragged_geometry(_ragged_shapes(input_shape, "input_shape"), channels,
                                    weight.shape, options, x_name="input_shape")
        _check_ragged_grad(grad_output, geometry)
    else:
        grad_output = _check_array(grad_output, "grad_output")
        input_shape = _shape_of(input_shape, "input_shape")
        dtype = result_dtype(grad_output=grad_output, weight=weight)
        geometry = _geometry(input_shape, weight.shape, x_name="input_shape", **options)
        _check_grad_output(grad_output, geometry.out_shape)
    weight = as_float_array(_flip_spatial(weight) if flip else weight, dtype, "weight")
    return Batch.of(grad_output, dtype, "grad_output"), weight, geometry


def _grad_weight_problem(x, grad_output, weight_shape, stride, padding, dilation, groups, flip):
    """A weight gradient, checked and converted: ``x``, ``grad_output`` (Batches), geometry."""
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    if isinstance(x, Ragged):
        dtype = result_dtype(x=x.data, grad_output=getattr(grad_output, "data", grad_output))
        geometry = _ragged_geometry(x.shapes, x.channels, weight_shape, options,
                                    weight_name="weight_shape")
        _check_ragged_grad(grad_output, geometry)
    else:
        x, grad_output = _check_array(x, "x"), _check_array(grad_output, "grad_output")
        weight_shape = _shape_of(weight_shape, "weight_shape")
        dtype = result_dtype(x=x, grad_output=grad_output)
        geometry = _geometry(x.shape, weight_shape, weight_name="weight_shape", **options)
        _check_grad_output(grad_output, geometry.out_shape)
    return Batch.of(x, dtype, "x"), Batch.of(grad_output, dtype, "grad_output"), geometry


def _ragged_shapes(value, name):
    """Spatial shapes of a Ragged batch, or an ``(N, nd)`` shapes array, as given for input_shape."""
    if isinstance(value, Ragged):
        return value.shapes
    shapes_ = np.asarray(value)
    if shapes_.ndim != 2 or shapes_.dtype.kind not in "iu":
        raise ShapeError(f"{name} for a Ragged grad_output must be the forward input (a Ragged) "
                         f"or its (N, nd) spatial shapes, got {value!r}")
    return shapes_


def _check_grad_output(grad_output, expected):
    """A dense ``grad_output`` must have the forward output's shape ``expected``."""
    if isinstance(grad_output, Ragged) or grad_output.shape != expected:
        got = repr(grad_output) if isinstance(grad_output, Ragged) else \
            f"shape {grad_output.shape}"
        raise ShapeError(f"grad_output must have the forward output's shape {expected}, "
                         f"got {got}")


def _check_ragged_grad(grad_output, geometry):
    """A Ragged ``grad_output`` must have the forward output's channels and item shapes."""
    c_out, expected = geometry.weight_shape[0], geometry.out_shapes
    if (not isinstance(grad_output, Ragged) or len(grad_output) != len(expected)
            or grad_output.channels != c_out or grad_output.ndim != expected.shape[1]
            or not np.array_equal(grad_output.shapes, expected)):
        raise ShapeError(f"grad_output must be a Ragged of {c_out} channels and item shapes "
                         f"{[tuple(s) for s in expected.tolist()]}, got {grad_output!r}")


def _conv_table(in_table, out_table, pad_lo):
    """The forward kernel's ``(N, 11)`` table: each item's input and output rows and padding.

    ``in_table`` and ``out_table`` are :meth:`sigconv.ragged.Batch.table`
    rows ``(offset, D, H, W)``; ``pad_lo`` the zeros before the input on
    each of the 1-3 spatial axes, one row for all items or one per item
    (leading axes are lifted with 0, as the table's (D, H, W)).
    """
    pad_lo = np.asarray(pad_lo, dtype=np.intp)
    table = np.zeros((len(in_table), 11), dtype=np.intp)
    table[:, 0:4] = in_table
    table[:, 4:8] = out_table
    table[:, 11 - pad_lo.shape[-1]:] = pad_lo
    return table


def _flip_spatial(weight):
    """``weight`` reversed along every spatial axis (true convolution)."""
    return weight[(slice(None), slice(None)) + (slice(None, None, -1),) * (weight.ndim - 2)]


def _kernel_paths(method, stride, input_dilation):
    """The kernel paths ("direct", "gemm") ``method`` lets the forward kernel take, default last.

    An explicit "direct" or "gemm" is obeyed.  Otherwise (``"auto"``, and
    "fft" or "separable" given a Ragged batch) both are candidates when the
    direct path's vector loop applies (unit stride and no input dilation
    along the last axis), and :func:`sigconv.functional.tuning.choose_path`
    times them; otherwise gemm alone.
    """
    check_choice(method, "method", CONV_METHODS)
    if method in ("gemm", "direct"):
        return (method,)
    if tuning.default_path(stride, input_dilation) == "direct":
        return ("gemm", "direct")
    return ("gemm",)


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


def _run_forward(x, weight, bias, out, table, *, groups, stride, dilation, input_dilation,
                 method, op="forward", pad_for_direct=None):
    """Call the forward kernel on the flat buffers of Batches ``x`` and ``out`` read through ``table``.

    ``input_dilation`` inserts ``d - 1`` zeros between input samples (the
    input gradient of a strided convolution); the table's padding may be
    negative.  ``table`` is a function that builds it (only gemm reads it
    when ``pad_for_direct`` is given).  ``pad_for_direct()``, when given,
    returns the ``(x, table)`` the direct path reads instead (the input
    padded along its last axis).  ``op`` names the operation in the tuning
    cache.  Returns the path taken.
    """
    bias = np.empty(0, dtype=x.dtype) if bias is None else bias
    args = (weight.reshape(-1), out.flat)
    sizes = (weight.shape[1] * groups, weight.shape[0], groups, lift3(weight.shape[2:], 1),
             lift3(stride, 1), lift3(dilation, 1), lift3(input_dilation, 1), bias)

    def run(path):
        if path == "direct" and pad_for_direct:
            source, items = pad_for_direct()
        else:
            source, items = x.flat, table()
        with _blas_single_thread() if path == "gemm" else contextlib.nullcontext():
            _kernel.conv_forward(source, args[0], args[1], items, *sizes, path == "direct",
                                 WORKSPACE_BYTES)

    paths = _kernel_paths(method, stride, input_dilation)
    key = ""  # one path: tuning.choose_path runs it without looking the key up
    if len(paths) > 1:
        key = tuning.signature(op, x.dtype, weight.shape, groups, stride, dilation,
                               input_dilation, _output_sizes(out), _kernel.max_threads())
    flops = 2.0 * out.flat.size * weight[0].size
    return tuning.choose_path(key, paths, run, flops)


def _output_sizes(out):
    """``(items, positions per item, row length)`` of an output Batch, for tuning."""
    return len(out), int(out.positions.mean()), int(out.shapes[:, -1].mean())


def _run_weight_grad(x, grad_output, weight_shape, table, *, groups, stride, dilation,
                     method="auto"):
    """Call a weight-gradient kernel on flat buffers described by ``table``.

    The gemm path multiplies gathered patches; the direct path (unit stride
    along the last axis; other strides take gemm) keeps channel-by-tap
    accumulators in registers over whole rows.  ``"auto"`` times both on
    first use of the layer signature.
    """
    grad_weight = np.zeros(weight_shape, dtype=x.dtype)
    if len(table) == 0 or grad_weight.size == 0:
        return grad_weight
    sizes = (weight_shape[1] * groups, weight_shape[0], groups, lift3(weight_shape[2:], 1),
             lift3(stride, 1), lift3(dilation, 1))

    def run(path):
        if path == "direct":
            _kernel.conv_weight_grad_direct(x, grad_output, grad_weight.reshape(-1), table,
                                            *sizes)
            return
        with _blas_single_thread():
            _kernel.conv_weight_grad(x, grad_output, grad_weight.reshape(-1), table, *sizes,
                                     WORKSPACE_BYTES)

    # the direct weight gradient needs unit stride along the last axis
    paths = _kernel_paths(method, stride, (1,) * len(stride)) if stride[-1] == 1 else ("gemm",)
    key = ""  # one path: tuning.choose_path runs it without looking the key up
    if len(paths) > 1:
        positions = table[:, 5] * table[:, 6] * table[:, 7]
        key = tuning.signature("grad_weight", x.dtype, weight_shape, groups, stride, dilation,
                               (1,) * len(stride),
                               (len(table), positions.mean(), table[:, 7].mean()),
                               _kernel.max_threads())
    tuning.choose_path(key, paths, run, 2.0 * grad_output.size * math.prod(weight_shape[1:]))
    return grad_weight


# -- the three kernel paths: one each for a dense or a Ragged batch (sigconv.ragged.Batch) --

def _forward(x, weight, bias, out, pad_lo, *, groups, stride, dilation, input_dilation,
             method, op="forward"):
    """The forward kernel from Batch ``x`` into Batch ``out``; returns ``out``.

    ``pad_lo`` is the padding before the input, ``(nd,)`` for all items or
    ``(N, nd)``, one row per item.  A dense batch's unit-stride rows may be
    read in place from a copy padded along its last axis (:func:`_pad_last_axis`).
    """
    if out.flat.size == 0:
        return out
    pad_lo = np.asarray(pad_lo)
    if not x.ragged:  # one row for every item
        pad_lo = pad_lo.reshape(-1, pad_lo.shape[-1])[0]

    def table():
        return _conv_table(x.table(), out.table(), pad_lo)

    def pad_for_direct():  # unit-stride rows read in place (see _pad_last_axis)
        padded, lo = _pad_last_axis(x.result(), out.dense_shape[-1], weight.shape[-1],
                                    dilation[-1], tuple(pad_lo.tolist()))
        padded = Batch.of(padded)
        return padded.flat, _conv_table(padded.table(), out.table(), np.asarray(lo))

    vector_rows = not x.ragged and tuning.default_path(stride, input_dilation) == "direct"
    _run_forward(x, weight, bias, out, table, groups=groups, stride=stride, dilation=dilation,
                 input_dilation=input_dilation, method=method, op=op,
                 pad_for_direct=pad_for_direct if vector_rows else None)
    return out


def _grad_input(grad_output, weight, bias, grad_input, pad_lo, *, groups, stride, dilation,
                flip, method):
    """h(K, G, s), unvalidated: the input gradient written into Batch ``grad_input``, plus ``bias``.

    A convolution of G, input-dilated by the stride, with the kernel flipped
    and its channel axes swapped within each group.  ``stride``,
    ``dilation`` and ``pad_lo`` (``(nd,)`` or one row per item) are the
    forward's; ``grad_input`` has ``grad_output``'s dtype.  Returns ``grad_input``.
    """
    swapped = _swapped_kernel(weight, groups, flip, grad_output.dtype)
    return _forward(grad_output, swapped, bias, grad_input,
                    _grad_input_pad_lo(weight.shape[2:], dilation, pad_lo), groups=groups,
                    stride=(1,) * len(stride), dilation=dilation, input_dilation=stride,
                    method=method, op="grad_input")


def _grad_weight(x, grad_output, weight_shape, pad_lo, *, groups, stride, dilation,
                 method="auto"):
    """g(G, V, s) of Batches ``x`` and ``grad_output``, unvalidated; ``pad_lo`` the forward's."""
    table = _conv_table(x.table(), grad_output.table(), np.asarray(pad_lo))
    return _run_weight_grad(x.flat, grad_output.flat, weight_shape, table, groups=groups,
                            stride=stride, dilation=dilation, method=_kernel_method(method))


def _swapped_kernel(weight, groups, flip, dtype):
    """The kernel of h(K, G, s): flipped, with its channel axes swapped within each group.

    ``(C_out, C_in / g, *k)`` becomes ``(C_in, C_out / g, *k)``; a kernel
    already flipped by ``flip=True`` is flipped back.
    """
    effective = np.asarray(weight if flip else _flip_spatial(weight))
    return as_float_array(_swap_groups(effective, groups), dtype, "weight")


def _swap_groups(k, groups):
    """``(C_out, cin_g, ...)`` to ``(C_in, cout_g, ...)``, channel axes swapped within each group."""
    c_out, cin_g, rest = k.shape[0], k.shape[1], k.shape[2:]
    return (k.reshape((groups, c_out // groups, cin_g) + rest).swapaxes(1, 2)
            .reshape((cin_g * groups, c_out // groups) + rest))


def _grad_input_pad_lo(kernel, dilation, pad_lo):
    """Padding before G in h(K, G, s): the dilated span minus one, minus the forward's.

    ``pad_lo`` is the forward's padding before the input, ``(nd,)`` or one row per item.
    """
    return np.array(shapes.dilated_size(tuple(kernel), dilation)) - 1 - np.asarray(pad_lo)


def _kernel_method(method):
    """The weight gradient's kernel choice for ``method``: "direct" or "gemm" if forced, else "auto"."""
    return method if method in ("direct", "gemm") else "auto"
