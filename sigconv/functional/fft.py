r"""Convolution through the fast Fourier transform (chapter 9.8), with its gradients.

The chapter (section 9.8): "convolution is equivalent to converting both the
input and the kernel to the frequency domain using a Fourier transform,
performing point-wise multiplication of the two signals, and converting back
to the time domain".  For a kernel of ``k`` taps per axis this costs
``O(n log n)`` per signal instead of ``O(n k)``: it wins for large kernels.

Notation as in :mod:`sigconv.functional.conv`.  Per spatial axis the input
(``n`` samples) is embedded at the start of a circular frame of ``L`` samples,

.. math:: L \ge \max(n + \max(lo, hi),\; e,\; (m - 1) s + 1)

(``e`` the dilated kernel span, ``m`` the output size), rounded up to a fast
length (:func:`scipy.fft.next_fast_len`), at offset ``lo``.  The circular
cross-correlation ``c = irfft(rfft(V) * conj(rfft(K_d)))`` with the dilated
kernel ``K_d`` then holds every output: ``Z[j] = c[j s]``.  The frame is
long enough that reads past its end wrap into the zeros before the input, so
only ``max(lo, hi)`` zeros are needed, not ``lo + hi``; stride is a
subsampling of ``c``, and the sum over input channels is a small matrix
product per frequency.  Both gradients are the adjoints of these steps in the
same frame:

* input: scatter ``G`` to ``j s``, multiply by ``rfft(K_d)`` (circular
  convolution, the adjoint of correlation), keep the input's place;
* weight: ``sum_N conj(rfft(G_scattered)) * rfft(V)``, read at lags ``m d``.

Long 1-D signals use overlap-add instead (:data:`OVERLAP_ADD_BYTES`): blocks
of ``B`` samples are transformed at a length ``P >= B + e - 1`` chosen to
minimise ``ceil(n / B) P log P``, and processed a few at a time so that the
working memory stays bounded however long the signal is.

Results equal :func:`sigconv.functional.conv` within floating-point
tolerance: in float64 about ``1e-15`` relative to the output's scale, in
float32 about ``1e-6`` (the transforms run in the input's precision).  One
difference: a NaN or infinity in the input reaches every output of its
channel's transform, not only the windows that read it;
``conv(method="auto")`` therefore takes this path only for finite inputs.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray
import scipy.fft as _fft

from .. import shapes
from ..ragged import Ragged, map_grad_input, map_items, sum_over_items
from ._core import (_flip_spatial, _forward_problem, _grad_input_problem, _grad_weight_problem,
                    _swap_groups)
from ..typing import BatchLike, IntOrTuple, Padding

__all__ = ["fft_conv", "fft_conv_grad_input", "fft_conv_grad_weight"]

#: Working memory (bytes) of one overlap-add chunk; a 1-D problem whose
#: whole-signal frame would need more than this always uses overlap-add.
OVERLAP_ADD_BYTES = 64 << 20


#: Below this many samples per transformed batch scipy.fft runs on one thread
#: (a second thread measured no faster on a 540x540 frame, and slower when the
#: machine is busy).
THREADED_FFT_SAMPLES = 1 << 21


def _workers(samples=None):
    """Threads for scipy.fft: one for small batches, else the CPUs this process may use."""
    if samples is not None and samples < THREADED_FFT_SAMPLES:
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------
# the circular frame shared by forward and gradients
# ---------------------------------------------------------------------------

def frame_size(geometry: Any) -> tuple[int, ...]:
    """Circular frame length per axis: ``max(n + max(lo, hi), e, (m - 1) s + 1)``, made fast."""
    spans = shapes.dilated_size(geometry.weight_shape[2:], geometry.dilation)
    return tuple(
        _fft.next_fast_len(max(n + max(lo, hi), e, (m - 1) * s + 1), real=True)
        for n, (lo, hi), e, m, s in zip(geometry.x_shape[2:], geometry.padding, spans,
                                        geometry.out_shape[2:], geometry.stride))


def _frame(geometry):
    """Frame length, the input's place in the frame and the output positions, per axis.

    The input sits at offset ``lo`` of a zero frame (indices past the end of
    the frame wrap into the zeros before it, because ``L >= n + hi``), so
    output ``j`` reads ``c[j s]``: a strided slice.
    """
    frame = frame_size(geometry)
    place = tuple(slice(lo, lo + n) for (lo, _), n in zip(geometry.padding, geometry.x_shape[2:]))
    where = tuple(slice(0, (m - 1) * s + 1, s)
                  for m, s in zip(geometry.out_shape[2:], geometry.stride))
    return frame, place, where


def _kernel_spectrum(kernel, frame, workers):
    """``rfftn`` of a small array zero-padded to ``frame``, pruned.

    The real transform runs along the last axis on the kernel's own rows
    only, and each complex transform along an earlier axis on the lines that
    the transforms before it filled: for a 31x31 kernel in a 540x540 frame,
    31 + 271 line transforms instead of 540 + 271.
    """
    nd = len(frame)
    spec = _fft.rfft(kernel, n=frame[-1], axis=-1, workers=workers)
    for axis in range(nd - 2, -1, -1):
        spec = _fft.fft(spec, n=frame[axis], axis=kernel.ndim - nd + axis, workers=workers,
                        overwrite_x=True)
    return spec


def _in_frame(x, frame, place):
    """``x`` placed in a zero frame ``(N, C, *frame)``."""
    framed = np.zeros(x.shape[:2] + tuple(frame), dtype=x.dtype)
    framed[(slice(None), slice(None)) + place] = x
    return framed


def _dilate(weight, dilation):
    """``weight`` with ``d - 1`` zeros between taps on each spatial axis."""
    if all(d == 1 for d in dilation):
        return weight
    kernel = weight.shape[2:]
    spans = shapes.dilated_size(kernel, dilation)
    out = np.zeros(weight.shape[:2] + spans, dtype=weight.dtype)
    out[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dilation)] = weight
    return out


def _sample(c, where):
    """``c[..., where_0, where_1, ...]`` as a contiguous array."""
    return np.ascontiguousarray(c[(Ellipsis,) + where])


def _mix(x, k, groups):
    """Sum over input channels per frequency: ``Y[n, o] = sum_c X[n, c] K[o, c]`` by group.

    ``x``: ``(N, C_in, *T)`` spectra; ``k``: ``(C_out, C_in // groups, *T')``
    with ``T'`` broadcastable to ``T``.  Returns ``(N, C_out, *T)``.
    """
    n, tail = x.shape[0], x.shape[2:]
    c_out, cin_g = k.shape[0], k.shape[1]
    cout_g = c_out // groups
    xg = x.reshape((n, groups, cin_g) + tail)                     # (N, G, cin_g, *T)
    kg = k.reshape((groups, cout_g, cin_g) + k.shape[2:])        # (G, cout_g, cin_g, *T')
    if cin_g * cout_g <= 64:
        # a few broadcast multiply-adds, each over every frequency at once
        y = xg[:, :, None, 0] * kg[None, :, :, 0]                 # (N, G, cout_g, *T)
        for c in range(1, cin_g):
            y += xg[:, :, None, c] * kg[None, :, :, c]
    else:
        # per frequency a (N x cin_g) by (cin_g x cout_g) product: batched matmul
        xm = np.moveaxis(xg, (0, 2), (-2, -1))                    # (G, *T, N, cin_g)
        km = np.moveaxis(kg, (1, 2), (-1, -2))                    # (G, *T', cin_g, cout_g)
        y = np.moveaxis(np.matmul(xm, km), (-2, -1), (0, 2))      # (N, G, cout_g, *T)
    return y.reshape((n, c_out) + tail)


# ---------------------------------------------------------------------------
# forward
# ---------------------------------------------------------------------------

def _overlap_add_plan(n, span, channels_in, channels_out, items, itemsize):
    """Block length ``B`` and transform length ``P`` of 1-D overlap-add, or None.

    None when a single whole-signal transform is estimated cheaper and fits in
    :data:`OVERLAP_ADD_BYTES`.
    """
    if span < 2:
        return None
    whole = _fft.next_fast_len(n + span - 1, real=True)
    transforms = items * (channels_in + channels_out)
    best = (transforms * whole * math.log2(whole), None)
    p = 1 << max(int(math.ceil(math.log2(2 * span))), 6)
    while p < whole:
        size = _fft.next_fast_len(p, real=True)
        block = size - span + 1
        cost = transforms * math.ceil(n / block) * size * math.log2(size) * 1.05
        if cost < best[0]:
            best = (cost, (block, size))
        p *= 2
    frame_bytes = items * (channels_in + channels_out) * whole * itemsize * 3
    if best[1] is None and frame_bytes > OVERLAP_ADD_BYTES:
        size = _fft.next_fast_len(max(2 * span, 1 << 12), real=True)
        best = (0, (size - span + 1, size))
    return best[1]


def _forward_overlap_add(x, weight, groups, geometry, plan, workers):
    """1-D correlation by overlap-add; returns the strided, padded output (no bias)."""
    block, size = plan
    n_items, c_in, n = x.shape
    c_out = weight.shape[0]
    (lo, _), = geometry.padding
    span, = shapes.dilated_size(weight.shape[2:], geometry.dilation)
    (s,), (m,) = geometry.stride, geometry.out_shape[2:]
    # full[u] = sum_t x[u - (e - 1) + t] k_d[t]: linear convolution with the flipped kernel
    k = _fft.rfft(_dilate(weight, geometry.dilation)[..., ::-1], n=size, axis=-1,
                  workers=workers)[:, :, None, :]                 # (C_out, cin_g, 1, F)
    blocks = -(-n // block)
    full = np.zeros((n_items, c_out, (blocks + 1) * block), dtype=x.dtype)
    itemsize = np.dtype(x.dtype).itemsize
    per_block = n_items * (c_in + 2 * c_out) * size * itemsize * 3
    chunk = max(1, int(OVERLAP_ADD_BYTES // max(per_block, 1)))
    tail = size - block                                             # = e - 1 + slack <= block
    for b0 in range(0, blocks, chunk):
        b1 = min(blocks, b0 + chunk)
        seg = x[..., b0 * block:b1 * block]
        if seg.shape[-1] < (b1 - b0) * block:
            seg = np.concatenate(
                [seg, np.zeros(seg.shape[:-1] + ((b1 - b0) * block - seg.shape[-1],), x.dtype)], -1)
        seg = seg.reshape(n_items, c_in, b1 - b0, block)           # (N, C_in, nb, B)
        spec = _fft.rfft(seg, n=size, axis=-1, workers=workers)    # (N, C_in, nb, F)
        y = _fft.irfft(_mix(spec, k, groups), n=size, axis=-1,
                       workers=workers)                            # (N, C_out, nb, P)
        dst = full[..., b0 * block:(b1 + 1) * block].reshape(n_items, c_out, b1 - b0 + 1, block)
        dst[:, :, :-1] += y[..., :block]
        if tail:
            dst[:, :, 1:, :tail] += y[..., block:block + tail]
    valid = n + span - 1
    idx = np.arange(m) * s - lo + span - 1
    if idx[0] >= 0 and idx[-1] < valid:
        return full[..., idx[0]:idx[-1] + 1:s].copy() if s > 1 else full[..., idx[0]:idx[0] + m].copy()
    out = np.zeros((n_items, c_out, m), dtype=x.dtype)
    inside = (idx >= 0) & (idx < valid)
    out[..., inside] = full[..., idx[inside]]
    return out


def _fft_forward(x, weight, bias, geometry):
    """Correlation of contiguous float arrays ``x`` and (already flipped) ``weight``."""
    nd, groups = geometry.ndim, geometry.groups
    workers = _workers(x.shape[0] * max(x.shape[1], weight.shape[0]) * math.prod(frame_size(geometry)))
    if nd == 1:
        plan = _overlap_add_plan(x.shape[-1], shapes.dilated_size(weight.shape[-1],
                                                                  geometry.dilation[0]),
                                 x.shape[1], weight.shape[0], x.shape[0], x.dtype.itemsize)
        if plan is not None:
            out = _forward_overlap_add(x, weight, groups, geometry, plan, workers)
            return _add_bias(out, bias)
    frame, place, where = _frame(geometry)
    axes = tuple(range(2, 2 + nd))
    spec = _fft.rfftn(_in_frame(x, frame, place), axes=axes, workers=workers)  # (N, C_in, *F)
    k = np.conj(_kernel_spectrum(_dilate(weight, geometry.dilation), frame,
                                 workers))                                    # (C_out, cin_g, *F)
    c = _fft.irfftn(_mix(spec, k, groups), s=frame, axes=axes, workers=workers)  # (N, C_out, *L)
    del spec
    return _add_bias(_sample(c, where), bias)


def _add_bias(out, bias):
    if bias is not None:
        out += bias.reshape((1, -1) + (1,) * (out.ndim - 2))
    return out


@overload
def fft_conv(x: Ragged, weight: ArrayLike, bias: ArrayLike | None = None, *,
             stride: IntOrTuple = 1, padding: Padding = "valid", dilation: IntOrTuple = 1,
             groups: int = 1, flip: bool = False) -> Ragged: ...
@overload
def fft_conv(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
             stride: IntOrTuple = 1, padding: Padding = "valid", dilation: IntOrTuple = 1,
             groups: int = 1, flip: bool = False) -> NDArray[Any]: ...
def fft_conv(x: BatchLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
             stride: IntOrTuple = 1, padding: Padding = "valid", dilation: IntOrTuple = 1,
             groups: int = 1, flip: bool = False) -> NDArray[Any] | Ragged:
    """N-d multi-channel convolution through the FFT; the same result as :func:`conv`.

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial)
        A batch with 1, 2 or 3 spatial axes.
    weight : array_like, shape (C_out, C_in // groups, *kernel)
    bias : array_like, shape (C_out,), optional
    stride, padding, dilation, groups, flip
        As for :func:`sigconv.functional.conv`: every padding mode, stride
        (a subsampling of the full result), dilation (a kernel with zeros
        between its taps) and groups.

    Returns
    -------
    ndarray, shape (N, C_out, *out_spatial)
        In the input's float dtype.

    Notes
    -----
    Costs about ``(N C_in + C_out C_in / groups + N C_out) L log L`` for the
    transforms plus ``N C_out C_in / groups L`` complex multiply-adds, with
    ``L`` the frame size (see the module docstring), independent of the
    kernel size.  Long 1-D signals are processed by overlap-add in bounded
    memory.  Non-finite inputs spread over their whole channel.
    """
    if isinstance(x, Ragged):  # item by item: each item sizes its own work
        return map_items(fft_conv, x, weight, bias, stride=stride, padding=padding,
            dilation=dilation, groups=groups, flip=flip)
    x, weight, bias, geometry = _forward_problem(x, weight, bias, stride, padding, dilation,
                                                 groups, flip)
    return _fft_forward(x.result(), weight, bias, geometry)


def _grad_output_frame(grad_output, frame, where):
    """``grad_output`` scattered into the circular frame at the sampled positions."""
    gc = np.zeros(grad_output.shape[:2] + frame, dtype=grad_output.dtype)
    gc[(Ellipsis,) + where] = grad_output
    return gc


@overload
def fft_conv_grad_input(grad_output: Ragged, weight: ArrayLike,
                        input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                        padding: Padding = "valid", dilation: IntOrTuple = 1, groups: int = 1,
                        flip: bool = False) -> Ragged: ...
@overload
def fft_conv_grad_input(grad_output: ArrayLike, weight: ArrayLike,
                        input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                        padding: Padding = "valid", dilation: IntOrTuple = 1, groups: int = 1,
                        flip: bool = False) -> NDArray[Any]: ...
def fft_conv_grad_input(grad_output: BatchLike, weight: ArrayLike,
                        input_shape: Sequence[int] | BatchLike, *, stride: IntOrTuple = 1,
                        padding: Padding = "valid", dilation: IntOrTuple = 1, groups: int = 1,
                        flip: bool = False) -> NDArray[Any] | Ragged:
    """Gradient of :func:`fft_conv` (and :func:`conv`) with respect to its input, by FFT.

    Parameters and result as :func:`sigconv.functional.conv_grad_input`.
    ``conv_grad_input(..., method="fft")`` calls this function.
    """
    if isinstance(grad_output, Ragged):  # item by item: each item sizes its own work
        return map_grad_input(fft_conv_grad_input, grad_output, weight, input_shape, stride=stride,
            padding=padding, dilation=dilation, groups=groups, flip=flip)
    grad_output, weight, geometry = _grad_input_problem(
        grad_output, weight, input_shape, stride, padding, dilation, groups, flip)
    return _fft_grad_input(grad_output.result(), weight, geometry)


def _fft_grad_input(grad_output, weight, geometry):
    workers = _workers(grad_output.shape[0] * max(grad_output.shape[1], geometry.x_shape[1])
                       * math.prod(frame_size(geometry)))
    frame, place, where = _frame(geometry)
    axes = tuple(range(2, 2 + geometry.ndim))
    if grad_output.shape[0] == 0:
        return np.zeros(geometry.x_shape, dtype=grad_output.dtype)
    spec = _fft.rfftn(_grad_output_frame(grad_output, frame, where),
                      axes=axes, workers=workers)                              # (N, C_out, *F)
    k = _kernel_spectrum(_dilate(weight, geometry.dilation), frame,
                         workers)                                              # (C_out, cin_g, *F)
    gx = _fft.irfftn(_mix(spec, _swap_groups(k, geometry.groups), geometry.groups),
                     s=frame, axes=axes, workers=workers)                      # (N, C_in, *L)
    return np.ascontiguousarray(gx[(slice(None), slice(None)) + place])


def fft_conv_grad_weight(x: BatchLike, grad_output: BatchLike, weight_shape: Sequence[int], *,
                         stride: IntOrTuple = 1, padding: Padding = "valid",
                         dilation: IntOrTuple = 1, groups: int = 1,
                         flip: bool = False) -> NDArray[Any]:
    """Gradient of :func:`fft_conv` (and :func:`conv`) with respect to its weight, by FFT.

    Parameters and result as :func:`sigconv.functional.conv_grad_weight`.
    ``conv_grad_weight(..., method="fft")`` calls this function.
    """
    if isinstance(x, Ragged):  # item by item: each item sizes its own work
        return sum_over_items(fft_conv_grad_weight, x, grad_output, weight_shape, stride=stride,
            padding=padding, dilation=dilation, groups=groups, flip=flip)
    x, grad_output, geometry = _grad_weight_problem(x, grad_output, weight_shape, stride,
                                                    padding, dilation, groups, flip)
    grad_weight = _fft_grad_weight(x.result(), grad_output.result(), geometry)
    return np.ascontiguousarray(_flip_spatial(grad_weight)) if flip else grad_weight


def _fft_grad_weight(x, grad_output, geometry):
    workers = _workers(x.shape[0] * max(x.shape[1], grad_output.shape[1])
                       * math.prod(frame_size(geometry)))
    frame, place, where = _frame(geometry)
    nd, groups = geometry.ndim, geometry.groups
    axes = tuple(range(2, 2 + nd))
    c_out, cin_g = geometry.weight_shape[:2]
    if x.shape[0] == 0:
        return np.zeros(geometry.weight_shape, dtype=x.dtype)
    gspec = _fft.rfftn(_grad_output_frame(grad_output, frame, where),
                       axes=axes, workers=workers)                             # (N, C_out, *F)
    xspec = _fft.rfftn(_in_frame(x, frame, place), axes=axes, workers=workers)  # (N, C_in, *F)
    n_items, tail = x.shape[0], xspec.shape[2:]
    # R[g, o, c] = sum_N conj(G[n, g, o]) X[n, g, c]: the items play the channels' role in _mix
    gt = np.conj(gspec).reshape((n_items, groups, c_out // groups) + tail)
    xt = xspec.reshape((n_items, groups, cin_g) + tail)
    r = _correlate_items(gt, xt)                                  # (G, cout_g, cin_g, *F)
    r = _fft.irfftn(r.reshape((c_out, cin_g) + tail), s=frame, axes=axes, workers=workers)
    taps = tuple(slice(0, (k - 1) * d + 1, d)
                 for k, d in zip(geometry.weight_shape[2:], geometry.dilation))
    return np.ascontiguousarray(r[(slice(None), slice(None)) + taps])


def _correlate_items(gt, xt):
    """``sum_n gt[n, g, o] * xt[n, g, c]`` per frequency: ``(G, cout_g, cin_g, *F)``."""
    n_items = gt.shape[0]
    if n_items * gt.shape[2] * xt.shape[2] <= 256:
        r = gt[0][:, :, None] * xt[0][:, None, :]
        for n in range(1, n_items):
            r += gt[n][:, :, None] * xt[n][:, None, :]
        return r
    gm = np.moveaxis(gt, (0, 1, 2), (-1, 0, -2))                  # (G, *F, cout_g, N)
    xm = np.moveaxis(xt, (0, 1, 2), (-2, 0, -1))                  # (G, *F, N, cin_g)
    r = np.matmul(gm, xm)                                         # (G, *F, cout_g, cin_g)
    return np.moveaxis(r, (-2, -1), (1, 2))
