"""A fully convolutional encoder-decoder for dense outputs (one value per sample, pixel or voxel)."""
from __future__ import annotations
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike

from .. import nn
from ..autograd import cat
from ..errors import ShapeError
from ..nn import functional as F
from ..nn._checks import layer_input, positive_int, spatial_ndim
from ..ragged import Ragged
from .classifier import conv_block
from ..autograd import Tensor
from ..typing import Seed, TensorLike

if TYPE_CHECKING:
    from ..export._walk import ExportOps

__all__ = ["EncoderDecoder"]


def _poolable(h: Tensor) -> bool:
    """Whether every axis of every item has at least 2 positions (else a stage skips pooling).

    A Ragged batch must agree over its items, so that each item does what it does alone.
    """
    smallest = h.data.shapes.min(axis=1) if isinstance(h.data, Ragged) else [min(h.shape[2:])]
    if all(n >= 2 for n in smallest):
        return True
    if h.ragged and any(n >= 2 for n in smallest):
        raise ShapeError(f"EncoderDecoder: at this depth some items are still poolable and some "
                         f"are not ({h.data!r}); batch items of similar sizes, or use fewer "
                         f"widths")
    return False


class EncoderDecoder(nn.Module):
    """U-Net-style encoder-decoder: outputs have the input's spatial size, for any size.

    The encoder applies ``conv_block``s of ``widths`` channels, max pooling
    by 2 (rounding up) between them; the decoder resizes back to each
    encoder stage (nearest neighbour), concatenates that stage's features
    (skip connection) and applies a block; a 1x1 convolution gives
    ``out_channels`` values per position.

    Parameters
    ----------
    in_channels, out_channels : int
    ndim : {1, 2, 3}
    widths : sequence of int, one per scale
    kernel_size, convs : kernel size and convolutions per block
    batch_norm : bool
    dtype, rng : parameter dtype and seed

    Notes
    -----
    Input ``(N, in_channels, *spatial)``, output ``(N, out_channels, *spatial)``;
    a Ragged batch gives a Ragged output, each item as if alone (with BatchNorm
    in eval mode).
    """

    def __init__(self, in_channels: int, out_channels: int, *, ndim: int,
                 widths: Sequence[int] = (16, 32, 64), kernel_size: int = 3, convs: int = 2,
                 batch_norm: bool = True, dtype: DTypeLike = np.float32,
                 rng: Seed = None) -> None:
        super().__init__()
        self.ndim = spatial_ndim(ndim)
        self.in_channels = positive_int(in_channels, "in_channels")
        widths = [positive_int(w, "widths") for w in widths]
        rng = np.random.default_rng(rng)
        options: dict[str, Any] = dict(ndim=ndim, kernel_size=kernel_size, batch_norm=batch_norm,
                                       convs=convs, dtype=dtype, rng=rng)
        self.encoders = nn.ModuleList(
            conv_block(c_in, c_out, **options)
            for c_in, c_out in zip([in_channels] + widths[:-1], widths))
        self.decoders = nn.ModuleList(
            conv_block(widths[i + 1] + widths[i], widths[i], **options)
            for i in reversed(range(len(widths) - 1)))
        self.head = nn.Conv(widths[0], positive_int(out_channels, "out_channels"), 1, ndim=ndim,
                            dtype=dtype, rng=rng)

    def forward(self, x: TensorLike) -> Tensor:
        h = layer_input(self, x, self.ndim, self.in_channels)
        skips = []
        for i, encoder in enumerate(self.encoders):
            if i and _poolable(h):
                h = F.max_pool(h, 2, ceil_mode=True)
            h = encoder(h)
            skips.append(h)
        for decoder, skip in zip(self.decoders, reversed(skips[:-1])):
            h = F.interpolate(h, skip.data.shapes if skip.ragged else skip.shape[2:])
            h = decoder(cat([h, skip], axis=1))
        return self.head(h)

    @staticmethod
    def _export_forward(module: EncoderDecoder, ops: ExportOps, x: Any) -> Any:
        """:meth:`forward` in an exporter's ops (:mod:`sigconv.export`); ``module`` is the
        model or its twin."""
        skips = []
        for i in range(len(module.encoders)):
            if i:
                x = ops.if_spatial_at_least(x, 2, lambda h: ops.max_pool(h, 2, ceil_mode=True))
            x = ops.child(f"encoders.{i}", x)
            skips.append(x)
        for i, skip in enumerate(reversed(skips[:-1])):
            x = ops.child(f"decoders.{i}", ops.cat([ops.resize_like(x, skip), skip], axis=1))
        return ops.child("head", x)
