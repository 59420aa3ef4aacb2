"""A classifier backbone written once for waveforms, images and volumes."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np
from numpy.typing import DTypeLike

from .. import nn
from ..errors import ArgumentError
from ..nn._checks import positive_int, spatial_ndim
from ..autograd import Tensor
from ..typing import PoolKind, Seed, TensorLike

if TYPE_CHECKING:
    from ..export._walk import ExportOps

__all__ = ["Classifier", "conv_block", "residual_block", "norm_layer", "default_groups"]

#: Names accepted by the ``norm`` option of the blocks and of :class:`Classifier`.
NORMS = ("batch", "group", "instance", None)

#: A ``norm`` option: one of :data:`NORMS`, or a callable ``channels -> Module``.
_Norm = Union[Literal["batch", "group", "instance"], Callable[[int], nn.Module], None]


def default_groups(channels: int) -> int:
    """Groups of ``norm="group"``: the most groups of at least 4 channels, at most 32.

    The largest divisor of ``channels`` that is at most ``min(32, channels // 4)``
    (at least 1): 8 channels -> 2 groups, 16 -> 4, 32 -> 8, 64 -> 16, 128 -> 32.
    """
    channels = positive_int(channels, "channels")
    cap = max(1, min(32, channels // 4))
    return max(g for g in range(1, cap + 1) if channels % g == 0)


def norm_layer(norm: _Norm, channels: int, *,
               dtype: DTypeLike = np.float32) -> nn.Module | None:
    """The normalisation layer ``norm`` names for ``channels`` channels, or None for ``norm=None``.

    ``"batch"``: :class:`~sigconv.nn.BatchNorm`; ``"group"``:
    :class:`~sigconv.nn.GroupNorm` with :func:`default_groups`; ``"instance"``:
    :class:`~sigconv.nn.InstanceNorm` with an affine map; a callable is called
    as ``norm(channels)`` and must return a Module.
    """
    if callable(norm):
        layer = norm(channels)
        if not isinstance(layer, nn.Module):
            raise ArgumentError(f"norm({channels}) must return a Module, got "
                                f"{type(layer).__name__}")
        return layer
    if not (norm is None or isinstance(norm, str)) or norm not in NORMS:
        raise ArgumentError(f"norm must be 'batch', 'group', 'instance', None or a callable "
                            f"channels -> Module, got {norm!r}")
    if norm == "batch":
        return nn.BatchNorm(channels, dtype=dtype)
    if norm == "group":
        return nn.GroupNorm(default_groups(channels), channels, dtype=dtype)
    if norm == "instance":
        return nn.InstanceNorm(channels, affine=True, dtype=dtype)
    return None


def _resolve_norm(norm: Any, batch_norm: bool) -> Any:
    """``norm``, with the older ``batch_norm=False`` meaning ``norm=None``."""
    if batch_norm:
        return norm
    if norm not in ("batch", None):
        raise ArgumentError(f"batch_norm=False (no normalisation) contradicts norm={norm!r}; "
                            f"give norm alone")
    return None


def conv_block(in_channels: int, out_channels: int, *, ndim: int, kernel_size: int = 3,
               batch_norm: bool = True, convs: int = 1, norm: _Norm = "batch",
               dtype: DTypeLike = np.float32, rng: Seed = None) -> nn.Sequential:
    """``convs`` times Conv ("same" padding) -> norm -> ReLU, as a :class:`~sigconv.nn.Sequential`.

    ``norm`` as :func:`norm_layer` (BatchNorm by default); ``batch_norm=False``
    is the older spelling of ``norm=None``.  The convolutions have a bias only
    without a norm.
    """
    norm = _resolve_norm(norm, batch_norm)
    layers: list[nn.Module] = []
    for i in range(convs):
        layers.append(nn.Conv(in_channels if i == 0 else out_channels, out_channels, kernel_size,
                              ndim=ndim, bias=norm is None, dtype=dtype, rng=rng))
        layer = norm_layer(norm, out_channels, dtype=dtype)
        if layer is not None:
            layers.append(layer)
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def residual_block(in_channels: int, out_channels: int, *, ndim: int, kernel_size: int = 3,
                   stride: int = 1, norm: _Norm = "batch", dtype: DTypeLike = np.float32,
                   rng: Seed = None) -> nn.Sequential:
    """ResNet's basic block: ``relu(body(x) + shortcut(x))``, as a :class:`~sigconv.nn.Sequential`.

    ``body`` is Conv (``stride``) -> norm -> ReLU -> Conv -> norm; the
    shortcut is the identity, or a 1x1 Conv (``stride``) -> norm when the
    channels or the stride change (He et al., 2016, option B).  ``norm`` as
    :func:`norm_layer`.  A stride above 1 needs an odd ``kernel_size`` (the
    convolution is padded by ``kernel_size // 2``, as the 1x1 shortcut's
    output size requires).

    Returns ``Sequential(Residual(body, shortcut), ReLU())``: state dict
    ``0.body.<i>.<...>``, ``0.shortcut.<i>.<...>``, PyTorch's layouts.
    """
    kernel_size = positive_int(kernel_size, "kernel_size")
    stride = positive_int(stride, "stride")
    if stride > 1 and kernel_size % 2 == 0:
        raise ArgumentError(f"residual_block with stride {stride} needs an odd kernel_size, "
                            f"got {kernel_size}")
    padding = "same" if stride == 1 else kernel_size // 2

    def conv(c_in: int, k: int, s: int, pad: Any) -> nn.Conv:
        return nn.Conv(c_in, out_channels, k, ndim=ndim, stride=s, padding=pad,
                       bias=norm is None, dtype=dtype, rng=rng)

    def with_norm(*layers: nn.Module) -> list[nn.Module]:
        out: list[nn.Module] = []
        for layer in layers:
            out.append(layer)
            if isinstance(layer, nn.Conv):
                n = norm_layer(norm, out_channels, dtype=dtype)
                if n is not None:
                    out.append(n)
        return out

    body = nn.Sequential(*with_norm(conv(in_channels, kernel_size, stride, padding)),
                         nn.ReLU(), *with_norm(conv(out_channels, kernel_size, 1, "same")))
    shortcut = None
    if in_channels != out_channels or stride != 1:
        shortcut = nn.Sequential(*with_norm(conv(in_channels, 1, stride, 0)))
    return nn.Sequential(nn.Residual(body, shortcut), nn.ReLU())


class Classifier(nn.Module):
    """Conv/pool blocks, global pooling and a linear head, for 1-D, 2-D or 3-D inputs.

    Block ``i`` is Conv -> BatchNorm -> ReLU with ``widths[i]`` channels;
    every block but the last is followed by max pooling of size ``pool``
    (halving each axis by default), and global pooling then reduces any
    remaining size to one value per channel, so inputs of any size (at least
    ``pool ** (len(widths) - 1)`` per axis) give ``(N, num_classes)`` logits.
    With ``residual=True`` every block after the first is a
    :func:`residual_block` (two convolutions and a shortcut, a 1x1
    convolution where the width changes).

    Parameters
    ----------
    in_channels, num_classes : int
    ndim : {1, 2, 3}
        1 for waveforms and skeleton sequences, 2 for spectrograms and
        images, 3 for volumes and video.
    widths : sequence of int
    kernel_size, pool : int
    global_pool : {"avg", "max", "lp"}
    batch_norm : bool
        False is the older spelling of ``norm=None``.
    dropout : float, before the head
    dtype, rng : parameter dtype and seed of the initial weights
    residual : bool
    norm : {"batch", "group", "instance", None} or callable
        The normalisation after each convolution (:func:`norm_layer`):
        ``"group"`` or ``"instance"`` take each item's own statistics, for
        batches of a few volumes and for training on Ragged batches with
        every item as if alone.

    Notes
    -----
    State dict: ``features.<i>.<...>`` and ``head.weight``/``head.bias``, in
    the layouts of the matching PyTorch layers.  The defaults
    (``residual=False``, ``norm="batch"``) give the names and layers of
    earlier versions.
    """

    def __init__(self, in_channels: int, num_classes: int, *, ndim: int,
                 widths: Sequence[int] = (16, 32), kernel_size: int = 3, pool: int = 2,
                 global_pool: PoolKind = "avg", batch_norm: bool = True, dropout: float = 0.0,
                 dtype: DTypeLike = np.float32, rng: Seed = None, residual: bool = False,
                 norm: _Norm = "batch") -> None:
        super().__init__()
        self.ndim = spatial_ndim(ndim)
        widths = [positive_int(w, "widths") for w in widths]
        norm = _resolve_norm(norm, batch_norm)
        rng = np.random.default_rng(rng)
        layers: list[nn.Module] = []
        channels = positive_int(in_channels, "in_channels")
        for i, width in enumerate(widths):
            if residual and i > 0:
                layers.extend(residual_block(channels, width, ndim=ndim, kernel_size=kernel_size,
                                             norm=norm, dtype=dtype, rng=rng))
            else:
                layers.extend(conv_block(channels, width, ndim=ndim, kernel_size=kernel_size,
                                         norm=norm, dtype=dtype, rng=rng))
            if pool and i < len(widths) - 1:
                layers.append(nn.MaxPool(pool))
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.GlobalPool(global_pool)
        self.dropout = nn.Dropout(dropout, rng=rng) if dropout else nn.Identity()
        self.head = nn.Linear(channels, positive_int(num_classes, "num_classes"), dtype=dtype,
                              rng=rng)

    def forward(self, x: TensorLike) -> Tensor:
        """``(N, in_channels, *spatial)`` -> logits ``(N, num_classes)``."""
        return self.head(self.dropout(self.pool(self.features(x))))

    @staticmethod
    def _export_forward(module: Classifier, ops: ExportOps, x: Any) -> Any:
        """:meth:`forward` in an exporter's ops (:mod:`sigconv.export`)."""
        return ops.child("head", ops.child("dropout", ops.child("pool", ops.child("features", x))))
