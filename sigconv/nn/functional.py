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

from .. import functional as _F
from .._validation import as_tuple, result_dtype
from ..autograd import (Function, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Tanh, _channel_sums,
                        _planes, as_tensor, cat)
from ..errors import ArgumentError, ShapeError
from ..ragged import Ragged

__all__ = [
    "conv", "conv_transpose", "local_conv", "tiled_conv", "separable_conv", "fft_conv",
    "max_pool", "avg_pool", "lp_pool", "gaussian_pool", "global_pool",
    "adaptive_pool", "maxout", "max_unpool", "batch_norm", "linear", "dropout",
    "relu", "leaky_relu", "tanh", "sigmoid", "log_softmax", "softmax", "flatten",
    "interpolate", "cat",
]


def _spatial_axes(x):
    return (0,) + tuple(range(2, x.ndim))


def _layout(x):
    """What a backward function needs to know of a forward input: its shape, or the Ragged itself."""
    return x if isinstance(x, Ragged) else x.shape


def _bias_sum(g):
    """Gradient of a per-channel bias added to ``g`` (dense or Ragged): (C,)."""
    if isinstance(g, Ragged):
        return _channel_sums(g).astype(g.dtype)
    return g.sum(axis=_spatial_axes(g))


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


def global_pool(x, kind="avg", *, p=2):
    """Differentiable :func:`sigconv.functional.global_pool`: ``(N, C, *spatial) -> (N, C)``."""
    x = as_tensor(x)
    if not 3 <= x.ndim <= 5:
        raise ShapeError(f"x must have shape (N, C, *spatial) with 1 to 3 spatial axes, got "
                         f"shape {x.shape} ({x.ndim}-d)")
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
    """Batch normalisation over every axis but the channel axis 1.

    ``training``: normalise with the batch mean and biased variance, and
    update ``running_mean``/``running_var`` in place (with the unbiased
    variance, as PyTorch); otherwise normalise with the running statistics.
    A Ragged batch takes its statistics over every item's own positions (no
    padding anywhere): the same formulas with per-channel sums over the
    flat buffer (:func:`sigconv.autograd._channel_sums`) and per-channel
    arithmetic on each item's ``(C, P_i)`` view.
    """

    ragged = "native"

    def forward(self, x, weight, bias, *, running_mean, running_var, training, momentum, eps):
        self.dense_shape = None
        if not isinstance(x, Ragged) and x.ndim >= 3 and x.size:  # dense, as equal items
            self.dense_shape = x.shape
            x = Ragged(np.ascontiguousarray(x).reshape(-1),
                       np.tile(np.array(x.shape[2:], np.int64), (x.shape[0], 1)), x.shape[1])
        if isinstance(x, Ragged):
            out = self._forward_ragged(x, weight, bias, running_mean, running_var, training,
                                       momentum, eps)
            return out if self.dense_shape is None else out.data.reshape(self.dense_shape)
        self.ragged_x = None
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
        self.xhat, self.invstd, self.weight, self.training = xhat, invstd, weight, training
        self.axes, self.shape = axes, shape
        out = xhat if weight is None else xhat * weight.reshape(shape)
        return out if bias is None else out + bias.reshape(shape)

    def _forward_ragged(self, x, weight, bias, running_mean, running_var, training, momentum,
                        eps):
        # per-channel sums in one call over the flat buffer; the per-channel arithmetic item
        # by item on (C, P_i) views with (C, 1) values, so that each item stays in cache
        # through a loop's steps: no padding and no temporary array
        self.ragged_x = x
        count = x.data.size // x.channels  # real positions per channel, all items together
        column = lambda v: np.asarray(v, x.dtype).reshape(-1, 1)  # noqa: E731 - (C,) -> (C, 1)
        xhat, out = np.empty_like(x.data), np.empty_like(x.data)
        planes = list(zip(_planes(x), _planes(x, xhat), _planes(x, out)))
        if training:
            if count < 2:
                raise ShapeError(f"batch normalisation in training needs more than one value per "
                                 f"channel, got {x!r}")
            mean = _channel_sums(x) / count
            m = column(mean)
            for p, h, o in planes:
                np.subtract(p, m, out=h)
                np.square(h, out=o)  # the squared deviations, until the output overwrites them
            var = _channel_sums(x, out) / count
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean.astype(running_mean.dtype)
                running_var *= 1 - momentum
                running_var += momentum * (var * count / (count - 1)).astype(running_var.dtype)
        else:
            mean, var = running_mean, running_var
            m = column(mean)
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        scale = column(invstd)
        w = None if weight is None else column(weight)
        b = None if bias is None else column(bias)
        for p, h, o in planes:
            if not training:
                np.subtract(p, m, out=h)
            h *= scale
            np.multiply(h, w, out=o) if w is not None else np.copyto(o, h)
            if b is not None:
                o += b
        self.xhat, self.invstd, self.weight, self.training = xhat, invstd, weight, training
        return x.like(out)

    def _backward_ragged(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        x, g = self.ragged_x, g.data
        count = x.data.size // x.channels
        gp, hp = _planes(x, g), _planes(x, self.xhat)
        # sum of g and of g * xhat per channel: the bias and weight gradients, and (times the
        # weight) the two means in the training-mode input gradient
        gb = _channel_sums(x, g)
        gw = np.sum([np.einsum("cp,cp->c", p, h) for p, h in zip(gp, hp)], axis=0,
                    dtype=np.float64) if (need_w or (need_x and self.training)) else None
        gx = None
        if need_x:
            w = (np.ones(x.channels, np.float64) if self.weight is None
                 else self.weight.astype(np.float64))
            column = lambda v: np.asarray(v, x.dtype).reshape(-1, 1)  # noqa: E731
            scale = column(self.invstd * w)
            gx = np.empty_like(x.data)
            if self.training:
                mean_g, mean_gx = column(gb / count), column(gw / count)
                for p, h, o in zip(gp, hp, _planes(x, gx)):
                    np.multiply(h, mean_gx, out=o)  # d/dx of (x - mean) / std, batch statistics
                    o += mean_g
                    np.subtract(p, o, out=o)
                    o *= scale
            else:
                for p, o in zip(gp, _planes(x, gx)):
                    np.multiply(p, scale, out=o)
            gx = x.like(gx)
        return (gx, None if not need_w else gw.astype(x.dtype),
                None if not need_b else gb.astype(x.dtype))

    def backward(self, g):
        if self.dense_shape is not None:
            gx, gw, gb = self._backward_ragged(self.ragged_x.like(np.ascontiguousarray(g).reshape(-1)))
            return (None if gx is None else gx.data.reshape(self.dense_shape)), gw, gb
        if self.ragged_x is not None:
            return self._backward_ragged(g)
        need_x, need_w, need_b = self.needs_input_grad
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


def batch_norm(x, running_mean, running_var, weight=None, bias=None, *, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation (``torch.nn.functional.batch_norm``'s arguments).

    ``running_mean`` and ``running_var`` are numpy arrays updated in place
    when ``training``; they may be ``None`` when ``training``.
    """
    x = as_tensor(x)
    if x.ndim < 2:
        raise ShapeError(f"batch_norm needs input (N, C, *spatial), got shape {x.shape}")
    if not training and running_mean is None:
        raise ArgumentError("batch_norm with training=False needs running_mean and running_var")
    return _BatchNorm.apply(x, weight, bias, running_mean=running_mean, running_var=running_var,
                            training=bool(training), momentum=momentum, eps=eps)


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
