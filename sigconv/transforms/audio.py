"""Intensity transforms of waveforms and spectrograms: gain, noise, background, SpecAugment.

Why not ``audiomentations``: its transforms draw from Python's global
``random`` module (``random.random() < p``, ``random.uniform``) and keep the
drawn parameters on the transform object, so they cannot be fed one
``numpy.random.Generator`` per ``(seed, epoch, item)`` (the rule that makes
``--resume`` bit-identical) and are not safe to share between workers;
they also know nothing of target channels or of sigconv's metadata.  The
few transforms wanted here are a handful of numpy lines each, and speed
perturbation uses soxr, already a dependency.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_choice, check_int
from ..errors import ArgumentError
from ..io.signal import Signal, resample_waveform
from ._core import Transform, check_range, check_real, on_inputs, uniform

__all__ = ["Gain", "AddNoise", "BackgroundMix", "SpecAugment"]


class Gain(Transform):
    """Multiply the input channels by ``10 ** (g / 20)``, ``g`` uniform in ``db`` (dB).

    ``db`` is a ``(low, high)`` pair or one number ``x`` for ``(-x, x)``.
    Targets are untouched.
    """

    kinds = ("waveform",)
    params = ("db", "p")

    def __init__(self, db: float | tuple[float, float] = (-6.0, 6.0), p: float = 1.0) -> None:
        super().__init__(p)
        self.db = check_range(db, "Gain db", minimum=-120.0, maximum=120.0, symmetric=True)

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        g = uniform(rng, self.db)
        if g == 0.0:
            return signal
        factor = 10.0 ** (g / 20.0)
        return on_inputs(signal, lambda x: x * x.dtype.type(factor))


def _power(x: NDArray[Any]) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


class AddNoise(Transform):
    """Add white Gaussian noise at a signal-to-noise ratio uniform in ``snr_db`` (dB).

    The noise power is the input channels' mean power divided by
    ``10 ** (snr / 10)``; a silent input gets no noise.  Targets are untouched.
    """

    kinds = ("waveform",)
    params = ("snr_db", "p")

    def __init__(self, snr_db: tuple[float, float] = (10.0, 40.0), p: float = 1.0) -> None:
        super().__init__(p)
        self.snr_db = check_range(snr_db, "AddNoise snr_db", minimum=-60.0, maximum=200.0)

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        snr = uniform(rng, self.snr_db)

        def noisy(x: NDArray[Any]) -> NDArray[Any]:
            std = math.sqrt(_power(x) / 10.0 ** (snr / 10.0))
            if std == 0.0:
                return x
            return x + (std * rng.standard_normal(x.shape)).astype(x.dtype)

        return on_inputs(signal, noisy)


class BackgroundMix(Transform):
    """Mix in a random stretch of one of ``clips`` at an SNR uniform in ``snr_db`` (dB).

    ``clips`` are waveforms given at construction: Signals (resampled with
    soxr to each item's ``sample_rate`` when theirs differs, once per rate)
    or arrays ``(T,)`` / ``(C, T)`` taken to be at the item's rate.  A clip
    shorter than the item is repeated; a mono clip is added to every
    channel, a clip with the item's channel count channel by channel, any
    other is averaged to mono.  A silent clip adds nothing.  Targets are untouched.
    """

    kinds = ("waveform",)
    params = ("clips", "snr_db", "p")

    def __init__(self, clips: Iterable[Signal | ArrayLike], snr_db: tuple[float, float] = (5.0, 20.0),
                 p: float = 1.0) -> None:
        super().__init__(p)
        self.snr_db = check_range(snr_db, "BackgroundMix snr_db", minimum=-60.0, maximum=200.0)
        try:
            clips = list(clips)
        except TypeError:
            raise ArgumentError(f"BackgroundMix clips must be a list of waveforms, got {clips!r}") \
                from None
        if not clips:
            raise ArgumentError("BackgroundMix needs at least one clip")
        self._clips: list[np.ndarray] = []
        self._rates: list[float | None] = []
        for i, clip in enumerate(clips):
            rate = None
            if isinstance(clip, Signal):
                if clip.kind != "waveform":
                    raise ArgumentError(f"BackgroundMix clip {i} is a {clip.kind!r} signal, "
                                        "not a waveform")
                rate = clip.sample_rate
                clip = clip.data
            array = np.asarray(clip, dtype=np.float64)
            if array.ndim == 1:
                array = array[None]
            if array.ndim != 2 or array.shape[1] == 0 or not np.isfinite(array).all():
                raise ArgumentError(f"BackgroundMix clip {i} must be a finite (T,) or (C, T) "
                                    f"waveform, got shape {array.shape}")
            self._clips.append(array)
            self._rates.append(rate)
        self._cache: dict[tuple[int, float], np.ndarray] = {}  # (clip, rate) -> resampled

    @property
    def clips(self) -> str:
        n = len(self._clips)
        return f"<{n} clip{'' if n == 1 else 's'}>"

    def _clip(self, index: int, rate: float | None) -> np.ndarray:
        clip, own = self._clips[index], self._rates[index]
        if own is None or rate is None or own == rate:
            return clip
        key = (index, float(rate))
        if key not in self._cache:
            self._cache[key] = resample_waveform(clip, own, rate)
        return self._cache[key]

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        index = int(rng.integers(len(self._clips)))
        snr = uniform(rng, self.snr_db)
        clip = self._clip(index, signal.sample_rate)
        n = signal.data.shape[1]
        start = int(rng.integers(clip.shape[1]))
        reps = -(-(start + n) // clip.shape[1])
        piece = np.tile(clip, (1, reps))[:, start:start + n]

        def mixed(x: NDArray[Any]) -> NDArray[Any]:
            noise = piece
            if noise.shape[0] not in (1, x.shape[0]):
                noise = noise.mean(axis=0, keepdims=True)
            p_signal, p_noise = _power(x), _power(noise)
            if p_noise == 0.0:
                return x
            scale = math.sqrt(p_signal / (p_noise * 10.0 ** (snr / 10.0)))
            return x + (scale * noise).astype(x.dtype)

        return on_inputs(signal, mixed)


class SpecAugment(Transform):
    """Frequency and time masking of a spectrogram (Park et al. 2019, SpecAugment).

    ``freq_masks`` bands of ``f`` rows each, ``f`` uniform in
    ``0..floor(freq_width * F)`` and the first row uniform in ``0..F - f``;
    then ``time_masks`` stretches of columns, width up to
    ``floor(time_width * T)``.  Widths are fractions of the axis so that one
    setting fits items of any length (Park's ``F = 27`` of 80 mel bands is
    0.34; his time-mask bound ``p`` is ``time_width``).  Masked cells take
    ``fill``: ``"min"`` (default: each channel's minimum, the silence of a
    power or log spectrogram), ``"mean"`` (each channel's mean: Park's zero
    after mean normalisation) or ``"zero"``.  All input channels share the
    masks; targets are untouched.  Time warping is :class:`TimeWarp`.
    """

    kinds = ("spectrogram",)
    params = ("freq_masks", "freq_width", "time_masks", "time_width", "fill", "p")
    FILLS = ("min", "mean", "zero")

    def __init__(self, freq_masks: int = 2, freq_width: float = 0.15, time_masks: int = 2,
                 time_width: float = 0.1, fill: Literal["min", "mean", "zero"] = "min",
                 p: float = 1.0) -> None:
        super().__init__(p)
        self.freq_masks = check_int(freq_masks, "SpecAugment freq_masks", minimum=0, maximum=100)
        self.time_masks = check_int(time_masks, "SpecAugment time_masks", minimum=0, maximum=100)
        self.freq_width = check_real(freq_width, "SpecAugment freq_width", minimum=0.0, maximum=1.0)
        self.time_width = check_real(time_width, "SpecAugment time_width", minimum=0.0, maximum=1.0)
        self.fill = check_choice(fill, "SpecAugment fill", self.FILLS)

    @staticmethod
    def _bands(rng: np.random.Generator, count: int, width: float, n: int) -> list[tuple[int, int]]:
        bands = []
        limit = int(math.floor(width * n))
        for _ in range(count):
            w = int(rng.integers(0, limit + 1))
            start = int(rng.integers(0, n - w + 1))
            bands.append((start, start + w))
        return bands

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        if self.freq_masks == 0 and self.time_masks == 0:
            return signal
        _, n_freq, n_time = signal.data.shape
        rows = self._bands(rng, self.freq_masks, self.freq_width, n_freq)
        cols = self._bands(rng, self.time_masks, self.time_width, n_time)
        if not any(hi > lo for lo, hi in rows + cols):
            return signal

        def masked(x: NDArray[Any]) -> NDArray[Any]:
            if self.fill == "zero":
                value = np.zeros((x.shape[0], 1, 1), x.dtype)
            elif self.fill == "min":
                value = x.min(axis=(1, 2), keepdims=True)
            else:
                value = x.mean(axis=(1, 2), keepdims=True, dtype=np.float64).astype(x.dtype)
            for lo, hi in rows:
                x[:, lo:hi, :] = value
            for lo, hi in cols:
                x[:, :, lo:hi] = value
            return x

        return on_inputs(signal, masked)
