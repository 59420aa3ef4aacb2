"""Counts behind the chapter's efficiency arguments (section 9.2, figure 9.6).

A convolution touches each input through ``k`` weights shared by every output
position (sparse interactions, parameter sharing); the same linear map written
as a dense matrix has one weight per (input, output) pair.  Between the two,
the chapter's section 9.5 has unshared convolution (sparse interactions, no
sharing: one kernel per output position) and tiled convolution (a cycle of
``t`` kernels per axis).  These helpers count parameters and floating-point
operations (multiplications plus additions, no bias) of all four, for any
number of spatial axes:

=============  ==========================================  ==========================
layer          parameters                                  floating-point operations
=============  ==========================================  ==========================
dense          ``n_in * n_out``                            ``n_out (2 n_in - 1)``
convolution    ``C_out (C_in / g) prod(k)``                ``n_out (2 (C_in / g) prod(k) - 1)``
unshared       ``C_out prod(m) C_in prod(k)``              as convolution
tiled          ``C_out C_in prod(k) prod(t)``              as convolution
=============  ==========================================  ==========================

with ``n_in = C_in prod(n)`` inputs, ``n_out = C_out prod(m)`` outputs,
``m`` the output size and ``g`` the groups.  The unshared and tiled layers
do the same work per output as the convolution; they differ only in how
many weights are stored.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import shapes
from ._validation import as_tuple, check_int
from .errors import ArgumentError, ShapeError
from .typing import IntOrTuple, Padding

__all__ = ["LayerCost", "conv_costs", "layer_costs"]


@dataclass(frozen=True)
class LayerCost:
    """Parameters and floating-point operations of one layer without bias."""

    parameters: int
    flops: int


def conv_costs(input_size: Sequence[int], kernel_size: Sequence[int], *, in_channels: int = 1,
               out_channels: int = 1, stride: IntOrTuple = 1, padding: Padding = "valid",
               dilation: IntOrTuple = 1) -> dict[str, Any]:
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


def layer_costs(input_size: Sequence[int], kernel_size: Sequence[int], *, in_channels: int = 1,
                out_channels: int = 1, stride: IntOrTuple = 1, padding: Padding = "valid",
                dilation: IntOrTuple = 1, groups: int = 1,
                tile: IntOrTuple | None = None) -> dict[str, Any]:
    """Parameters and operations of the chapter's four ways to map an input to an output.

    Parameters
    ----------
    input_size, kernel_size : tuple of int
        Spatial sizes (1 or more axes).
    in_channels, out_channels, stride, padding, dilation, groups
        As for :func:`sigconv.functional.conv`.  ``groups`` applies to the
        convolution only (the unshared and tiled layers connect every input
        channel, as in the chapter's formulas).
    tile : int or tuple of int, optional
        Kernels per axis of the tiled convolution; default 1 (a tiled
        convolution with one kernel is a convolution).

    Returns
    -------
    dict
        ``{"dense", "conv", "unshared", "tiled": LayerCost, "output_size": tuple}``.

    Examples
    --------
    The 1-D layer of the chapter's figures 9.2 and 9.3, five inputs, kernel
    width three, "same" padding:

    >>> c = layer_costs((5,), (3,), padding="same")
    >>> c["dense"].parameters, c["conv"].parameters, c["unshared"].parameters
    (25, 3, 15)
    """
    input_size, kernel_size = tuple(input_size), tuple(kernel_size)
    n = len(input_size)
    if n == 0 or len(kernel_size) != n:
        raise ArgumentError(
            f"kernel_size must have one entry per axis of input_size: got input_size "
            f"{input_size} and kernel_size {kernel_size}")
    in_channels = check_int(in_channels, "in_channels")
    out_channels = check_int(out_channels, "out_channels")
    groups = check_int(groups, "groups")
    if in_channels % groups or out_channels % groups:
        raise ArgumentError(f"groups={groups} must divide in_channels={in_channels} and "
                            f"out_channels={out_channels}")
    kernel_size = as_tuple(kernel_size, n, "kernel_size", minimum=1)
    tile = as_tuple(1 if tile is None else tile, n, "tile", minimum=1)
    base = conv_costs(input_size, kernel_size, in_channels=in_channels,
                      out_channels=out_channels, stride=stride, padding=padding,
                      dilation=dilation)
    out = base["output_size"]
    if any(m < 1 for m in out):
        raise ShapeError(f"kernel {kernel_size} is larger than the padded input {input_size} "
                         f"(output size {out})")
    positions = int(np.prod(out))
    taps = int(np.prod(kernel_size))
    n_out = positions * out_channels
    grouped = (in_channels // groups) * taps
    full = in_channels * taps
    per_output = base["conv"].flops  # the ungrouped convolution's n_out * (2 * full - 1)
    return {
        "dense": base["dense"],
        "conv": LayerCost(parameters=out_channels * grouped, flops=n_out * (2 * grouped - 1)),
        "unshared": LayerCost(parameters=out_channels * positions * full, flops=per_output),
        "tiled": LayerCost(parameters=out_channels * full * int(np.prod(tile)),
                           flops=per_output),
        "output_size": out,
    }
