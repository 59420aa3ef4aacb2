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
from __future__ import annotations
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_choice, shape_argument as _shape_of
from ..errors import ArgumentError
from ..ragged import Ragged
from ..typing import BatchLike, ConvMethod, IntOrTuple, Padding

from . import fft, separable  # called as fft._name, separable._name: tests may patch them
from ._core import (CONV_METHODS, _WEIGHT_LAYOUT, _check_array, _check_bias, _flip_spatial,
                    _forward, _forward_problem, _grad_input, _grad_input_problem, _grad_weight,
                    _grad_weight_problem, _kernel_method)
from ._costmodel import _auto_choice, _depthwise, _estimate, _finite

__all__ = ["conv", "conv_grad_input", "conv_grad_weight", "CONV_METHODS"]


def _separable_weight_factors(weight: NDArray[Any], geometry: Any, method: str) -> list[NDArray[Any]]:
    """Per-channel factors of a depthwise weight for the separable path (``method`` named it)."""
    factors = None
    if _depthwise(geometry):
        factors = separable.separable_factors(weight[:, 0], per_channel=True)
    if factors is None:
        raise ArgumentError(
            f"method={method!r} needs a depthwise weight (C, 1, *kernel) with groups=C "
            "(or one channel) whose kernels are separable (rank 1 within the dtype's "
            f"tolerance); weight has shape {geometry.weight_shape} with groups={geometry.groups}: "
            "use method='auto', 'direct', 'gemm' or 'fft'")
    return factors



def _plan(op: str, geometry: Any, arrays: tuple[NDArray[Any], NDArray[Any]],
          method: str) -> tuple[str, Any]:
    """The path of ``op`` ("forward", "grad_input", "grad_weight"): ``(path, factors)``.

    The one place that reads ``method``.  ``arrays`` are what the operation
    multiplies, in the problem's float dtype: ``(x, weight)`` for the forward
    and ``(grad_output, weight)`` for the input gradient (``weight`` already
    flipped when ``flip``), ``(x, grad_output)`` for the weight gradient.
    ``path`` is "fft", "separable" (``factors`` then holds the per-channel
    1-D factors) or what the direct/gemm kernels take: "direct", "gemm", or
    "auto" (timed on first use, :mod:`sigconv.functional.tuning`).

    A Ragged batch takes the kernels.  Forward and input gradient follow
    the cost model's choice
    (:func:`~sigconv.functional._costmodel._auto_choice`); an empty input
    gradient takes the kernels.  The weight gradient takes the FFT when
    asked, or under "auto" when the forward would leave the kernels and the
    FFT is estimated faster than gemm (the gradient of a separable kernel
    is a full kernel), and otherwise the kernels.
    """
    first, second = arrays
    if geometry.ragged:
        return _kernel_method(method), None
    if op == "grad_weight":
        if method not in ("auto", "fft") or not (first.size and second.size):
            return _kernel_method(method), None
        if method == "auto":
            times = _estimate(geometry, first.dtype)
            if not (min(times, key=times.get) in ("fft", "separable")
                    and times["fft"] < times["gemm"] and _finite(first, second)):
                return "auto", None
        return "fft", None
    if op == "grad_input" and not first.size:
        return method, None
    factors = None
    if method == "auto" and first.size:
        method, factors = _auto_choice(geometry, first, second, first.dtype)
    if method == "separable" and factors is None:
        factors = _separable_weight_factors(second, geometry, method)
    return method, factors


@overload
def conv(x: Ragged, weight: ArrayLike, bias: ArrayLike | None = None, *,
         stride: IntOrTuple = 1, padding: Padding = "valid", dilation: IntOrTuple = 1, groups: int = 1,
         flip: bool = False, method: ConvMethod = "auto") -> Ragged: ...
@overload
def conv(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
         stride: IntOrTuple = 1, padding: Padding = "valid", dilation: IntOrTuple = 1, groups: int = 1,
         flip: bool = False, method: ConvMethod = "auto") -> NDArray[Any]: ...
def conv(x: BatchLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
         stride: IntOrTuple = 1, padding: Padding = "valid", dilation: IntOrTuple = 1, groups: int = 1,
         flip: bool = False, method: ConvMethod = "auto") -> NDArray[Any] | Ragged:
    """N-d multi-channel convolution (cross-correlation unless ``flip``).

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial), or Ragged
        A batch with 1, 2 or 3 spatial axes.  A :class:`sigconv.Ragged`
        batch of differently sized items runs in one kernel call and gives a
        Ragged result whose item ``i`` equals ``conv(x[i][None], ...)[0]``.
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
    method : {"auto", "gemm", "direct", "fft", "separable"}
        ``"gemm"`` gathers bounded tiles of patches and multiplies them with
        BLAS; ``"direct"`` accumulates shifted rows in registers; ``"fft"``
        is :func:`~sigconv.functional.fft_conv`; ``"separable"`` factors a
        depthwise (or single-channel) kernel into one 1-D kernel per axis
        (:func:`~sigconv.functional.separable_conv`; raises ``ArgumentError``
        if the kernel is not separable).  ``"auto"`` takes FFT (large
        kernels, finite inputs) or separable (a separable kernel) when the
        cost model of :func:`~sigconv.functional.choose_conv_method`
        estimates them faster, and otherwise the faster of direct and gemm
        on this machine, timed on the first use of the layer signature and
        remembered (:mod:`sigconv.functional.tuning`).  All give the same
        result within float tolerance.  Ragged batches take direct or gemm.

    Returns
    -------
    ndarray, shape (N, C_out, *out_spatial)
        In the input's float dtype (see :func:`sigconv._validation.result_dtype`).
    """
    weight = _check_array(weight, "weight", _WEIGHT_LAYOUT)
    _check_bias(bias, weight.shape[0])
    check_choice(method, "method", CONV_METHODS)
    x, weight, bias, geometry = _forward_problem(x, weight, bias, stride, padding, dilation,
                                                 groups, flip)
    path, factors = _plan("forward", geometry, (x.flat, weight), method)
    if path == "fft":
        return fft._fft_forward(x.result(), weight, bias, geometry)
    if path == "separable":
        if len(x) == 0:
            return np.zeros(geometry.out_shape, dtype=x.dtype)
        out = separable._passes(x.result(), factors, geometry,
                                separable._pass_order(geometry))[-1]
        if bias is not None:
            out += bias.reshape((1, -1) + (1,) * geometry.ndim)
        return out
    out = x.empty_like(geometry.out_shapes, weight.shape[0])
    return _forward(x, weight, bias, out, geometry.pad_lo, groups=geometry.groups,
                    stride=geometry.stride, dilation=geometry.dilation,
                    input_dilation=(1,) * geometry.ndim, method=path).result()


