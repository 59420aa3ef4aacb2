"""Normalisation layers for any number of spatial axes: PyTorch's semantics and state dicts.

:class:`BatchNorm` (``torch.nn.BatchNorm1d/2d/3d``) takes statistics over the
batch; :class:`GroupNorm` and :class:`InstanceNorm` (``torch.nn.GroupNorm``,
``torch.nn.InstanceNorm1d/2d/3d``) over each item alone, so they behave the
same with batches of one or two volumes and give every item of a Ragged
batch exactly what it gives alone; :class:`LayerNorm` (``torch.nn.LayerNorm``)
over the trailing axes of a dense input.
"""
from __future__ import annotations
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from . import functional as F
from ._checks import float_dtype, positive_int
from .._validation import check_positive_real
from ..autograd import as_tensor
from ..errors import ArgumentError, ShapeError
from .activation import ReLU
from .module import Module, Parameter
from ..autograd import Tensor
from ..typing import TensorLike

__all__ = ["BatchNorm", "GroupNorm", "InstanceNorm", "LayerNorm"]


class BatchNorm(Module):
    """Normalise each channel by batch statistics in training, running statistics in evaluation.

    State: ``weight`` and ``bias`` ``(C,)`` (with ``affine``), buffers
    ``running_mean``, ``running_var`` ``(C,)`` and ``num_batches_tracked``
    (int64 scalar) -- PyTorch's names, so its state dict loads into
    ``torch.nn.BatchNorm2d`` and back.  ``momentum=None`` takes the cumulative
    average.  Input ``(N, C)`` or ``(N, C, *spatial)``.
    """

    def __init__(self, num_channels: int, *, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        self.num_channels = positive_int(num_channels, "num_channels")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ArgumentError(f"momentum must be in [0, 1] or None, got {momentum!r}")
        if not eps > 0:
            raise ArgumentError(f"eps must be > 0, got {eps!r}")
        self.eps, self.momentum, self.affine = float(eps), momentum, bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dtype = float_dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_channels, dtype))
            self.bias = Parameter(np.zeros(num_channels, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_channels, dtype))
            self.register_buffer("running_var", np.ones(num_channels, dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def forward(self, x: TensorLike) -> Tensor:
        return self._normalise(x, F.batch_norm)

    def _normalise(self, x: TensorLike, op: Callable[..., Tensor]) -> Tensor:
        """``op(x, ...)`` (:func:`~sigconv.nn.functional.batch_norm` or ``batch_norm_relu``)."""
        x = as_tensor(x)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ShapeError(f"BatchNorm expects input (N, {self.num_channels}, *spatial), got "
                             f"shape {x.shape}")
        use_batch = self.training or not self.track_running_stats
        momentum = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                        else self.momentum)
        return op(x, self.running_mean, self.running_var, self.weight, self.bias,
                  training=use_batch, momentum=momentum, eps=self.eps)

    def _fused_with(self, following: Module) -> Callable[[Any], Any] | None:
        """``relu(self(x))`` in one step when ``following`` is a plain ReLU (for Sequential)."""
        if type(self).forward is not BatchNorm.forward or type(following).forward is not \
                ReLU.forward:
            return None
        return lambda x: self._normalise(x, F.batch_norm_relu)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, momentum={self.momentum}"


def _eps(eps: object) -> float:
    return check_positive_real(eps, "eps")


def _affine_parameters(module: Module, affine: bool, shape: int | tuple[int, ...],
                       dtype: DTypeLike, bias: bool = True) -> None:
    """``weight`` (ones) and ``bias`` (zeros) of ``shape`` when ``affine``, else absent ones."""
    if affine:
        module.weight = Parameter(np.ones(shape, dtype))
    else:
        module.register_parameter("weight", None)
    if affine and bias:
        module.bias = Parameter(np.zeros(shape, dtype))
    else:
        module.register_parameter("bias", None)


def _check_channels(layer: Module, x: TensorLike, channels: int,
                    spatial_needed: bool = False) -> Tensor:
    x = as_tensor(x)
    low = 3 if spatial_needed else 2
    if x.ndim < low or x.shape[1] != channels:
        axes = "*spatial" if spatial_needed else "*"
        raise ShapeError(f"{type(layer).__name__} expects input (N, {channels}, {axes}), got "
                         f"shape {x.shape}")
    return x


class GroupNorm(Module):
    """Normalise each item's groups of channels by their own statistics (``torch.nn.GroupNorm``).

    The ``num_channels`` channels form ``num_groups`` groups of consecutive
    channels; each group of each item is normalised by its mean and biased
    variance over ``(C / num_groups, *spatial)``, then channel ``c`` is
    scaled by ``weight[c]`` and shifted by ``bias[c]``.  The same in training
    and evaluation; no running statistics.  ``GroupNorm(1, C)`` normalises
    each item over all of ``(C, *spatial)`` (a convolutional "layer norm"),
    ``GroupNorm(C, C)`` is instance normalisation with an affine map.

    State: ``weight`` and ``bias`` ``(C,)`` with ``affine``, as PyTorch.
    Input ``(N, C, *)``, or a Ragged batch (each item's own positions).
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 *, dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        self.num_groups = positive_int(num_groups, "num_groups")
        self.num_channels = positive_int(num_channels, "num_channels")
        if num_channels % num_groups:
            raise ArgumentError(f"num_groups ({num_groups}) must divide num_channels "
                                f"({num_channels})")
        self.eps, self.affine = _eps(eps), bool(affine)
        _affine_parameters(self, affine, num_channels, float_dtype(dtype))

    def forward(self, x: TensorLike) -> Tensor:
        x = _check_channels(self, x, self.num_channels)
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class InstanceNorm(Module):
    """Normalise each channel of each item by its own statistics (``torch.nn.InstanceNorm*d``).

    One class for 1 to 3 spatial axes.  With ``track_running_stats``, a
    training pass also updates ``running_mean`` and ``running_var`` (the
    mean over items of each item's mean and unbiased variance, weighted by
    ``momentum``), and evaluation normalises by them; otherwise evaluation
    uses each item's own statistics too.  Unlike PyTorch, ``momentum=None``
    is refused: PyTorch's InstanceNorm then leaves the running statistics
    unchanged, which is never what one wants.

    State (PyTorch's names and layouts): ``weight`` and ``bias`` ``(C,)`` with
    ``affine``; ``running_mean``, ``running_var`` ``(C,)`` and
    ``num_batches_tracked`` with ``track_running_stats`` (PyTorch keeps the
    last at 0, so does this).  Input ``(N, C, *spatial)``, or a Ragged batch.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, *,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        self.num_features = positive_int(num_features, "num_features")
        if (isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.floating))
                or not 0 <= momentum <= 1):
            raise ArgumentError(f"momentum must be a number in [0, 1], got {momentum!r}")
        self.eps, self.momentum, self.affine = _eps(eps), float(momentum), bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dtype = float_dtype(dtype)
        _affine_parameters(self, affine, num_features, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def forward(self, x: TensorLike) -> Tensor:
        x = _check_channels(self, x, self.num_features, spatial_needed=True)
        return F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                               use_input_stats=self.training or not self.track_running_stats,
                               momentum=self.momentum, eps=self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class LayerNorm(Module):
    """Normalise over the trailing axes ``normalized_shape`` (``torch.nn.LayerNorm``).

    Every slice over the last ``len(normalized_shape)`` axes is normalised
    by its own mean and biased variance, then multiplied by ``weight`` and
    shifted by ``bias`` elementwise (both of shape ``normalized_shape``).
    State: ``weight`` (with ``elementwise_affine``) and ``bias`` (also with
    ``bias=True``), as PyTorch.

    Dense input only, as in PyTorch: for ``(N, C, *spatial)`` the trailing
    axes are the spatial ones, and ``LayerNorm((C, H, W))`` has a weight per
    position, tied to one input size.  A Ragged batch raises an
    ``ArgumentError``: ``GroupNorm(1, C)`` normalises each item over
    ``(C, *spatial)`` with a per-channel affine, which fits any size.
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, *,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        self.normalized_shape = F._normalized_shape(normalized_shape)
        self.eps, self.elementwise_affine = _eps(eps), bool(elementwise_affine)
        _affine_parameters(self, elementwise_affine, self.normalized_shape, float_dtype(dtype),
                           bias=bias)

    def forward(self, x: TensorLike) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
