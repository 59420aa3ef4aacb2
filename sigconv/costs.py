"""Counts behind the chapter's efficiency arguments (section 9.2, figure 9.6).

A convolution touches each input through ``k`` weights shared by every output
position (sparse interactions, parameter sharing); the same linear map written
as a dense matrix has one weight per (input, output) pair.  These helpers count
parameters and floating-point operations (multiplications plus additions) of
both, for any number of spatial axes.
"""
from dataclasses import dataclass

import numpy as np

from . import shapes
from ._validation import as_tuple

__all__ = ["LayerCost", "conv_costs"]


@dataclass(frozen=True)
class LayerCost:
    """Parameters and floating-point operations of one layer without bias."""

    parameters: int
    flops: int


def conv_costs(input_size, kernel_size, *, in_channels=1, out_channels=1, stride=1,
               padding="valid", dilation=1):
    """Cost of a convolution and of the equivalent dense matrix product.

    Parameters
    ----------
    input_size, kernel_size : tuple of int
        Spatial sizes, e.g. ``(280, 320)`` and ``(1, 2)``.
    in_channels, out_channels, stride, padding, dilation
        As for :func:`sigconv.functional.conv`.

    Returns
    -------
    dict
        ``{"conv": LayerCost, "dense": LayerCost, "output_size": tuple}``.
        Each output of the convolution costs ``C_in * k`` multiplications and
        ``C_in * k - 1`` additions; each output of the dense product
        ``n_in`` multiplications and ``n_in - 1`` additions.
    """
    input_size, kernel_size = tuple(input_size), tuple(kernel_size)
    n = len(input_size)
    stride, dilation = as_tuple(stride, n, "stride", minimum=1), as_tuple(dilation, n, "dilation", minimum=1)
    out = shapes.conv_output_size(input_size, kernel_size, stride, padding, dilation)
    n_out = int(np.prod(out)) * out_channels
    n_in = int(np.prod(input_size)) * in_channels
    taps = in_channels * int(np.prod(kernel_size))
    return {
        "conv": LayerCost(parameters=out_channels * taps, flops=n_out * (2 * taps - 1)),
        "dense": LayerCost(parameters=n_in * n_out, flops=n_out * (2 * n_in - 1)),
        "output_size": out,
    }
