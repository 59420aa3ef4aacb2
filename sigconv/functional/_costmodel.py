"""The cost model of ``conv(method="auto")``: estimated seconds of each path, and its choice.

Described in :mod:`sigconv.functional.choose`, which holds the public
:func:`~sigconv.functional.choose.estimate_conv_times` and
:func:`~sigconv.functional.choose.choose_conv_method` and re-exports
:data:`COST_CONSTANTS` (the same dict: editing either edits the model).
Depends on the leaves only: the FFT frame of :mod:`~sigconv.functional.fft`
and the rank-1 test of :mod:`~sigconv.functional.separable`.
"""
import math

import numpy as np

from .. import shapes
from .fft import _overlap_add_plan, frame_size
from .separable import separable_factors

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
