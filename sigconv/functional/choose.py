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
from __future__ import annotations

import math
import time
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike

from .._validation import as_float_array, check_int, result_dtype
from ..errors import ArgumentError
from ._core import _WEIGHT_LAYOUT, _check_array, _flip_spatial, _geometry
# COST_CONSTANTS is the model's own dict: editing choose.COST_CONSTANTS edits the model
from ._costmodel import (COST_CONSTANTS, METHODS, _auto_choice, _default_path, _depthwise,
                         _estimate)
from .conv import conv
from .separable import separable_factors
from ..typing import ConvMethod, IntOrTuple, Padding

__all__ = ["choose_conv_method", "COST_CONSTANTS", "estimate_conv_times"]

def estimate_conv_times(x: ArrayLike, weight: ArrayLike, *, stride: IntOrTuple = 1,
                        padding: Padding = "valid", dilation: IntOrTuple = 1, groups: int = 1,
                        flip: bool = False) -> dict[str, float]:
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


@overload
def choose_conv_method(x: ArrayLike, weight: ArrayLike, *, stride: IntOrTuple = 1,
                       padding: Padding = "valid", dilation: IntOrTuple = 1, groups: int = 1,
                       flip: bool = False, measure: Literal[False] = False,
                       repeat: int = 3) -> str: ...
@overload
def choose_conv_method(x: ArrayLike, weight: ArrayLike, *, stride: IntOrTuple = 1,
                       padding: Padding = "valid", dilation: IntOrTuple = 1, groups: int = 1,
                       flip: bool = False, measure: Literal[True],
                       repeat: int = 3) -> tuple[str, dict[str, float]]: ...
def choose_conv_method(x: ArrayLike, weight: ArrayLike, *, stride: IntOrTuple = 1,
                       padding: Padding = "valid", dilation: IntOrTuple = 1, groups: int = 1,
                       flip: bool = False, measure: bool = False,
                       repeat: int = 3) -> str | tuple[str, dict[str, float]]:
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
    repeat = check_int(repeat, "repeat")
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
    candidates: list[ConvMethod] = ["gemm", "fft"]
    if geometry.stride[-1] == 1:
        candidates.insert(0, "direct")
    if (_depthwise(geometry)
            and separable_factors(weight[:, 0], per_channel=True) is not None):
        candidates.append("separable")
    options: dict[str, Any] = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    timings: dict[str, float] = {}
    for method in candidates:
        conv(x, weight, method=method, **options)          # warm-up (plans, caches)
        best = math.inf
        for _ in range(int(repeat)):
            start = time.perf_counter()
            conv(x, weight, method=method, **options)
            best = min(best, time.perf_counter() - start)
        timings[method] = best
    return min(timings, key=timings.__getitem__), timings
