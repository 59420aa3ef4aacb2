r"""Automatic choice of the convolution algorithm (chapter 9.8): a cost model, and timing.

Four algorithms compute the same convolution:

``"direct"``
    register-blocked loops, ``2 N C_out (C_in / groups) prod(k) prod(m)``
    floating-point operations (``m`` the output size); needs unit stride
    along the last axis.
``"gemm"``
    the same operations as matrix products over gathered patches.
``"fft"``
    :func:`~sigconv.functional.fft_conv`: ``N C_in + C_out C_in / groups +
    N C_out`` real transforms of the frame (``L`` samples, ``L log2 L``
    units each), plus ``N C_out (C_in / groups) F`` complex multiply-adds
    (``F`` frequencies); independent of the kernel size.
``"separable"``
    :func:`~sigconv.functional.separable_conv`, only for a depthwise (or
    single-channel) weight whose kernels are separable: ``2 N C k_a``
    operations per output of each 1-D pass, ``sum_a k_a`` instead of
    ``prod_a k_a``.

The model's estimated time of each is its work divided by a rate measured on
this machine (:data:`COST_CONSTANTS`, float32; float64 rates are half),
plus a per-output and a per-call overhead.  ``conv(method="auto")`` keeps
its previous rule among direct and gemm (direct at unit stride along the last
axis, gemm otherwise) and switches to FFT or separable only when the model
says they beat that choice; estimating costs a few microseconds, and the
rank-1 test of the kernel (an SVD) runs only when the separable path would
win.  Override by passing ``method=`` explicitly, by editing
:data:`COST_CONSTANTS`, or by timing the candidates with
``choose_conv_method(..., measure=True)``.
"""
import math
import time

import numpy as np

from .. import shapes
from .._validation import as_float_array, result_dtype
from ..errors import ArgumentError
from .conv import (_WEIGHT_LAYOUT, _check_array, _flip_spatial, _geometry, conv)
from .fft import _overlap_add_plan, frame_size
from .separable import separable_factors

__all__ = ["choose_conv_method", "COST_CONSTANTS", "estimate_conv_times"]

#: Rates and overheads of the cost model, float32, measured on the reference
#: 2-core AVX-512 machine with ``benchmarks/bench_methods.py --calibrate``.
COST_CONSTANTS = {
    # direct path: GFLOP/s with one input channel per group, and with >= 4
    "direct_rate_single": 60e9,
    "direct_rate_multi": 120e9,
    "direct_per_output": 1.3e-9,     # s per output element (row set-up, stores)
    # gemm path (patch gathering dominates for small reductions)
    "gemm_rate": 20e9,
    "gemm_per_output": 2.0e-9,
    # FFT: L log2 L units per second per transform, complex multiply-adds per second
    "fft_rate": 2.2e9,
    "fft_mix_rate": 1.5e9,
    "fft_per_output": 1.0e-9,        # sampling, bias, copies
    "fft_overhead": 60e-6,           # s per call (planning, Python)
    # separable: GFLOP/s of one depthwise 1-D pass, per-element overhead per pass
    "separable_rate": 8e9,
    "separable_per_element": 1.0e-9,
    "separable_overhead": 20e-6,     # s per pass
}

METHODS = ("direct", "gemm", "fft", "separable")


def _depthwise(geometry):
    """True when every channel is filtered on its own (or there is one channel)."""
    c_out, cin_g = geometry.weight_shape[:2]
    return cin_g == 1 and c_out == geometry.x_shape[1] and geometry.groups == c_out


