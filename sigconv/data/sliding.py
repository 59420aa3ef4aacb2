"""Sliding-window inference for inputs too large for one pass (as MONAI's).

Windows overlap; each window's prediction is weighted by a Gaussian centred
on the window (trusting centres more than edges) and the weighted predictions
are averaged.  Positions closer than ``margin`` to a window edge that lies
inside the input get weight zero, so that a model whose receptive field
reaches at most ``margin`` samples from its centre gives exactly the output it
gives on the whole input: every position is then predicted only from windows
that contain its whole receptive field.  Memory is bounded by the window: the
input is read one window at a time, and only the output and its weight sum
have the input's size.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import as_tuple, check_spatial_nonempty
from ..functional.pooling import gaussian_pool_weights
from ..errors import ArgumentError, ShapeError

__all__ = ["sliding_window_inference", "window_starts"]


def window_starts(size: int, window: int, step: int) -> list[int]:
    """Start of each window along one axis: every ``step``, the last one flush with the end."""
    if window >= size:
        return [0]
    starts = list(range(0, size - window, step))
    return starts + [size - window]


def sliding_window_inference(inputs: ArrayLike, predict: Callable[[NDArray[Any]], ArrayLike],
                             window: int | Sequence[int], *, overlap: float = 0.25,
                             margin: int | Sequence[int] | None = None, batch_size: int = 1,
                             sigma_scale: float = 0.125) -> NDArray[Any]:
    """Apply ``predict`` to overlapping windows of ``inputs`` and blend the results.

    Parameters
    ----------
    inputs : ndarray, shape (N, C, *spatial)
        1 to 3 spatial axes; each item is processed on its own.
    predict : callable
        Maps a batch ``(B, C, *window)`` to ``(B, C_out, *window)`` (same
        spatial size), e.g. a model in eval mode.
    window : int or tuple of int
        Window size per spatial axis (clipped to the input's size).
    overlap : float in [0, 1)
        Fraction of the window shared by neighbouring windows.
    margin : int or tuple of int, optional
        Samples at inner window edges given zero weight; default half the
        overlap.  With the model's receptive-field radius at most ``margin``
        the result equals ``predict`` on the whole input.  Needs
        ``2 * margin <= window - step``.
    batch_size : int
        Windows per call of ``predict``.
    sigma_scale : float
        Standard deviation of the Gaussian weights, as a fraction of the window.

    Returns
    -------
    ndarray, shape (N, C_out, *spatial)
    """
    inputs = np.asarray(inputs)
    if not 3 <= inputs.ndim <= 5:
        raise ShapeError(f"inputs must have shape (N, C, *spatial) with 1 to 3 spatial axes, "
                         f"got shape {inputs.shape}")
    if inputs.shape[0] == 0:  # no item: predict would never be called to give C_out
        raise ShapeError(f"inputs holds no item: shape {inputs.shape}")
    check_spatial_nonempty(inputs.shape, "inputs")
    spatial = inputs.shape[2:]
    nd = len(spatial)
    window = tuple(min(w, n) for w, n in zip(as_tuple(window, nd, "window", minimum=1), spatial))
    if not 0 <= overlap < 1:
        raise ArgumentError(f"overlap must be in [0, 1), got {overlap!r}")
    step = tuple(max(int(w * (1 - overlap)), 1) for w in window)
    margin = (tuple((w - s) // 2 for w, s in zip(window, step)) if margin is None
              else as_tuple(margin, nd, "margin", minimum=0))
    for axis, (w, s, m, n) in enumerate(zip(window, step, margin, spatial)):
        if w < n and 2 * m > w - s:
            raise ArgumentError(
                f"margin {m} on axis {axis} leaves gaps: windows of {w} every {s} samples "
                f"share {w - s}, which must be at least 2 * margin")
    starts = [window_starts(n, w, s) for n, w, s in zip(spatial, window, step)]
    corners = [tuple(c) for c in np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, nd)]
    base = gaussian_pool_weights(window, [max(sigma_scale * n, 1e-3) for n in window])

    def weights_at(corner: Sequence[int]) -> NDArray[np.float64]:
        w = base.copy()
        for axis, (c, m, n, size) in enumerate(zip(corner, margin, window, spatial)):
            index = [slice(None)] * nd
            if c > 0 and m:            # inner edge before the window
                index[axis] = slice(0, m)
                w[tuple(index)] = 0
            if c + n < size and m:     # inner edge after the window
                index[axis] = slice(n - m, n)
                w[tuple(index)] = 0
        return w

    out: Any = None  # allocated from the first prediction (its channels and dtype)
    total: Any = None
    for item in range(inputs.shape[0]):
        for first in range(0, len(corners), batch_size):
            chunk = corners[first:first + batch_size]
            regions = [tuple(slice(c, c + w) for c, w in zip(corner, window)) for corner in chunk]
            batch = np.stack([inputs[(item, slice(None)) + r] for r in regions])
            result = np.asarray(predict(batch))
            if result.ndim != batch.ndim or result.shape[0] != len(chunk) or \
                    result.shape[2:] != window:
                raise ShapeError(f"predict must map {batch.shape} to (B, C_out, *{window}), "
                                 f"got {result.shape}")
            if out is None:
                out = np.zeros((inputs.shape[0], result.shape[1]) + spatial, dtype=result.dtype)
                total = np.zeros(spatial, dtype=np.float64)
            for corner, region, prediction in zip(chunk, regions, result):
                w = weights_at(corner)
                out[(item, slice(None)) + region] += (w * prediction).astype(out.dtype)
                if item == 0:
                    total[region] += w
    return out / np.maximum(total, math.ulp(1.0)).astype(out.dtype)
