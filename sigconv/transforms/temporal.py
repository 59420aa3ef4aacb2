"""Transforms of the time axis: shift, monotone warp, crop, speed perturbation."""
from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from .._validation import check_choice, check_int
from ..errors import ArgumentError
from ..io.signal import resample_waveform
from ._core import (Transform, as_dtype, check_range, check_real, target_count, uniform,
                    work_dtype)
from ..io.signal import Signal

__all__ = ["TimeShift", "TimeWarp", "TemporalCrop", "Speed", "rotation_channels"]


def rotation_channels(signal: Signal) -> NDArray[np.bool_]:
    """Boolean mask of the channels of a skeleton holding Euler angles (names ``*rotation``)."""
    mask = np.zeros(signal.data.shape[0], dtype=bool)
    names = signal.channel_names or ()
    for i, name in enumerate(list(names)[:signal.data.shape[0]]):
        mask[i] = str(name).lower().endswith("rotation")
    return mask


def _period(signal: Signal) -> float:
    """360 (degrees) or 2 pi (radians) for skeleton angles."""
    return 2 * math.pi if signal.meta.get("angle_unit") == "radians" else 360.0


class TimeShift(Transform):
    """Shift the time axis by a random whole number of samples (frames, columns).

    The shift is uniform in ``[-m, m]`` with ``m = floor(max_shift * T)``,
    ``T`` the item's length.  ``mode`` says what enters at the edge:

    - ``"zero"`` (default): zeros (silence of a waveform); targets get 0;
    - ``"min"``: each input channel's minimum (silence of a power or log
      spectrogram); targets get 0;
    - ``"edge"``: the first/last value repeated (skeletons: the pose holds);
    - ``"circular"``: what leaves at one end enters at the other.

    Geometric: target channels shift with the input.  Length, rates and
    ``start_time`` are kept.
    """

    kinds = ("waveform", "spectrogram", "skeleton")
    params = ("max_shift", "mode", "p")
    MODES = ("zero", "min", "edge", "circular")

    def __init__(self, max_shift: float = 0.1,
                 mode: Literal["zero", "min", "edge", "circular"] = "zero",
                 p: float = 1.0) -> None:
        super().__init__(p)
        self.max_shift = check_real(max_shift, "TimeShift max_shift", minimum=0.0, maximum=1.0)
        self.mode = check_choice(mode, "TimeShift mode", self.MODES)

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        axis = signal.axis("time")
        n = signal.data.shape[axis]
        m = int(math.floor(self.max_shift * n))
        shift = int(rng.integers(-m, m + 1)) if m else 0
        if shift == 0:
            return signal
        data = signal.data
        out = np.roll(data, shift, axis=axis)
        if self.mode == "circular":
            return signal.replace(out)
        c = data.shape[0] - target_count(signal)
        index = [slice(None)] * data.ndim
        index[axis] = slice(0, shift) if shift > 0 else slice(n + shift, n)
        vacated = tuple(index)
        if self.mode == "edge":
            edge = [slice(None)] * data.ndim
            edge[axis] = slice(0, 1) if shift > 0 else slice(n - 1, n)
            out[vacated] = data[tuple(edge)]
        else:
            out[vacated] = 0
            if self.mode == "min":
                spatial = tuple(range(1, data.ndim))
                low = data[:c].min(axis=spatial, keepdims=True)
                region = (slice(0, c),) + vacated[1:]
                out[region] = np.broadcast_to(low, out[region].shape)
        return signal.replace(out)


def warp_positions(n: int, rng: np.random.Generator, max_warp: float,
                   knots: int) -> NDArray[np.float64]:
    """Source positions (float, increasing from 0 to n-1) of a smooth random monotone warp.

    ``knots`` evenly spaced points move by up to ``max_warp * (n - 1)``; the
    map from output to source position goes through them (monotone cubic,
    scipy's PCHIP) and keeps both ends.
    """
    from scipy.interpolate import PchipInterpolator

    centres = (np.arange(1, knots + 1) * (n - 1) / (knots + 1)).astype(np.float64)
    moves = rng.uniform(-max_warp, max_warp, size=knots) * (n - 1)
    x = np.concatenate([[0.0], centres + moves, [n - 1.0]])
    y = np.concatenate([[0.0], centres, [n - 1.0]])
    positions = np.clip(PchipInterpolator(x, y)(np.arange(n, dtype=np.float64)), 0.0, n - 1.0)
    positions[0], positions[-1] = 0.0, n - 1.0
    return positions


def sample_along(data: NDArray[Any], axis: int, positions: NDArray[Any], order: int,
                 period: float = 360.0,
                 periodic: NDArray[np.bool_] | None = None) -> NDArray[Any]:
    """``data`` sampled at fractional ``positions`` along ``axis`` (order 1 linear, 0 nearest).

    Channels flagged in ``periodic`` (a boolean mask over axis 0) are angles
    of ``period`` (360 degrees unless given): they are interpolated along the
    shorter arc.
    """
    n = data.shape[axis]
    if order == 0:
        return np.take(data, np.clip(np.rint(positions).astype(np.int64), 0, n - 1), axis=axis)
    low = np.clip(np.floor(positions).astype(np.int64), 0, n - 1)
    high = np.minimum(low + 1, n - 1)
    shape = [1] * data.ndim
    shape[axis] = len(positions)
    frac = (positions - low).reshape(shape).astype(data.dtype)
    a = np.take(data, low, axis=axis)
    b = np.take(data, high, axis=axis)
    delta = b - a
    if periodic is not None and periodic.any():
        delta[periodic] = (delta[periodic] + period / 2) % period - period / 2
    return a + frac * delta