def _fft_units(geometry):
    """``(transform units, complex multiply-adds)`` of fft_conv on ``geometry``."""
    n_items, c_in = geometry.x_shape[:2]
    c_out, cin_g = geometry.weight_shape[:2]
    spatial = geometry.x_shape[2:]
    spans = shapes.dilated_size(geometry.weight_shape[2:], geometry.dilation)
    transforms = n_items * c_in + c_out * cin_g + n_items * c_out
    if geometry.ndim == 1:
        plan = _overlap_add_plan(spatial[0], spans[0], c_in, c_out, n_items, 4)
        if plan is not None:
            block, size = plan
            blocks = -(-spatial[0] // block)
            return (transforms * blocks * size * math.log2(size),
                    n_items * c_out * cin_g * blocks * (size // 2 + 1))
    frame = frame_size(geometry)
    size = math.prod(frame)
    freqs = size // frame[-1] * (frame[-1] // 2 + 1)
    return transforms * size * math.log2(max(size, 2)), n_items * c_out * cin_g * freqs


def _estimate(geometry, dtype):
    """Model times (seconds) of every method that applies to ``geometry``."""
    k = COST_CONSTANTS
    slow = 2.0 if np.dtype(dtype) == np.float64 else 1.0
    n_items, c_out = geometry.out_shape[:2]
    cin_g, kernel = geometry.weight_shape[1], geometry.weight_shape[2:]
    outputs = n_items * c_out * math.prod(geometry.out_shape[2:])
    flops = 2.0 * outputs * cin_g * math.prod(kernel)
    times = {}
    if geometry.stride[-1] == 1:
        rate = k["direct_rate_multi"] if cin_g >= 4 else k["direct_rate_single"]
        times["direct"] = slow * flops / rate + outputs * k["direct_per_output"]
    times["gemm"] = slow * flops / k["gemm_rate"] + outputs * k["gemm_per_output"]
    units, macs = _fft_units(geometry)
    times["fft"] = (slow * (units / k["fft_rate"] + macs / k["fft_mix_rate"])
                    + outputs * k["fft_per_output"] + k["fft_overhead"])
    if _depthwise(geometry) and geometry.ndim > 1:
        shape, total = list(geometry.x_shape[2:]), 0.0
        for axis in range(geometry.ndim):
            shape[axis] = geometry.out_shape[2 + axis]
            elements = n_items * c_out * math.prod(shape)
            total += (slow * 2.0 * elements * kernel[axis] / k["separable_rate"]
                      + elements * k["separable_per_element"] + k["separable_overhead"])
        times["separable"] = total
    return times


def _default_path(geometry):
    """The rule ``conv(method="auto")`` had before the model: direct at unit stride, else gemm."""
    return "direct" if geometry.stride[-1] == 1 else "gemm"


def _finite(*arrays):
    """Cheap test that no array holds NaN or infinity (one reduction each)."""
    with np.errstate(all="ignore"):
        return all(np.isfinite(np.sum(a)) for a in arrays)


def _auto_choice(geometry, x, weight, dtype):
    """``(method, factors)`` for ``conv(method="auto")``; ``weight`` already flipped.

    ``method`` is "fft" or "separable" when the model says they beat the
    direct and gemm paths, else "auto": the kernel then times direct against
    gemm on first use (:mod:`sigconv.functional.tuning`).  ``factors`` are the
    per-channel separable factors when the choice is "separable", else None.
    """
    times = _estimate(geometry, dtype)
    baseline = _default_path(geometry)
    ranked = sorted((t, m) for m, t in times.items() if m in ("fft", "separable"))
    for t, m in ranked:
        if t >= times[baseline]:
            break
        if m == "separable":
            factors = separable_factors(weight[:, 0], per_channel=True)
            if factors is not None:
                return "separable", factors
        elif _finite(x, weight):
            return "fft", None
    return "auto", None


def estimate_conv_times(x, weight, *, stride=1, padding="valid", dilation=1, groups=1,
                        flip=False):
    """The cost model's estimated seconds for each applicable method.

    Parameters
    ----------
    x, weight, stride, padding, dilation, groups, flip
        As for :func:`sigconv.functional.conv`; only the shapes and dtype
        are used (the separable estimate assumes the kernel is separable).

    Returns
    -------
    dict
        ``{method: seconds}`` for ``"direct"`` (unit stride along the last
        axis only), ``"gemm"``, ``"fft"`` and, for a depthwise or
        single-channel weight with 2 or 3 spatial axes, ``"separable"``.
    """
    x, weight = _check_array(x, "x"), _check_array(weight, "weight", _WEIGHT_LAYOUT)
    dtype = result_dtype(x=x, weight=weight)
    geometry = _geometry(x.shape, weight.shape, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, flip=flip)
    return _estimate(geometry, dtype)


def choose_conv_method(x, weight, *, stride=1, padding="valid", dilation=1, groups=1,
                       flip=False, measure=False, repeat=3):
    """The fastest convolution algorithm for these inputs, by cost model or by timing.

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial)
    weight : array_like, shape (C_out, C_in // groups, *kernel)
    stride, padding, dilation, groups, flip
        As for :func:`sigconv.functional.conv`.
    measure : bool
        False: return the choice of ``conv(method="auto")`` (the cost model
        of :mod:`sigconv.functional.choose`; "separable" only if the kernel
        passes the rank-1 test, "fft" only for finite inputs).  True: run
        every applicable method on ``x`` and ``weight`` and time it.
    repeat : int
        With ``measure``: timed runs per method after one untimed warm-up;
        the best is kept.

    Returns
    -------
    str or (str, dict)
        One of ``"direct"``, ``"gemm"``, ``"fft"``, ``"separable"``; with
        ``measure``, ``(best, {method: seconds})`` over every applicable
        method (direct needs unit stride along the last axis, separable a
        separable depthwise or single-channel kernel).
    """
    if not isinstance(measure, (bool, np.bool_)):
        raise ArgumentError(f"measure must be True or False, got {measure!r}")
    if (not isinstance(repeat, (int, np.integer)) or isinstance(repeat, bool) or repeat < 1):
        raise ArgumentError(f"repeat must be a positive int, got {repeat!r}")
    x, weight = _check_array(x, "x"), _check_array(weight, "weight", _WEIGHT_LAYOUT)
    dtype = result_dtype(x=x, weight=weight)
    geometry = _geometry(x.shape, weight.shape, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, flip=flip)
    if not measure:
        xf = as_float_array(x, dtype, "x")
        wf = as_float_array(_flip_spatial(weight) if flip else weight, dtype, "weight")
        choice = _auto_choice(geometry, xf, wf, dtype)[0]
        return _default_path(geometry) if choice == "auto" else choice
    x = as_float_array(x, dtype, "x")
    weight = as_float_array(weight, dtype, "weight")
    candidates = ["gemm", "fft"]
    if geometry.stride[-1] == 1:
        candidates.insert(0, "direct")
    if (_depthwise(geometry)
            and separable_factors(weight[:, 0], per_channel=True) is not None):
        candidates.append("separable")
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    timings = {}
    for method in candidates:
        conv(x, weight, method=method, **options)          # warm-up (plans, caches)
        best = math.inf
        for _ in range(int(repeat)):
            start = time.perf_counter()
            conv(x, weight, method=method, **options)
            best = min(best, time.perf_counter() - start)
        timings[method] = best
    return min(timings, key=timings.get), timings
