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
the items' real positions), ``dropout`` and the activations, each item as if
alone; ``global_pool`` and ``adaptive_pool`` turn it into a dense array.
``local_conv``, whose filters are tied to positions, raises an
``ArgumentError`` for one.  ``interpolate`` and ``cat`` (along channels) take
Ragged batches too, item by item.
"""
import numpy as np

from .. import _kernels as _k
from .. import functional as _F
from .._validation import as_tuple, result_dtype
from .._ops import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Tanh, cat
from ..autograd import Function, as_tensor
from ..errors import ArgumentError, ShapeError
from ..functional.pooling import _check_p
from ..ragged import Batch, Ragged

__all__ = [
    "conv", "conv_transpose", "local_conv", "tiled_conv", "separable_conv", "fft_conv",
    "max_pool", "avg_pool", "lp_pool", "gaussian_pool", "global_pool",
    "adaptive_pool", "maxout", "max_unpool", "batch_norm", "batch_norm_relu", "linear", "dropout",
    "relu", "leaky_relu", "tanh", "sigmoid", "log_softmax", "softmax", "flatten",
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

    ragged = "native"
    op = "conv"

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


def conv(x, weight, bias=None, *, stride=1, padding="valid", dilation=1, groups=1,
         flip=False, method="auto"):
    """Differentiable :func:`sigconv.functional.conv` (same arguments)."""
    return _Conv.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation,
                       groups=groups, flip=flip, method=method)


class _ConvTranspose(_Conv):
    op = "conv_transpose"


def conv_transpose(x, weight, bias=None, *, stride=1, padding=0, output_padding=0, dilation=1,
                   groups=1, output_size=None):
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

    ragged = None

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


def local_conv(x, weight, bias=None, *, stride=1, padding="valid"):
    """Differentiable :func:`sigconv.functional.local_conv` (weight ``(C_out, *out, C_in, *k)``)."""
    return _LocalConv.apply(x, weight, bias, stride=stride, padding=padding)


def tiled_conv(x, weight, bias=None, *, stride=1, padding="valid"):
    """Differentiable :func:`sigconv.functional.tiled_conv` (weight ``(C_out, C_in, *k, *tile)``)."""
    return _TiledConv.apply(x, weight, bias, stride=stride, padding=padding)


class _SeparableConv(Function):
    ragged = "native"  # item by item

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


def separable_conv(x, factors, bias=None, *, stride=1, padding="valid", dilation=1, flip=False):
    """Differentiable :func:`sigconv.functional.separable_conv` (one 1-D factor per axis)."""
    return _SeparableConv.apply(x, bias, *factors, stride=stride, padding=padding,
                                dilation=dilation, flip=flip)


class _FFTConv(_Conv):  # Ragged batches item by item
    op = "fft_conv"


def fft_conv(x, weight, bias=None, *, stride=1, padding="valid", dilation=1, groups=1, flip=False):
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


def max_pool(x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
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


def avg_pool(x, kernel_size, *, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
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


def lp_pool(x, p, kernel_size, *, stride=None, ceil_mode=False):
    """Differentiable :func:`sigconv.functional.lp_pool`."""
    return _LpPool.apply(x, p=p, kernel_size=kernel_size, stride=stride, ceil_mode=ceil_mode)


class _GaussianPool(_AvgPool):
    op = "gaussian_pool"


def gaussian_pool(x, kernel_size, *, sigma, stride=None, padding=0):
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


def adaptive_pool(x, output_size, kind="avg", *, p=2):
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


def global_pool(x, kind="avg", *, p=2):
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


def maxout(x, pieces):
    """Differentiable :func:`sigconv.functional.maxout` (cross-channel max)."""
    return _Maxout.apply(x, pieces=pieces)


class _MaxUnpool(Function):
    ragged = "native"

    def forward(self, x, *, indices, **options):
        self.indices = indices
        return _F.max_unpool(x, indices, **options)

    def backward(self, g):
        return (_F.max_unpool_backward(g, self.indices),)


def max_unpool(x, indices, kernel_size, *, stride=None, padding=0, output_size=None):
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

    def forward(self, x, weight, bias, *, running_mean, running_var, training, momentum, eps,
                relu=False):
        self.relu, self.training, self.weight = relu, training, weight
        if not isinstance(x, Ragged) and (x.ndim < 3 or not x.size):  # (N, C): numpy formulas
            self.table = None
            return self._forward_2d(x, weight, bias, running_mean, running_var, training,
                                    momentum, eps)
        # the input's float dtype (sigconv's rule), contiguous: a dense batch is equal items
        batch = Batch.of(x)
        batch = batch.with_flat(np.ascontiguousarray(batch.flat, result_dtype(x=batch.flat)))
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
        sum_g = sum_gxhat = None
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


def batch_norm(x, running_mean, running_var, weight=None, bias=None, *, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation (``torch.nn.functional.batch_norm``'s arguments).

    ``running_mean`` and ``running_var`` are numpy arrays updated in place
    when ``training``; they may be ``None`` when ``training``.
    """
    x = _check_batch_norm(x, running_mean, training)
    return _BatchNorm.apply(x, weight, bias, running_mean=running_mean, running_var=running_var,
                            training=bool(training), momentum=momentum, eps=eps)


def batch_norm_relu(x, running_mean, running_var, weight=None, bias=None, *, training=False,
                    momentum=0.1, eps=1e-5):
    """``relu(batch_norm(x, ...))`` in one step: the same result, fewer passes over memory.

    Arguments as :func:`batch_norm`.  The normalised values are not stored:
    the output is written once, and the backward takes the ReLU's mask from
    it.  :class:`~sigconv.nn.Sequential` uses this for a
    :class:`~sigconv.nn.BatchNorm` followed by a :class:`~sigconv.nn.ReLU`.
    """
    x = _check_batch_norm(x, running_mean, training)
    return _BatchNorm.apply(x, weight, bias, running_mean=running_mean, running_var=running_var,
                            training=bool(training), momentum=momentum, eps=eps, relu=True)


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


def linear(x, weight, bias=None):
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


def dropout(x, p=0.5, *, training=True, rng=None):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``."""
    if not 0 <= p < 1:
        raise ArgumentError(f"dropout probability p must be in [0, 1), got {p!r}")
    x = as_tensor(x)
    if not training or p == 0:
        return x
    rng = np.random.default_rng() if rng is None else rng
    keep = rng.random(x.data.data.shape if x.ragged else x.shape) >= p
    mask = keep.astype(x.dtype) / np.asarray(1 - p, x.dtype)
    return x * (x.data.like(mask) if x.ragged else mask)


def relu(x):
    return ReLU.apply(x)


def leaky_relu(x, negative_slope=0.01):
    return LeakyReLU.apply(x, slope=negative_slope)


def tanh(x):
    return Tanh.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def log_softmax(x, axis=1):
    return LogSoftmax.apply(x, axis=axis)


def softmax(x, axis=1):
    return log_softmax(x, axis).exp()


def flatten(x, start_axis=1):
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


def interpolate(x, size=None, *, scale_factor=None):
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
    if x.ragged:
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
        size = tuple(n * f for n, f in zip(x.shape[2:], factor))
    else:
        size = as_tuple(size, nd, "size", minimum=1)
    return _Nearest.apply(x, size=size)


# Losses live in losses.py; re-exported here as torch.nn.functional has them.
from .losses import cross_entropy, dice_loss, mse_loss  # noqa: E402

__all__ += ["cross_entropy", "mse_loss", "dice_loss"]