class TimeWarp(Transform):
    """Smooth random monotone resampling of the time axis (length and rates kept).

    ``knots`` evenly spaced instants each move by up to ``max_warp`` of the
    length (uniform); the output samples the input along the monotone cubic
    through them (both ends fixed), linearly between samples.  With one
    knot this is SpecAugment's time warp (Park et al. 2019) made smooth.
    Skeleton angles (channels named ``*rotation``) are interpolated along
    the shorter arc, so 179 and -179 degrees blend through 180, not 0.
    Geometric: target channels are warped with the same map, nearest sample.
    ``max_warp`` must stay below ``0.5 / (knots + 1)`` so the knots keep their order.
    """

    kinds = ("spectrogram", "skeleton")
    params = ("max_warp", "knots", "p")

    def __init__(self, max_warp: float = 0.1, knots: int = 1, p: float = 1.0) -> None:
        super().__init__(p)
        self.knots = check_int(knots, "TimeWarp knots", maximum=64)
        limit = 0.5 / (self.knots + 1)
        self.max_warp = check_real(max_warp, "TimeWarp max_warp", minimum=0.0)
        if self.max_warp >= limit:
            raise ArgumentError(f"TimeWarp max_warp must be < 0.5 / (knots + 1) = {limit:g} so "
                                f"the warp stays monotone, got {max_warp!r}")

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        axis = signal.axis("time")
        n = signal.data.shape[axis]
        if self.max_warp == 0 or n < 3:
            return signal
        positions = warp_positions(n, rng, self.max_warp, self.knots)
        data = signal.data
        c = data.shape[0] - target_count(signal)
        inputs = data[:c].astype(work_dtype(data.dtype))
        periodic = rotation_channels(signal)[:c] if signal.kind == "skeleton" else None
        out = np.empty_like(data)
        out[:c] = as_dtype(sample_along(inputs, axis, positions, 1, _period(signal), periodic),
                           data.dtype)
        out[c:] = sample_along(data[c:], axis, positions, 0)
        return signal.replace(out)


class TemporalCrop(Transform):
    """Keep a random stretch of ``fraction`` of the time axis (uniform in the range).

    The length changes (``round(fraction * T)``, at least 1); ``start_time``
    moves with the crop, rates are kept.  Target channels are cropped alike.
    """

    kinds = ("video", "skeleton", "waveform", "spectrogram")
    params = ("fraction", "p")

    def __init__(self, fraction: tuple[float, float] = (0.8, 1.0), p: float = 1.0) -> None:
        super().__init__(p)
        self.fraction = check_range(fraction, "TemporalCrop fraction", minimum=0.0, maximum=1.0,
                                    open_minimum=True)

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        n = signal.data.shape[signal.axis("time")]
        length = max(1, min(n, int(round(uniform(rng, self.fraction) * n))))
        start = int(rng.integers(0, n - length + 1))
        if length == n:
            return signal
        return signal.crop(time=(start, start + length))


class Speed(Transform):
    """Speed perturbation: play the waveform ``factor`` times faster (pitch moves with it).

    ``factor`` is uniform in ``factors``; the waveform is resampled with soxr
    (:func:`sigconv.io.signal.resample_waveform`, band-limited) from
    ``sample_rate`` to ``sample_rate / factor`` and labelled with the old
    rate, as Kaldi's and torchaudio's speed perturbation do: the length
    becomes about ``T / factor``, ``sample_rate`` is kept.  Target channels
    (per-sample labels) are resampled by nearest sample to the new length.
    """

    kinds = ("waveform",)
    params = ("factors", "quality", "p")
    QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")

    def __init__(self, factors: tuple[float, float] = (0.9, 1.1),
                 quality: Literal["QQ", "LQ", "MQ", "HQ", "VHQ"] = "HQ", p: float = 1.0) -> None:
        super().__init__(p)
        self.factors = check_range(factors, "Speed factors", minimum=0.0, open_minimum=True)
        if self.factors[1] > 4 or self.factors[0] < 0.25:
            raise ArgumentError(f"Speed factors must lie in [0.25, 4], got {factors!r}")
        self.quality = check_choice(quality, "Speed quality", self.QUALITIES)

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        factor = uniform(rng, self.factors)
        if factor == 1.0:
            return signal
        rate = float(signal.sample_rate or 8000.0)  # only the ratio matters
        data = signal.data
        c = data.shape[0] - target_count(signal)
        inputs = np.ascontiguousarray(data[:c].astype(work_dtype(data.dtype)))
        fast = resample_waveform(inputs, rate, rate / factor, quality=self.quality)
        parts = [as_dtype(fast, data.dtype)]
        if c < data.shape[0]:
            n, m = data.shape[1], fast.shape[1]
            index = np.clip(np.rint((np.arange(m) + 0.5) * n / m - 0.5).astype(np.int64), 0, n - 1)
            parts.append(data[c:, index])
        return signal.replace(np.ascontiguousarray(np.concatenate(parts, axis=0)))
