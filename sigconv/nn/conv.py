"""Convolution layers: :class:`Conv` for 1-D, 2-D and 3-D signals, and the chapter's variants.

``Conv(..., ndim=2)`` holds the same ``weight`` ``(C_out, C_in // groups, kH, kW)``
and ``bias`` ``(C_out,)`` as ``torch.nn.Conv2d``, so state dicts move between
the two unchanged (``ndim=1`` ~ ``Conv1d``, ``ndim=3`` ~ ``Conv3d``).
"""
import numpy as np

from .. import functional as _F
from .._validation import as_tuple, check_choice
from ..errors import ArgumentError
from . import functional as F
from . import init
from ._checks import float_dtype, layer_input, positive_int, spatial_ndim
from .module import Module, Parameter

__all__ = ["Conv"]


class Conv(Module):
    """N-d multi-channel convolution (cross-correlation, as every framework), learnable.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or tuple of int
    ndim : {1, 2, 3}
        Spatial axes of the input: 1 waveform, 2 image or spectrogram, 3 volume or video.
    stride, dilation : int or tuple of int
    padding : {"same", "valid", "full"}, int or tuple
        As :func:`sigconv.functional.conv`; ``"same"`` (default) keeps the
        size (``ceil(n / stride)`` with a stride).
    groups : int
    bias : bool
    method : {"auto", "gemm", "direct"}, passed to the kernels.
    dtype : float32 (default) or float64
    rng : numpy Generator or seed for the He-normal initial weights; see
        :mod:`sigconv.nn.init` for the other strategies.

    Input ``(N, in_channels, *spatial)``, output ``(N, out_channels, *out_spatial)``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, *, ndim, stride=1, padding="same",
                 dilation=1, groups=1, bias=True, method="auto", dtype=np.float32, rng=None):
        super().__init__()
        self.ndim = spatial_ndim(ndim)
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.groups = positive_int(groups, "groups")
        if in_channels % groups or out_channels % groups:
            raise ArgumentError(f"groups={groups} must divide in_channels={in_channels} and "
                                f"out_channels={out_channels}")
        self.kernel_size = as_tuple(kernel_size, ndim, "kernel_size", minimum=1)
        self.stride = as_tuple(stride, ndim, "stride", minimum=1)
        self.dilation = as_tuple(dilation, ndim, "dilation", minimum=1)
        self.padding = padding
        self.method = check_choice(method, "method", _F.CONV_METHODS)
        dtype = float_dtype(dtype)
        self.weight = Parameter(np.zeros((out_channels, in_channels // groups) + self.kernel_size,
                                         dtype))
        if bias:
            self.bias = Parameter(np.zeros(out_channels, dtype))
        else:
            self.register_parameter("bias", None)
        init.he_normal_(self, rng=rng)

    def forward(self, x):
        x = layer_input(self, x, self.ndim, self.in_channels)
        return F.conv(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                      dilation=self.dilation, groups=self.groups, method=self.method)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"ndim={self.ndim}, stride={self.stride}, padding={self.padding!r}, "
                f"dilation={self.dilation}, groups={self.groups}, bias={self.bias is not None}")
