"""Differentiable versions of sigconv's functional ops, on :class:`~sigconv.Tensor`.

Each op is a :class:`~sigconv.autograd.Function` whose ``forward`` calls the
validated op of :mod:`sigconv.functional` and whose ``backward`` calls that
op's own gradient (``conv_grad_input``, ``max_pool_backward``, ...), so the
Cython kernels do the work in both directions.  Arguments may be Tensors or
numpy arrays (arrays are constants); options keep the names and defaults of
:mod:`sigconv.functional`.  Layers in :mod:`sigconv.nn` call these.

A Tensor holding a :class:`sigconv.Ragged` batch goes through ``conv``,
``conv_transpose``, ``tiled_conv``, ``separable_conv``, ``fft_conv``, the
window poolings, ``maxout``, ``max_unpool``, ``batch_norm`` (statistics over
the items' real positions), ``group_norm`` and ``instance_norm`` (each item's
own statistics), ``dropout`` and the activations, each item as if alone;
``global_pool`` and ``adaptive_pool`` turn it into a dense array.
``local_conv``, whose filters are tied to positions, raises an
``ArgumentError`` for one.  ``interpolate`` and ``cat`` (along channels) take
Ragged batches too, item by item.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special as _special

from .. import _kernels as _k
from .. import functional as _F
from .._validation import as_tuple, check_int, check_positive_real, result_dtype
from .._ops import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Tanh, cat
from ..autograd import Function, Tensor, as_tensor
from ..errors import ArgumentError, ShapeError
from ..functional.pooling import _check_p
from ..ragged import Batch, Ragged
from ..typing import ConvMethod, IntOrTuple, Padding, PoolKind, Seed, TensorLike

__all__ = [
    "conv", "conv_transpose", "local_conv", "tiled_conv", "separable_conv", "fft_conv",
    "max_pool", "avg_pool", "lp_pool", "gaussian_pool", "global_pool",
    "adaptive_pool", "maxout", "max_unpool", "batch_norm", "batch_norm_relu",
    "group_norm", "instance_norm", "layer_norm", "linear", "dropout",
    "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu", "log_softmax", "softmax", "flatten",
    "interpolate", "cat",
]


def _spatial_axes(x):
    return (0,) + tuple(range(2, x.ndim))


def _layout(x):
    """What a backward function needs to know of a forward input: its shape, or the Ragged itself."""
    return x if isinstance(x, Ragged) else x.shape


def _bias_sum(g):
    """Gradient of a per-channel bias added to ``g`` (dense or Ragged): (C,).

    Each row (one channel of one item) is summed in ``g``'s dtype, the rows
    of a channel in float64 (:meth:`sigconv.ragged.Batch.channel_sums`).
    """
    return Batch.of(g).channel_sums().astype(g.dtype)


# ---------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------

class _Conv(Function):
    """A convolution-like op of sigconv.functional and its two gradient functions.

    ``op`` names the op; its gradients are ``op + "_grad_input"`` and
    ``op + "_grad_weight"``, which take the forward input's shape (or the
    Ragged itself) and the forward options.
    """

    ragged: ClassVar[str | None] = "native"
    op = "conv"
    b_shape: Any  # the bias's shape, None without a bias (then bias_grad is not called)

    def forward(self, x, weight, bias, **options):
        self.options, self.x_shape, self.w_shape = options, _layout(x), weight.shape
        self.b_shape = None if bias is None else bias.shape
        self.x = x if self.needs_input_grad[1] else None
        self.weight = weight if self.needs_input_grad[0] else None
        return getattr(_F, self.op)(x, weight, bias, **options)

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        grad_input = getattr(_F, self.op + "_grad_input")
        grad_weight = getattr(_F, self.op + "_grad_weight")
        gx = grad_input(g, self.weight, self.x_shape, **self.options) if need_x else None
        gw = grad_weight(self.x, g, self.w_shape, **self.options) if need_w else None
        return gx, gw, self.bias_grad(g) if need_b else None

    def bias_grad(self, g):
        """Gradient of a per-channel bias (C,) added to the output ``g``."""
        return _bias_sum(g)


def conv(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None, *, stride: IntOrTuple = 1, padding: Padding = "valid",
         dilation: IntOrTuple = 1, groups: int = 1, flip: bool = False,
         method: ConvMethod = "auto") -> Tensor:
    """Differentiable :func:`sigconv.functional.conv` (same arguments)."""
    return _Conv.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation,
                       groups=groups, flip=flip, method=method)


class _ConvTranspose(_Conv):
    op = "conv_transpose"


def conv_transpose(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None, *, stride: IntOrTuple = 1, padding: Padding = 0,
                   output_padding: IntOrTuple = 0, dilation: IntOrTuple = 1, groups: int = 1,
                   output_size: Sequence[int] | None = None) -> Tensor:
    """Differentiable :func:`sigconv.functional.conv_transpose` (weight ``(C_in, C_out // groups, *k)``)."""
    return _ConvTranspose.apply(x, weight, bias, stride=stride, padding=padding,
                                output_padding=output_padding, dilation=dilation, groups=groups,
                                output_size=output_size)


def _bias_grad(g, bias_shape, tile=None):
    """Gradient of a bias of shape (C,), (C, *out_spatial) or (C, *tile) added to ``g``."""
    if len(bias_shape) == 1:
        return g.sum(axis=_spatial_axes(g))
    if tile is None:  # one value per channel and position
        return g.sum(axis=0)
    out = np.zeros(bias_shape, g.dtype)
    for offset in np.ndindex(*tile):  # position j uses entry j % tile
        index = (slice(None), slice(None)) + tuple(slice(o, None, t) for o, t in zip(offset, tile))
        out[(slice(None),) + offset] = g[index].sum(axis=_spatial_axes(g))
    return out


class _Unshared(_Conv):
    """Local (unshared) and tiled convolution: a bias may also vary with position or tile."""

    ragged: ClassVar[str | None] = None

    def tile(self) -> tuple[int, ...] | None:
        """The tile shape of a tiled convolution; None for an unshared one (a bias per position)."""
        raise NotImplementedError

    def bias_grad(self, g):
        if isinstance(g, Ragged):
            if len(self.b_shape) == 1:
                return _bias_sum(g)
            # item by item, as the forward: each item's tile phases start at its own origin
            return sum(_bias_grad(gi[None], self.b_shape, self.tile()) for gi in g)
        return _bias_grad(g, self.b_shape, self.tile())


class _LocalConv(_Unshared):
    op = "local_conv"

    def tile(self):
        return None


class _TiledConv(_Unshared):
    op = "tiled_conv"
    ragged = "native"  # item by item (each item's tile phases start at its own origin)

    def tile(self):
        return self.w_shape[2 + (len(self.w_shape) - 2) // 2:]


def local_conv(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None, *, stride: IntOrTuple = 1,
               padding: Padding = "valid") -> Tensor:
    """Differentiable :func:`sigconv.functional.local_conv` (weight ``(C_out, *out, C_in, *k)``)."""
    return _LocalConv.apply(x, weight, bias, stride=stride, padding=padding)


def tiled_conv(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None, *, stride: IntOrTuple = 1,
               padding: Padding = "valid") -> Tensor:
    """Differentiable :func:`sigconv.functional.tiled_conv` (weight ``(C_out, C_in, *k, *tile)``)."""
    return _TiledConv.apply(x, weight, bias, stride=stride, padding=padding)


class _SeparableConv(Function):
    ragged = "native"  # item by item
    x: Any  # the forward input when a factor's gradient is wanted, else None

    def forward(self, x, bias, *factors, **options):
        self.options, self.x_shape, self.factors = options, _layout(x), factors
        self.x = x if any(self.needs_input_grad[2:]) else None
        return _F.separable_conv(x, list(factors), bias, **options)

    def backward(self, g):
        need_x, need_b = self.needs_input_grad[:2]
        gx = (_F.separable_conv_grad_input(g, list(self.factors), self.x_shape, **self.options)
              if need_x else None)
        gb = _bias_sum(g) if need_b else None
        gf = (_F.separable_conv_grad_factors(self.x, g, list(self.factors), **self.options)
              if any(self.needs_input_grad[2:]) else [None] * len(self.factors))
        return (gx, gb) + tuple(gf)


def separable_conv(x: TensorLike, factors: Sequence[TensorLike], bias: TensorLike | None = None, *, stride: IntOrTuple = 1,
                   padding: Padding = "valid", dilation: IntOrTuple = 1, flip: bool = False) -> Tensor:
    """Differentiable :func:`sigconv.functional.separable_conv` (one 1-D factor per axis)."""
    return _SeparableConv.apply(x, bias, *factors, stride=stride, padding=padding,
                                dilation=dilation, flip=flip)


class _FFTConv(_Conv):  # Ragged batches item by item
    op = "fft_conv"


def fft_conv(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None, *, stride: IntOrTuple = 1, padding: Padding = "valid",
             dilation: IntOrTuple = 1, groups: int = 1, flip: bool = False) -> Tensor:
    """Differentiable :func:`sigconv.functional.fft_conv` (same result as :func:`conv`)."""
    return _FFTConv.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation,
                          groups=groups, flip=flip)


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------

class _MaxPool(Function):
    ragged = "native"

    def forward(self, x, **options):
        self.shape = _layout(x)
        if not self.needs_input_grad[0]:
            return _F.max_pool(x, **options)
        out, self.indices = _F.max_pool(x, return_indices=True, **options)
        return out

    def backward(self, g):
        return (_F.max_pool_backward(g, self.indices, self.shape),)


def max_pool(x: TensorLike, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
             dilation: IntOrTuple = 1, ceil_mode: bool = False) -> Tensor:
    """Differentiable :func:`sigconv.functional.max_pool` (values only)."""
    return _MaxPool.apply(x, kernel_size=kernel_size, stride=stride, padding=padding,
                          dilation=dilation, ceil_mode=ceil_mode)


class _AvgPool(Function):
    """A linear window pooling of sigconv.functional and its gradient.

    ``op`` names the op; its gradient is ``op + "_backward"``, which takes the
    forward input's shape (or the Ragged itself) and the forward options.
    """

    ragged = "native"
    op = "avg_pool"

    def forward(self, x, **options):
        self.shape, self.options = _layout(x), options
        return getattr(_F, self.op)(x, **options)

    def backward(self, g):
        return (getattr(_F, self.op + "_backward")(g, self.shape, **self.options),)


def avg_pool(x: TensorLike, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
             ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Differentiable :func:`sigconv.functional.avg_pool`."""
    return _AvgPool.apply(x, kernel_size=kernel_size, stride=stride, padding=padding,
                          ceil_mode=ceil_mode, count_include_pad=count_include_pad)


class _LpPool(Function):
    ragged = "native"

    def forward(self, x, *, p, **options):
        self.p, self.options = p, options
        self.x = x
        self.out = _F.lp_pool(x, p, **options)
        return self.out

    def backward(self, g):
        return (_F.lp_pool_backward(g, self.x, self.p, output=self.out, **self.options),)


def lp_pool(x: TensorLike, p: float, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
            ceil_mode: bool = False) -> Tensor:
    """Differentiable :func:`sigconv.functional.lp_pool`."""
    return _LpPool.apply(x, p=p, kernel_size=kernel_size, stride=stride, ceil_mode=ceil_mode)


class _GaussianPool(_AvgPool):
    op = "gaussian_pool"


def gaussian_pool(x: TensorLike, kernel_size: IntOrTuple, *, sigma: float | Sequence[float],
                  stride: IntOrTuple | None = None, padding: IntOrTuple = 0) -> Tensor:
    """Differentiable :func:`sigconv.functional.gaussian_pool`."""
    return _GaussianPool.apply(x, kernel_size=kernel_size, sigma=sigma, stride=stride,
                               padding=padding)


class _AdaptivePool(Function):
    ragged = "native"  # a Ragged input pools to a dense (N, C, *output_size)

    def forward(self, x, *, output_size, kind, p):
        self.x, self.kind, self.p = x, kind, p
        self.indices = self.out = None
        if kind == "max" and self.needs_input_grad[0]:
            out, self.indices = _F.adaptive_pool(x, output_size, kind, return_indices=True)
        else:
            out = _F.adaptive_pool(x, output_size, kind, p=p)
        self.out = out if kind == "lp" else None
        return out

    def backward(self, g):
        return (_F.adaptive_pool_backward(g, self.x, self.kind, p=self.p, indices=self.indices,
                                          output=self.out),)


def adaptive_pool(x: TensorLike, output_size: int | Sequence[int | None], kind: PoolKind = "avg", *,
                  p: float = 2) -> Tensor:
    """Differentiable :func:`sigconv.functional.adaptive_pool` (values only)."""
    return _AdaptivePool.apply(x, output_size=output_size, kind=kind, p=p)


class _GlobalAvgPool(Function):
    """Mean of every row (one channel of one item): ``(N, C, *spatial) -> (N, C)``.

    Global average pooling on the flat buffer: one ``np.add.reduceat`` over
    the rows (accumulated in float64) forward, one ``np.repeat`` backward.
    """

    ragged = "native"

    def forward(self, x):
        self.x = x = Batch.of(x)
        starts, self.lengths = x.rows()
        sums = np.add.reduceat(x.flat, starts, dtype=np.float64)
        return (sums / self.lengths).astype(x.dtype).reshape(len(x), x.channels)

    def backward(self, g):
        spread = (g.reshape(-1) / self.lengths).astype(self.x.dtype, copy=False)
        return (self.x.result(np.repeat(spread, self.lengths)),)


def global_pool(x: TensorLike, kind: PoolKind = "avg", *, p: float = 2) -> Tensor:
    """Differentiable :func:`sigconv.functional.global_pool`: ``(N, C, *spatial) -> (N, C)``."""
    x = as_tensor(x)
    if not 3 <= x.ndim <= 5:
        raise ShapeError(f"x must have shape (N, C, *spatial) with 1 to 3 spatial axes, got "
                         f"shape {x.shape} ({x.ndim}-d)")
    if isinstance(kind, str) and kind == "avg" and x.dtype in (np.float32, np.float64) and x.size:
        _check_p(p)  # checked for every kind, as sigconv.functional.adaptive_pool does
        return _GlobalAvgPool.apply(x)
    out = adaptive_pool(x, (1,) * (x.ndim - 2), kind, p=p)
    return out.reshape(out.shape[:2])


class _Maxout(Function):
    ragged = "native"

    def forward(self, x, *, pieces):
        self.x, self.pieces = x, pieces
        return _F.maxout(x, pieces)

    def backward(self, g):
        return (_F.maxout_backward(g, self.x, self.pieces),)


def maxout(x: TensorLike, pieces: int) -> Tensor:
    """Differentiable :func:`sigconv.functional.maxout` (cross-channel max)."""
    return _Maxout.apply(x, pieces=pieces)


class _MaxUnpool(Function):
    ragged = "native"

    def forward(self, x, *, indices, **options):
        self.indices = indices
        return _F.max_unpool(x, indices, **options)

    def backward(self, g):
        return (_F.max_unpool_backward(g, self.indices),)


def max_unpool(x: TensorLike, indices: ArrayLike | Ragged, kernel_size: IntOrTuple, *,
               stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
               output_size: Sequence[int] | Ragged | None = None) -> Tensor:
    """Differentiable :func:`sigconv.functional.max_unpool` (with respect to ``x``)."""
    indices = indices if isinstance(indices, Ragged) else np.asarray(indices)
    return _MaxUnpool.apply(x, indices=indices, kernel_size=kernel_size,
                            stride=stride, padding=padding, output_size=output_size)


# ---------------------------------------------------------------------------
# normalisation, linear, dropout, activations, resizing
# ---------------------------------------------------------------------------

class _BatchNorm(Function):
    """Batch normalisation over every axis but the channel axis 1, optionally followed by ReLU.

    ``training``: normalise with the batch mean and biased variance, and
    update ``running_mean``/``running_var`` in place (with the unbiased
    variance, as PyTorch); otherwise normalise with the running statistics.
    A Ragged batch takes its statistics over every item's own positions (no
    padding anywhere); a dense ``(N, C, *spatial)`` batch is the case of
    equal items.  ``relu=True`` computes ``relu(batch_norm(x))`` in the same
    passes (:func:`batch_norm_relu`).

    Passes over memory (``sigconv._kernels``, ``norm.pxi``): the statistics
    in one sweep (each row's two-pass mean and squared deviations while the
    row is in cache, rows merged by Chan's formula in float64), the
    normalisation, affine map and ReLU in a second sweep that writes the
    output.  Nothing else is stored: the backward recomputes ``xhat`` from
    the input and takes the ReLU mask from the output (``y > 0``), in one
    sweep for the per-channel sums and one that writes the input gradient.
    ``(N, C)`` inputs (after a linear layer) take the numpy formulas.
    """

    ragged = "native"
    out: Any  # the output, kept for the ReLU's mask (None without relu)

    def forward(self, x, weight, bias, *, running_mean, running_var, training, momentum, eps,
                relu=False):
        self.relu, self.training, self.weight = relu, training, weight
        if not isinstance(x, Ragged) and (x.ndim < 3 or not x.size):  # (N, C): numpy formulas
            self.table = None
            return self._forward_2d(x, weight, bias, running_mean, running_var, training,
                                    momentum, eps)
        batch = _float_batch(x)  # a dense batch is the case of equal items
        self.x_layout, flat, table = batch, batch.flat, batch.table()
        dtype, channels = flat.dtype, batch.channels
        count = flat.size // channels  # real positions per channel, all items together
        if training:
            if count < 2:
                raise ShapeError(f"batch normalisation in training needs more than one value per "
                                 f"channel, got {_describe(x)}")
            mean, var = _batch_stats(flat, table, channels, count)
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean.astype(running_mean.dtype)
                running_var *= 1 - momentum
                running_var += momentum * (var * count / (count - 1)).astype(running_var.dtype)
        else:
            mean, var = running_mean, running_var
        invstd = 1.0 / np.sqrt(np.asarray(var, np.float64) + eps)  # (C,) float64
        scale = invstd if weight is None else invstd * weight
        shift = np.zeros(channels, dtype) if bias is None else bias
        mean = np.asarray(mean, dtype)
        out = np.empty_like(flat)
        _k.bn_apply(flat, table, channels, mean, np.asarray(scale, dtype),
                    np.asarray(shift, dtype), out, relu)
        self.x, self.table, self.channels, self.count = flat, table, channels, count
        self.mean, self.invstd = mean, invstd
        self.out = out if relu else None
        return batch.result(out)

    def backward(self, g):
        if self.table is None:
            return self._backward_2d(g)
        need_x, need_w, need_b = self.needs_input_grad
        dtype, channels, count = self.x.dtype, self.channels, self.count
        g = np.ascontiguousarray(Batch.of(g).flat, dtype)
        out = self.out if self.relu else np.empty(0, dtype)
        w = np.ones(channels) if self.weight is None else self.weight.astype(np.float64)
        sum_g: Any = None  # (C,) sums, computed when a gradient needs them
        sum_gxhat: Any = None
        if need_w or need_b or (need_x and self.training):
            # sum of gy and of gy * xhat per channel (gy: g through the ReLU's mask): the bias
            # and weight gradients, and (times the weight) the two means of the input gradient
            rows = len(self.table) * channels
            rows_g, rows_gx = np.empty(rows), np.empty(rows)
            _k.bn_grad_sums(g, out, self.x, self.table, channels, self.mean, self.relu,
                            rows_g, rows_gx)
            sum_g = rows_g.reshape(-1, channels).sum(axis=0)
            sum_gxhat = rows_gx.reshape(-1, channels).sum(axis=0) * self.invstd
        gx = None
        if need_x:
            a = self.invstd * w
            if self.training:  # d/dx of (x - mean) / std with mean and std of the batch itself
                shift, k = -a * sum_g / count, -a * self.invstd * sum_gxhat / count
            else:
                shift = k = np.zeros(channels)
            gx = np.empty_like(self.x)
            _k.bn_grad_input(g, out, self.x, self.table, channels, self.mean,
                             a.astype(dtype), k.astype(dtype), shift.astype(dtype), self.relu, gx)
            gx = self.x_layout.result(gx)
        return (gx, None if not need_w else sum_gxhat.astype(dtype),
                None if not need_b else sum_g.astype(dtype))

    def _forward_2d(self, x, weight, bias, running_mean, running_var, training, momentum, eps):
        axes = _spatial_axes(x)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if training:
            count = x.size // x.shape[1]
            if count < 2:
                raise ShapeError(f"batch normalisation in training needs more than one value per "
                                 f"channel, got input of shape {x.shape}")
            mean = x.mean(axis=axes)
            var = x.var(axis=axes)
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean.astype(running_mean.dtype)
                running_var *= 1 - momentum
                running_var += momentum * (var * count / (count - 1)).astype(running_var.dtype)
        else:
            mean, var = running_mean, running_var
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
        self.xhat, self.invstd, self.axes, self.shape = xhat, invstd, axes, shape
        out = xhat if weight is None else xhat * weight.reshape(shape)
        out = out if bias is None else out + bias.reshape(shape)
        if self.relu:
            self.positive = out > 0
            out = np.fmax(out, 0)
        return out

    def _backward_2d(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        if self.relu:
            g = g * self.positive
        gw = (g * self.xhat).sum(axis=self.axes) if need_w else None
        gb = g.sum(axis=self.axes) if need_b else None
        gx = None
        if need_x:
            gxhat = g if self.weight is None else g * self.weight.reshape(self.shape)
            scale = self.invstd.reshape(self.shape)
            if self.training:
                # d/dx of (x - mean) / std with mean and std of the batch itself
                gx = scale * (gxhat - gxhat.mean(axis=self.axes, keepdims=True)
                              - self.xhat * (gxhat * self.xhat).mean(axis=self.axes,
                                                                     keepdims=True))
            else:
                gx = gxhat * scale
        return gx, gw, gb


def _describe(x):
    return repr(x) if isinstance(x, Ragged) else f"input of shape {x.shape}"


def _batch_stats(flat, table, channels, count):
    """Mean and biased variance per channel, float64 ``(C,)`` each, of the rows ``table`` lists.

    Each row ``(n, c)`` gives its sum and its squared deviations from its own
    mean (:func:`sigconv._kernels.bn_row_stats`, one pass over memory); the
    rows of a channel are merged by Chan's formula,
    ``M2 = sum(M2_r) + sum(P_r * (mean_r - mean) ** 2)``.
    """
    rows = len(table) * channels
    sums, m2 = np.empty(rows), np.empty(rows)
    _k.bn_row_stats(flat, table, channels, sums, m2)
    positions = np.prod(table[:, 1:], axis=1, dtype=np.float64)[:, None]  # (N, 1): P_n
    sums, m2 = sums.reshape(-1, channels), m2.reshape(-1, channels)
    mean = sums.sum(axis=0) / count
    spread = sums / positions - mean
    var = (m2.sum(axis=0) + (positions * spread * spread).sum(axis=0)) / count
    return mean, var


def _check_batch_norm(x, running_mean, training):
    x = as_tensor(x)
    if x.ndim < 2:
        raise ShapeError(f"batch_norm needs input (N, C, *spatial), got shape {x.shape}")
    if not training and running_mean is None:
        raise ArgumentError("batch_norm with training=False needs running_mean and running_var")
    return x


def batch_norm(x: TensorLike, running_mean: NDArray[Any] | None, running_var: NDArray[Any] | None,
               weight: TensorLike | None = None, bias: TensorLike | None = None, *, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation (``torch.nn.functional.batch_norm``'s arguments).

    ``running_mean`` and ``running_var`` are numpy arrays updated in place
    when ``training``; they may be ``None`` when ``training``.
    """
    x = _check_batch_norm(x, running_mean, training)
    return _BatchNorm.apply(x, weight, bias, running_mean=running_mean, running_var=running_var,
                            training=bool(training), momentum=momentum, eps=eps)


def batch_norm_relu(x: TensorLike, running_mean: NDArray[Any] | None,
                    running_var: NDArray[Any] | None, weight: TensorLike | None = None, bias: TensorLike | None = None, *,
                    training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """``relu(batch_norm(x, ...))`` in one step: the same result, fewer passes over memory.

    Arguments as :func:`batch_norm`.  The normalised values are not stored:
    the output is written once, and the backward takes the ReLU's mask from
    it.  :class:`~sigconv.nn.Sequential` uses this for a
    :class:`~sigconv.nn.BatchNorm` followed by a :class:`~sigconv.nn.ReLU`.
    """
    x = _check_batch_norm(x, running_mean, training)
    return _BatchNorm.apply(x, weight, bias, running_mean=running_mean, running_var=running_var,
                            training=bool(training), momentum=momentum, eps=eps, relu=True)


# -- group, instance and layer normalisation: statistics over runs of the flat buffer --------
#
# Each of these normalises contiguous runs of the batch's flat buffer by their own mean and
# biased variance: one run per item and group of channels (group norm), per item and channel
# (instance norm), per trailing block (layer norm).  A Ragged item's runs cover its own
# positions only, so item i of the result is item i alone.  Sums are taken in float64.

class _Runs:
    """Runs of a flat buffer with one statistic each, as ``(S,)`` float64 arrays.

    A dense batch has ``count`` runs of one ``length``: :meth:`view` is the
    ``(count, length)`` reshape and :meth:`spread` a broadcast column.  A
    Ragged one lists each run's ``starts`` and ``lengths``: the view is the
    flat buffer, sums are ``np.add.reduceat`` and spreading is ``np.repeat``.
    """

    __slots__ = ("count", "length", "starts", "lengths")
    lengths: Any  # one float (dense) or one float64 per run (Ragged)

    def __init__(self, count, length=None, starts=None, lengths=None):
        self.count, self.length, self.starts = int(count), length, starts
        # run lengths for division: one number (dense) or one per run (Ragged)
        self.lengths = float(length) if starts is None else lengths.astype(np.float64)

    @classmethod
    def listed(cls, starts, lengths):
        return cls(len(starts), starts=np.asarray(starts, np.int64),
                   lengths=np.asarray(lengths, np.int64))

    def view(self, flat):
        return flat.reshape(self.count, self.length) if self.starts is None else flat

    def spread(self, values, dtype):
        """Per-run ``values`` ``(S,)`` in ``dtype``, broadcastable against :meth:`view`."""
        values = np.asarray(values).astype(dtype, copy=False)
        if self.starts is None:
            return values[:, None]
        return np.repeat(values, self.lengths.astype(np.int64))

    def sums(self, view):
        """Sum of every run of ``view`` (as :meth:`view` gives it): ``(S,)`` float64."""
        if self.starts is None:
            return view.sum(axis=1, dtype=np.float64)
        return np.add.reduceat(view, self.starts, dtype=np.float64)


def _group_runs(batch, groups):
    """One run per item and group of ``C / groups`` consecutive channels."""
    per_group = batch.channels // groups
    if not batch.ragged:
        n, c = batch.dense_shape[:2]
        return _Runs(n * groups, per_group * (batch.flat.size // max(n * c, 1)))
    starts = batch.rows()[0].reshape(len(batch), groups, per_group)[:, :, 0]
    return _Runs.listed(starts.reshape(-1), np.repeat(batch.positions * per_group, groups))


def _row_runs(batch):
    """One run per row (one channel of one item)."""
    if not batch.ragged:
        n, c = batch.dense_shape[:2]
        return _Runs(n * c, batch.flat.size // max(n * c, 1))
    return _Runs.listed(*batch.rows())


def _float_batch(x):
    """``x`` (array or Ragged) as a Batch with a contiguous flat buffer of its float dtype."""
    batch = Batch.of(x)
    return batch.with_flat(np.ascontiguousarray(batch.flat, result_dtype(x=batch.flat)))


def _normalise(flat, runs, eps, stats=None):
    """``(x - mean) / sqrt(var + eps)`` over each run, and the per-run statistics.

    ``stats`` ``(mean, var)`` per run are given (running statistics) or, by
    default, each run's own mean and biased variance, both accumulated in
    float64 (two passes: the mean, then the squared deviations from it).

    Returns
    -------
    xhat : ndarray, the dtype of ``flat``, shaped as ``runs.view(flat)``
    mean, var, invstd : ndarray of float64, shape (S,)
    """
    dtype, view = flat.dtype, runs.view(flat)
    if stats is None:
        mean = runs.sums(view) / runs.lengths
        xhat = view - runs.spread(mean, dtype)
        var = runs.sums(xhat * xhat) / runs.lengths
    else:
        mean, var = (np.asarray(s, np.float64) for s in stats)
        xhat = view - runs.spread(mean, dtype)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat *= runs.spread(invstd, dtype)
    return xhat, mean, var, invstd


def _normalise_backward(gy, xhat, runs, invstd, own_stats):
    """Gradient with respect to ``x`` of ``xhat`` given ``gy = dL/dxhat`` (flat arrays).

    With the runs' own statistics, ``invstd * (gy - mean(gy) - xhat * mean(gy * xhat))``
    per run; with given (fixed) statistics, ``gy * invstd``.
    """
    dtype = gy.dtype
    gy, xhat = runs.view(gy), runs.view(xhat)
    if not own_stats:
        return (gy * runs.spread(invstd, dtype)).reshape(-1)
    mean_g = runs.sums(gy) / runs.lengths
    mean_gx = runs.sums(gy * xhat) / runs.lengths
    gx = gy - runs.spread(mean_g, dtype)
    gx -= xhat * runs.spread(mean_gx, dtype)
    gx *= runs.spread(invstd, dtype)
    return gx.reshape(-1)


class _ChannelNorm(Function):
    """Normalisation over runs of whole rows, then a per-channel affine map.

    Subclasses give :meth:`statistics`: the runs, and the statistics to use
    (``None``: each run's own).  The output is ``xhat * weight[c] + bias[c]``;
    ``weight`` and ``bias`` are ``(C,)`` or None, computed in the input's dtype.
    """

    ragged = "native"
    weight: Any  # (C,) in the input's dtype, or None

    def forward(self, x, weight, bias, *, eps, **options):
        self.batch = batch = _float_batch(x)
        dtype, self.n = batch.dtype, len(batch)
        self.rows = _row_runs(batch)
        self.weight = None if weight is None else weight.astype(dtype, copy=False)
        if not batch.flat.size:
            self.runs = None
            return batch.result(batch.flat.copy())
        self.runs, stats = self.statistics(batch, **options)
        self.own_stats = stats is None
        xhat, mean, var, self.invstd = _normalise(batch.flat, self.runs, eps, stats)
        self.xhat = xhat.reshape(-1)
        self.after(mean, var, **options)
        out = self.rows.view(self.xhat)
        if weight is not None:
            out = out * self.rows.spread(np.tile(self.weight, self.n), dtype)
        if bias is not None:
            out = out + self.rows.spread(np.tile(bias, self.n), dtype)
        return batch.result(np.ascontiguousarray(out).reshape(-1))

    def statistics(self, batch, **options):
        raise NotImplementedError

    def after(self, mean, var, **options):
        """Called with the runs' statistics after the forward (running statistics)."""

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        batch, dtype, c = self.batch, self.batch.dtype, self.batch.channels
        g = np.ascontiguousarray(Batch.of(g).flat, dtype)
        if self.runs is None:  # an empty batch
            zeros = np.zeros(c, dtype)
            return (batch.result(np.zeros_like(batch.flat)) if need_x else None,
                    zeros if need_w else None, zeros if need_b else None)
        rows = self.rows
        gw = gb = gx = None
        if need_w:
            gw = rows.sums(rows.view(g) * rows.view(self.xhat)).reshape(self.n, c).sum(axis=0)
        if need_b:
            gb = rows.sums(rows.view(g)).reshape(self.n, c).sum(axis=0)
        if need_x:
            gy = g if self.weight is None else np.ascontiguousarray(
                rows.view(g) * rows.spread(np.tile(self.weight, self.n), dtype)).reshape(-1)
            gx = batch.result(_normalise_backward(gy, self.xhat, self.runs, self.invstd,
                                                  self.own_stats))
        return gx, gw, gb


class _GroupNorm(_ChannelNorm):
    def statistics(self, batch, *, groups):  # type: ignore[override]  # each norm's own options
        return _group_runs(batch, groups), None


class _InstanceNorm(_ChannelNorm):
    # each norm takes its own options (ignore: the base class takes any)
    def statistics(self, batch, *, running_mean, running_var, use_input_stats,  # type: ignore[override]
                   momentum):
        if use_input_stats:
            if (batch.positions < 2).any():
                raise ShapeError(f"instance normalisation with the input's statistics needs more "
                                 f"than one spatial position in every item, got "
                                 f"{_describe(batch.result())}")
            return self.rows, None
        return self.rows, (np.tile(running_mean, self.n), np.tile(running_var, self.n))

    def after(self, mean, var, *, running_mean, running_var, use_input_stats,  # type: ignore[override]
              momentum):
        if not use_input_stats or running_mean is None:
            return
        # as PyTorch: the mean over items of each item's mean and unbiased variance
        c, lengths = self.batch.channels, self.rows.lengths
        unbiased = var * lengths / (lengths - 1)
        running_mean *= 1 - momentum
        running_mean += momentum * mean.reshape(self.n, c).mean(axis=0).astype(
            running_mean.dtype)
        running_var *= 1 - momentum
        running_var += momentum * unbiased.reshape(self.n, c).mean(axis=0).astype(
            running_var.dtype)


def _check_eps(eps):
    return check_positive_real(eps, "eps")


def _check_affine(param, name, shape, op):
    if param is not None and tuple(as_tensor(param).shape) != tuple(shape):
        raise ShapeError(f"{op}: {name} must have shape {tuple(shape)}, got "
                         f"{tuple(as_tensor(param).shape)}")


def _norm_input(x, op):
    x = as_tensor(x)
    if x.ndim < 2 or (x.ragged and not 1 <= x.ndim - 2 <= 3):
        raise ShapeError(f"{op} needs input (N, C, *spatial), got shape {x.shape}")
    return x


def group_norm(x: TensorLike, num_groups: int, weight: TensorLike | None = None, bias: TensorLike | None = None,
               eps: float = 1e-5) -> Tensor:
    """Group normalisation (``torch.nn.functional.group_norm``).

    The channels are split into ``num_groups`` groups of consecutive
    channels; every item's group is normalised by its own mean and biased
    variance over ``(C / num_groups, *spatial)``, then channel ``c`` is scaled
    by ``weight[c]`` and shifted by ``bias[c]``.  No batch statistics: the
    result of an item does not depend on the others (a Ragged item's
    statistics cover its own positions only).

    Parameters
    ----------
    x : Tensor or array, shape (N, C, *spatial), or a Ragged batch
    num_groups : int, dividing C
    weight, bias : Tensor or array, shape (C,), optional
    eps : float > 0

    Returns
    -------
    Tensor, the layout and float dtype of ``x``
    """
    x = _norm_input(x, "group_norm")
    channels = x.shape[1]
    num_groups = check_int(num_groups, "num_groups")
    if channels % num_groups:
        raise ArgumentError(f"group_norm: num_groups ({num_groups}) must divide the number of "
                            f"channels ({channels}), got input of shape {x.shape}")
    for name, param in (("weight", weight), ("bias", bias)):
        _check_affine(param, name, (channels,), "group_norm")
    return _GroupNorm.apply(x, weight, bias, groups=num_groups, eps=_check_eps(eps))


def instance_norm(x: TensorLike, running_mean: NDArray[Any] | None = None,
                  running_var: NDArray[Any] | None = None, weight: TensorLike | None = None, bias: TensorLike | None = None,
                  use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5) -> Tensor:
    """Instance normalisation (``torch.nn.functional.instance_norm``'s arguments).

    Each channel of each item is normalised by its own mean and biased
    variance over its spatial positions (``use_input_stats``), or by
    ``running_mean`` and ``running_var`` ``(C,)``.  With the input's
    statistics and running statistics given, these are updated in place
    with the mean over items of every item's mean and unbiased variance
    (as PyTorch).  Input ``(N, C, *spatial)`` with at least one spatial axis,
    or a Ragged batch (each item's own positions).
    """
    x = _norm_input(x, "instance_norm")
    if x.ndim < 3:
        raise ShapeError(f"instance_norm needs input (N, C, *spatial) with at least one spatial "
                         f"axis, got shape {x.shape}")
    channels = x.shape[1]
    for name, param in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                        ("running_var", running_var)):
        _check_affine(param, name, (channels,), "instance_norm")
    if (running_mean is None) != (running_var is None):
        raise ArgumentError("instance_norm: give both running_mean and running_var, or neither")
    if not use_input_stats and running_mean is None:
        raise ArgumentError("instance_norm with use_input_stats=False needs running_mean and "
                            "running_var")
    if not (isinstance(momentum, (int, float, np.floating)) and 0 <= momentum <= 1):
        raise ArgumentError(f"instance_norm: momentum must be a number in [0, 1], got "
                            f"{momentum!r}")
    return _InstanceNorm.apply(x, weight, bias, running_mean=running_mean,
                               running_var=running_var, use_input_stats=bool(use_input_stats),
                               momentum=float(momentum), eps=_check_eps(eps))


class _LayerNorm(Function):
    """Normalisation over the trailing ``len(shape)`` axes, elementwise affine over them."""

    def forward(self, x, weight, bias, *, shape, eps):
        x = np.ascontiguousarray(x, result_dtype(x=x))
        dtype, length = x.dtype, int(np.prod(shape))
        self.shape, self.x_shape = shape, x.shape
        self.weight = None if weight is None else weight.astype(dtype, copy=False).reshape(-1)
        if not x.size:
            self.runs = None
            return x.copy()
        self.runs = _Runs(x.size // length, length)
        xhat, _, _, self.invstd = _normalise(x.reshape(-1), self.runs, eps)
        self.xhat = xhat  # (S, L)
        out = xhat if weight is None else xhat * self.weight
        out = out if bias is None else out + bias.astype(dtype, copy=False).reshape(-1)
        return out.reshape(x.shape)

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        if self.runs is None:
            zeros = np.zeros(self.shape, g.dtype)
            return (np.zeros(self.x_shape, g.dtype) if need_x else None,
                    zeros if need_w else None, zeros if need_b else None)
        g = np.ascontiguousarray(g).reshape(self.runs.count, -1)
        gw = (g * self.xhat).sum(axis=0, dtype=np.float64).reshape(self.shape) if need_w else None
        gb = g.sum(axis=0, dtype=np.float64).reshape(self.shape) if need_b else None
        gx = None
        if need_x:
            gy = g if self.weight is None else g * self.weight
            gx = _normalise_backward(gy.reshape(-1), self.xhat.reshape(-1), self.runs,
                                     self.invstd, True).reshape(self.x_shape)
        return gx, gw, gb


def _normalized_shape(normalized_shape):
    """``normalized_shape`` (an int or a sequence of ints >= 1) as a tuple."""
    if isinstance(normalized_shape, (int, np.integer)) and not isinstance(normalized_shape, bool):
        normalized_shape = (normalized_shape,)
    try:
        shape = tuple(normalized_shape)
    except TypeError:
        raise ArgumentError(f"normalized_shape must be an int or a sequence of ints, got "
                            f"{normalized_shape!r}") from None
    if not shape:
        raise ArgumentError("normalized_shape must name at least one axis, got ()")
    return tuple(check_int(n, "normalized_shape") for n in shape)


def layer_norm(x: TensorLike, normalized_shape: int | Sequence[int], weight: TensorLike | None = None, bias: TensorLike | None = None,
               eps: float = 1e-5) -> Tensor:
    """Layer normalisation (``torch.nn.functional.layer_norm``): over the trailing axes.

    Every slice ``x[i, ..., :, :]`` over the last ``len(normalized_shape)``
    axes (which must equal ``normalized_shape``) is normalised by its own
    mean and biased variance; ``weight`` and ``bias`` have shape
    ``normalized_shape`` and apply elementwise.  Dense input only: for
    ``(N, C, *spatial)`` the trailing axes are spatial, which a Ragged batch
    does not share between items.  ``group_norm(x, 1, weight, bias)``
    normalises each item over ``(C, *spatial)`` with a per-channel affine, the
    usual "layer norm" of a convolutional network, and takes Ragged batches.
    """
    x = as_tensor(x)
    shape = _normalized_shape(normalized_shape)
    if x.ragged:
        raise ArgumentError(f"layer_norm normalises the trailing (spatial) axes, which differ "
                            f"between the items of a Ragged batch ({x.data!r}); use "
                            f"group_norm(x, 1) (nn.GroupNorm(1, C)) to normalise each item over "
                            f"(C, *spatial)")
    if x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape):]) != shape:
        raise ShapeError(f"layer_norm: input of shape {x.shape} does not end in normalized_shape "
                         f"{shape}")
    for name, param in (("weight", weight), ("bias", bias)):
        _check_affine(param, name, shape, "layer_norm")
    return _LayerNorm.apply(x, weight, bias, shape=shape, eps=_check_eps(eps))


class _Linear(Function):
    def forward(self, x, weight, bias):
        self.x, self.weight = x, weight
        out = x @ weight.T  # (*, in) @ (in, out) -> (*, out)
        return out if bias is None else out + bias

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        gx = g @ self.weight if need_x else None
        gw = (g.reshape(-1, g.shape[-1]).T @ self.x.reshape(-1, self.x.shape[-1])
              if need_w else None)
        gb = g.reshape(-1, g.shape[-1]).sum(axis=0) if need_b else None
        return gx, gw, gb


def linear(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None) -> Tensor:
    """``x @ weight.T + bias`` with ``weight`` of shape ``(out_features, in_features)``."""
    x, weight = as_tensor(x), as_tensor(weight)
    if x.ragged:
        raise ArgumentError(f"linear takes dense (*, features) input, got a Ragged batch "
                            f"{x.data!r}; pool it first (GlobalPool or AdaptivePool)")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input has shape {x.shape}, expected (*, {weight.shape[1]}) "
                         f"for weight of shape {weight.shape}")
    dtype = result_dtype(x=x.data, weight=weight.data)
    if x.dtype != dtype:
        x = x.astype(dtype)
    return _Linear.apply(x, weight, bias)


def dropout(x: TensorLike, p: float = 0.5, *, training: bool = True,
            rng: np.random.Generator | None = None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``."""
    if not 0 <= p < 1:
        raise ArgumentError(f"dropout probability p must be in [0, 1), got {p!r}")
    x = as_tensor(x)
    if not training or p == 0:
        return x
    rng = np.random.default_rng() if rng is None else rng
    data = x.data
    keep = rng.random(data.data.shape if isinstance(data, Ragged) else data.shape) >= p
    mask = keep.astype(x.dtype) / np.asarray(1 - p, x.dtype)
    return x * (data.like(mask) if isinstance(data, Ragged) else mask)


def relu(x: TensorLike) -> Tensor:
    return ReLU.apply(x)


def leaky_relu(x: TensorLike, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU.apply(x, slope=negative_slope)


def tanh(x: TensorLike) -> Tensor:
    return Tanh.apply(x)


def sigmoid(x: TensorLike) -> Tensor:
    return Sigmoid.apply(x)


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_SCALE = math.sqrt(2.0 / math.pi)  # GELU's tanh approximation: tanh(s * (x + c x^3))
_TANH_CUBIC = 0.044715


class _GELU(Function):
    """``x * Phi(x)`` (Phi the standard normal CDF, through ``erf``), or its tanh approximation."""

    ragged = "elementwise"

    def forward(self, a, *, approximate):
        self.a, self.approximate = a, approximate
        if approximate == "tanh":
            self.t = np.tanh(_TANH_SCALE * (a + _TANH_CUBIC * a * a * a))
            return 0.5 * a * (1 + self.t)
        self.cdf = 0.5 * (1 + _special.erf(a * _SQRT_HALF))
        return a * self.cdf

    def backward(self, g):
        a = self.a
        if self.approximate == "tanh":
            t = self.t
            slope = 0.5 * (1 + t) + 0.5 * a * (1 - t * t) * _TANH_SCALE * (
                1 + 3 * _TANH_CUBIC * a * a)
        else:
            slope = self.cdf + a * (_INV_SQRT_2PI * np.exp(-0.5 * a * a))
        return (g * slope,)


class _SiLU(Function):
    """``x * sigmoid(x)`` (the swish)."""

    ragged = "elementwise"

    def forward(self, a):
        self.a, self.s = a, _special.expit(a)
        return a * self.s

    def backward(self, g):
        s = self.s
        return (g * (s * (1 + self.a * (1 - s))),)


def _check_approximate(approximate):
    """GELU's ``approximate`` option: ``"none"`` or ``"tanh"``."""
    if not isinstance(approximate, str) or approximate not in ("none", "tanh"):
        raise ArgumentError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return approximate


def gelu(x: TensorLike, approximate: Literal["none", "tanh"] = "none") -> Tensor:
    """``x * Phi(x)``, ``Phi`` the standard normal CDF (``torch.nn.functional.gelu``).

    ``approximate="tanh"``: ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))``.
    Elementwise: any shape, and Ragged batches.
    """
    x = as_tensor(x)
    return _GELU.apply(x, approximate=_check_approximate(approximate))


def silu(x: TensorLike) -> Tensor:
    """``x * sigmoid(x)`` (``torch.nn.functional.silu``). Elementwise: any shape, and Ragged."""
    return _SiLU.apply(x)


def log_softmax(x: TensorLike, axis: int = 1) -> Tensor:
    return LogSoftmax.apply(x, axis=axis)


def softmax(x: TensorLike, axis: int = 1) -> Tensor:
    return log_softmax(x, axis).exp()


def flatten(x: TensorLike, start_axis: int = 1) -> Tensor:
    """Merge the axes from ``start_axis`` on: ``(N, C, *spatial) -> (N, C * prod(spatial))``."""
    x = as_tensor(x)
    return x.reshape(x.shape[:start_axis] + (-1,))


def _nearest_maps(spatial, size, first_axis):
    """Per axis, the source index of each output: output ``i`` of ``m`` reads ``floor(i * n / m)``."""
    return [(axis, (np.arange(m) * n) // m)
            for axis, (n, m) in enumerate(zip(spatial, size), start=first_axis)]


def _nearest(a, maps):
    for axis, index in maps:
        a = a.take(index, axis=axis)
    return a


def _nearest_backward(g, maps, shape):
    for axis, index in reversed(maps):
        moved = np.moveaxis(g, axis, 0)  # (m, ...) -> sum rows with the same source
        summed = np.zeros((shape[axis],) + moved.shape[1:], g.dtype)
        np.add.at(summed, index, moved)
        g = np.moveaxis(summed, 0, axis)
    return g


class _Nearest(Function):
    """Nearest-neighbour resize: output ``i`` of ``m`` reads input ``floor(i * n / m)``.

    A Ragged batch is resized item by item, to one size per item (``size``
    an ``(N, nd)`` array).
    """

    ragged_x: Ragged | None

    ragged = "native"

    def forward(self, x, *, size):
        if isinstance(x, Ragged):
            self.ragged_x = x
            self.maps = [_nearest_maps(item.shape[1:], s, 1) for item, s in zip(x, size)]
            return Ragged(np.concatenate([_nearest(item, m).reshape(-1)
                                          for item, m in zip(x, self.maps)]),
                          np.asarray(size, np.int64), x.channels)
        self.ragged_x, self.shape = None, x.shape
        self.maps = _nearest_maps(x.shape[2:], size, 2)
        return _nearest(x, self.maps)

    def backward(self, g):
        if self.ragged_x is None:
            return (_nearest_backward(g, self.maps, self.shape),)
        x = self.ragged_x
        return (x.like(np.concatenate([_nearest_backward(gi, m, item.shape).reshape(-1)
                                       for gi, m, item in zip(g, self.maps, x)])),)


def interpolate(x: TensorLike, size: int | Sequence[int] | ArrayLike | None = None, *,
                scale_factor: IntOrTuple | None = None) -> Tensor:
    """Nearest-neighbour resize of the spatial axes (``torch``'s ``mode="nearest"``).

    Give either ``size`` (int or one int per spatial axis) or an integer
    ``scale_factor``.  A Ragged batch may also take ``size`` as an
    ``(N, nd)`` integer array, one size per item (``other.data.shapes`` to
    resize to another Ragged's items).
    """
    x = as_tensor(x)
    nd = x.ndim - 2
    if nd < 1:
        raise ShapeError(f"interpolate needs input (N, C, *spatial), got shape {x.shape}")
    if (size is None) == (scale_factor is None):
        raise ArgumentError("interpolate: give exactly one of size and scale_factor")
    if isinstance(x.data, Ragged):
        shapes = x.data.shapes
        if size is None:
            factor = np.array(as_tuple(scale_factor, nd, "scale_factor", minimum=1))
            size = shapes * factor
        elif np.ndim(size) == 2:
            size = np.asarray(size)
            if size.shape != shapes.shape or size.dtype.kind not in "iu" or (size < 1).any():
                raise ShapeError(f"interpolate: size for a Ragged of {len(shapes)} items with "
                                 f"{nd} spatial axes must be a ({len(shapes)}, {nd}) array of "
                                 f"positive ints, got {size!r}")
        else:
            size = np.tile(np.array(as_tuple(size, nd, "size", minimum=1)), (len(shapes), 1))
        return _Nearest.apply(x, size=np.asarray(size, np.int64))
    if size is None:
        factor = as_tuple(scale_factor, nd, "scale_factor", minimum=1)
        size = tuple(n * f for n, f in zip(x.data.shape[2:], factor))
    else:
        size = as_tuple(size, nd, "size", minimum=1)
    return _Nearest.apply(x, size=size)


# Losses live in losses.py; re-exported here as torch.nn.functional has them.
from .losses import cross_entropy, dice_loss, mse_loss  # noqa: E402

__all__ += ["cross_entropy", "mse_loss", "dice_loss"]
