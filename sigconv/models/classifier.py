"""A classifier backbone written once for waveforms, images and volumes."""
import numpy as np

from .. import nn
from ..nn._checks import positive_int, spatial_ndim

__all__ = ["Classifier", "conv_block"]


def conv_block(in_channels, out_channels, *, ndim, kernel_size=3, batch_norm=True, convs=1,
               dtype=np.float32, rng=None):
    """``convs`` times Conv ("same" padding) -> BatchNorm -> ReLU, as a :class:`~sigconv.nn.Sequential`."""
    layers = []
    for i in range(convs):
        layers.append(nn.Conv(in_channels if i == 0 else out_channels, out_channels, kernel_size,
                              ndim=ndim, bias=not batch_norm, dtype=dtype, rng=rng))
        if batch_norm:
            layers.append(nn.BatchNorm(out_channels, dtype=dtype))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Classifier(nn.Module):
    """Conv/pool blocks, global pooling and a linear head, for 1-D, 2-D or 3-D inputs.

    Block ``i`` is Conv -> BatchNorm -> ReLU with ``widths[i]`` channels;
    every block but the last is followed by max pooling of size ``pool``
    (halving each axis by default), and global pooling then reduces any
    remaining size to one value per channel, so inputs of any size (at least
    ``pool ** (len(widths) - 1)`` per axis) give ``(N, num_classes)`` logits.

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
    dropout : float, before the head
    dtype, rng : parameter dtype and seed of the initial weights

    State dict: ``features.<i>.<...>`` and ``head.weight``/``head.bias``, in
    the layouts of the matching PyTorch layers.
    """

    def __init__(self, in_channels, num_classes, *, ndim, widths=(16, 32), kernel_size=3,
                 pool=2, global_pool="avg", batch_norm=True, dropout=0.0, dtype=np.float32,
                 rng=None):
        super().__init__()
        self.ndim = spatial_ndim(ndim)
        widths = [positive_int(w, "widths") for w in widths]
        rng = np.random.default_rng(rng)
        layers, channels = [], positive_int(in_channels, "in_channels")
        for i, width in enumerate(widths):
            layers.extend(conv_block(channels, width, ndim=ndim, kernel_size=kernel_size,
                                     batch_norm=batch_norm, dtype=dtype, rng=rng))
            if pool and i < len(widths) - 1:
                layers.append(nn.MaxPool(pool))
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.GlobalPool(global_pool)
        self.dropout = nn.Dropout(dropout, rng=rng) if dropout else nn.Identity()
        self.head = nn.Linear(channels, positive_int(num_classes, "num_classes"), dtype=dtype,
                              rng=rng)

    def forward(self, x):
        """``(N, in_channels, *spatial)`` -> logits ``(N, num_classes)``."""
        return self.head(self.dropout(self.pool(self.features(x))))
