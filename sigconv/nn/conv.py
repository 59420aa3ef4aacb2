"""Convolution layers: :class:`Conv` for 1-D, 2-D and 3-D signals, and the chapter's variants.

``Conv(..., ndim=2)`` holds the same ``weight`` ``(C_out, C_in // groups, kH, kW)``
and ``bias`` ``(C_out,)`` as ``torch.nn.Conv2d``, so state dicts move between
the two unchanged (``ndim=1`` ~ ``Conv1d``, ``ndim=3`` ~ ``Conv3d``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .. import functional as _F
from .. import shapes
from .._validation import as_tuple, check_choice
from ..errors import ArgumentError, ShapeError
from . import functional as F
from . import init
from ._checks import float_dtype, layer_input, positive_int, spatial_ndim
from .module import Module, Parameter
from ..autograd import Tensor
from ..typing import ConvMethod, IntOrTuple, Padding, Seed, TensorLike

__all__ = ["Conv", "ConvTranspose", "LocalConv", "TiledConv"]


def _kernel_options(layer: Module, in_channels: int, out_channels: int,
                    kernel_size: IntOrTuple, ndim: int, stride: IntOrTuple, *,
                    groups: int = 1, dilation: IntOrTuple = 1) -> None:
    """Check and set the options every layer with a kernel has (ndim, channels, sizes)."""
    layer.ndim = spatial_ndim(ndim)
    layer.in_channels = positive_int(in_channels, "in_channels")
    layer.out_channels = positive_int(out_channels, "out_channels")
    layer.groups = positive_int(groups, "groups")
    if in_channels % groups or out_channels % groups:
        raise ArgumentError(f"groups={groups} must divide in_channels={in_channels} and "
                            f"out_channels={out_channels}")
    layer.kernel_size = as_tuple(kernel_size, ndim, "kernel_size", minimum=1)
    layer.stride = as_tuple(stride, ndim, "stride", minimum=1)
    layer.dilation = as_tuple(dilation, ndim, "dilation", minimum=1)


def _weight_and_bias(layer: Module, weight_shape: tuple[int, ...], bias_shape: Any, bias: bool,
                     dtype: DTypeLike, rng: Seed) -> None:
    """Set ``layer.weight`` (and ``layer.bias`` if ``bias``, else None) of ``dtype``, He-normal."""
    layer.weight = Parameter(np.zeros(weight_shape, dtype))
    if bias:
        layer.bias = Parameter(np.zeros(bias_shape, dtype))
    else:
        layer.register_parameter("bias", None)
    init.he_normal_(layer, rng=rng)


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

    Notes
    -----
    Input ``(N, in_channels, *spatial)``, output ``(N, out_channels, *out_spatial)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, *, ndim: int,
                 stride: IntOrTuple = 1, padding: Padding = "same", dilation: IntOrTuple = 1,
                 groups: int = 1, bias: bool = True, method: ConvMethod = "auto",
                 dtype: DTypeLike = np.float32, rng: Seed = None) -> None:
        super().__init__()
        _kernel_options(self, in_channels, out_channels, kernel_size, ndim, stride,
                        groups=groups, dilation=dilation)
        self.padding = padding
        self.method = check_choice(method, "method", _F.CONV_METHODS)
        dtype = float_dtype(dtype)
        _weight_and_bias(self, (out_channels, in_channels // groups) + self.kernel_size,
                         out_channels, bias, dtype, rng)

    def forward(self, x: TensorLike) -> Tensor:
        x = layer_input(self, x, self.ndim, self.in_channels)
        return F.conv(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                      dilation=self.dilation, groups=self.groups, method=self.method)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"ndim={self.ndim}, stride={self.stride}, padding={self.padding!r}, "
                f"dilation={self.dilation}, groups={self.groups}, bias={self.bias is not None}")


class ConvTranspose(Module):
    """Transposed convolution (``torch.nn.ConvTranspose1d/2d/3d``): upsampling in a decoder.

    ``weight`` ``(in_channels, out_channels // groups, *kernel)`` and ``bias``
    ``(out_channels,)``, PyTorch's layout, so state dicts move unchanged.
    ``padding`` crops the full result as PyTorch's does (default 0); call
    with ``output_size=`` to pick among the sizes a stride allows.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, *, ndim: int,
                 stride: IntOrTuple = 1, padding: Padding = 0, output_padding: IntOrTuple = 0,
                 dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 dtype: DTypeLike = np.float32, rng: Seed = None) -> None:
        super().__init__()
        _kernel_options(self, in_channels, out_channels, kernel_size, ndim, stride,
                        groups=groups, dilation=dilation)
        self.padding, self.output_padding = padding, output_padding
        dtype = float_dtype(dtype)
        taps = math.prod(self.kernel_size)
        # each output sums about in/groups * taps / stride products
        self.fan_in = max(1, (in_channels // groups) * taps // math.prod(self.stride))
        self.fan_out = (out_channels // groups) * taps
        _weight_and_bias(self, (in_channels, out_channels // groups) + self.kernel_size,
                         out_channels, bias, dtype, rng)

    def forward(self, x: TensorLike, output_size: Sequence[int] | None = None) -> Tensor:
        x = layer_input(self, x, self.ndim, self.in_channels)
        return F.conv_transpose(x, self.weight, self.bias, stride=self.stride,
                                padding=self.padding, output_padding=self.output_padding,
                                dilation=self.dilation, groups=self.groups,
                                output_size=output_size)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"ndim={self.ndim}, stride={self.stride}, padding={self.padding!r}")


class LocalConv(Module):
    """Locally connected layer (unshared convolution, 9.5): its own filters at every position.

    The output size must be known to create the weights, so the layer takes
    the spatial ``input_size`` it will be applied to.  ``weight``
    ``(out_channels, *out_spatial, in_channels, *kernel)``; ``bias``
    ``(out_channels, *out_spatial)`` (also unshared).
    """

    #: not a (C_out, C_in, *kernel) bank: nn.init's kernel-bank fillers refuse it
    _weight_layout = "per position"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, *, ndim: int,
                 input_size: Sequence[int], stride: IntOrTuple = 1, padding: Padding = "valid",
                 bias: bool = True, dtype: DTypeLike = np.float32, rng: Seed = None) -> None:
        super().__init__()
        _kernel_options(self, in_channels, out_channels, kernel_size, ndim, stride)
        self.input_size = as_tuple(input_size, ndim, "input_size", minimum=1)
        self.padding = padding
        self.output_size = shapes.conv_output_size(self.input_size, self.kernel_size,
                                                   self.stride, padding)
        if any(m < 1 for m in self.output_size):
            raise ArgumentError(f"kernel_size {self.kernel_size} is larger than the padded "
                                f"input_size {self.input_size}")
        dtype = float_dtype(dtype)
        self.fan_in = in_channels * math.prod(self.kernel_size)
        self.fan_out = out_channels * math.prod(self.kernel_size)
        unshared = (out_channels,) + tuple(self.output_size)  # the bias is unshared too
        _weight_and_bias(self, unshared + (in_channels,) + self.kernel_size, unshared, bias,
                         dtype, rng)

    def forward(self, x: TensorLike) -> Tensor:
        x = layer_input(self, x, self.ndim, self.in_channels)
        # a Ragged batch is refused by F.local_conv (its Function takes no Ragged input)
        if not x.ragged and tuple(x.shape[2:]) != self.input_size:
            raise ShapeError(f"LocalConv was built for inputs of spatial size {self.input_size}, "
                             f"got shape {x.shape}; its filters are tied to positions")
        return F.local_conv(x, self.weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"ndim={self.ndim}, input_size={self.input_size}, stride={self.stride}")


class TiledConv(Module):
    """Tiled convolution (9.5): ``prod(tile)`` kernels, output position ``j`` uses ``j % tile``.

    Between a convolution (``tile`` all ones) and a locally connected layer
    (tile as large as the output).  ``weight``
    ``(out_channels, in_channels, *kernel, *tile)``, ``bias`` ``(out_channels,)``.
    """

    #: not a (C_out, C_in, *kernel) bank: nn.init's kernel-bank fillers refuse it
    _weight_layout = "per tile"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, *, ndim: int,
                 tile: IntOrTuple, stride: IntOrTuple = 1, padding: Padding = "same",
                 bias: bool = True, dtype: DTypeLike = np.float32, rng: Seed = None) -> None:
        super().__init__()
        _kernel_options(self, in_channels, out_channels, kernel_size, ndim, stride)
        self.tile = as_tuple(tile, ndim, "tile", minimum=1)
        self.padding = padding
        dtype = float_dtype(dtype)
        self.fan_in = in_channels * math.prod(self.kernel_size)
        self.fan_out = out_channels * math.prod(self.kernel_size)
        _weight_and_bias(self, (out_channels, in_channels) + self.kernel_size + self.tile,
                         out_channels, bias, dtype, rng)

    def forward(self, x: TensorLike) -> Tensor:
        x = layer_input(self, x, self.ndim, self.in_channels)
        return F.tiled_conv(x, self.weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"ndim={self.ndim}, tile={self.tile}, stride={self.stride}")