@overload
def conv_grad_input(grad_output: Ragged, weight: ArrayLike,
                    input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                    padding: Padding = "valid", dilation: IntOrTuple = 1, groups: int = 1,
                    flip: bool = False,
                    method: ConvMethod = "auto") -> Ragged: ...
@overload
def conv_grad_input(grad_output: ArrayLike, weight: ArrayLike,
                    input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                    padding: Padding = "valid", dilation: IntOrTuple = 1, groups: int = 1,
                    flip: bool = False,
                    method: ConvMethod = "auto") -> NDArray[Any]: ...
def conv_grad_input(grad_output: BatchLike, weight: ArrayLike,
                    input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                    padding: Padding = "valid", dilation: IntOrTuple = 1, groups: int = 1,
                    flip: bool = False,
                    method: ConvMethod = "auto") -> NDArray[Any] | Ragged:
    """Gradient of :func:`conv` with respect to its input: the chapter's h(K, G, s).

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, *out_spatial), or Ragged
    weight : array_like, shape (C_out, C_in // groups, *kernel)
    input_shape : tuple of int
        ``(N, C_in, *spatial)``, the shape of the forward input; for a Ragged
        ``grad_output``, the forward input itself (or its ``(N, nd)`` shapes).
    stride, padding, dilation, groups, flip, method
        As given to :func:`conv`; ``"fft"`` and ``"separable"`` (a separable
        depthwise kernel) compute the adjoint of those paths, and ``"auto"``
        follows the choice :func:`conv` makes for the same problem.

    Returns
    -------
    ndarray, shape input_shape
    """
    weight = _check_array(weight, "weight", _WEIGHT_LAYOUT)
    check_choice(method, "method", CONV_METHODS)
    grad_output, flipped, geometry = _grad_input_problem(
        grad_output, weight, input_shape, stride, padding, dilation, groups, flip)
    path, factors = _plan("grad_input", geometry, (grad_output.flat, flipped), method)
    if path == "fft":
        return fft._fft_grad_input(grad_output.result(), flipped, geometry)
    if path == "separable":
        axes = separable._pass_order(geometry)
        return separable._adjoint_passes(grad_output.result(), factors, geometry, axes,
                                         separable._stage_shapes(geometry, axes))
    grad_input = grad_output.empty_like(geometry.in_shapes, flipped.shape[1] * geometry.groups)
    return _grad_input(grad_output, flipped, None, grad_input, geometry.pad_lo,
                       groups=geometry.groups, stride=geometry.stride,
                       dilation=geometry.dilation, flip=False, method=path).result()


def conv_grad_weight(x: BatchLike, grad_output: BatchLike, weight_shape: Sequence[int], *,
                     stride: IntOrTuple = 1, padding: Padding = "valid", dilation: IntOrTuple = 1,
                     groups: int = 1, flip: bool = False,
                     method: ConvMethod = "auto") -> NDArray[Any]:
    """Gradient of :func:`conv` with respect to its weight: the chapter's g(G, V, s).

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial), or Ragged
    grad_output : array_like, shape (N, C_out, *out_spatial), or Ragged like ``conv(x)``
    weight_shape : tuple of int
        ``(C_out, C_in // groups, *kernel)``.
    stride, padding, dilation, groups, flip, method
        As given to :func:`conv`.  ``"fft"`` correlates ``x`` with
        ``grad_output`` through the FFT
        (:func:`~sigconv.functional.fft_conv_grad_weight`); ``"auto"`` does so
        when :func:`conv` would take the FFT or separable path and the FFT is
        estimated faster than gemm (the gradient of a separable kernel is a
        full kernel).  ``"direct"`` sums channel-by-tap products in
        registers over whole rows (unit stride along the last axis), ``"gemm"``
        multiplies gathered patches; otherwise the faster of the two is timed
        on first use (:mod:`sigconv.functional.tuning`).

    Returns
    -------
    ndarray, shape weight_shape
    """
    weight_shape = _shape_of(weight_shape, "weight_shape")
    check_choice(method, "method", CONV_METHODS)
    x, grad_output, geometry = _grad_weight_problem(x, grad_output, weight_shape, stride,
                                                    padding, dilation, groups, flip)
    path, _ = _plan("grad_weight", geometry, (x.flat, grad_output.flat), method)
    if path == "fft":
        grad_weight = fft._fft_grad_weight(x.result(), grad_output.result(), geometry)
        return np.ascontiguousarray(_flip_spatial(grad_weight)) if flip else grad_weight
    grad_weight = _grad_weight(x, grad_output, weight_shape, geometry.pad_lo,
                               groups=geometry.groups, stride=geometry.stride,
                               dilation=geometry.dilation, method=path)
    return _flip_spatial(grad_weight).copy() if flip else grad_weight
