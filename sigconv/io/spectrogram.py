"""Spectrograms of waveforms, computed by librosa (an optional extra: ``sigconv[audio]``)."""
from __future__ import annotations
from typing import Any, Literal


import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ..errors import ArgumentError
from .._validation import check_choice, check_int, check_positive_real
from ._common import MAX_BYTES, require
from .audio import load_audio
from .signal import Signal
from ..typing import PathLike

__all__ = ["spectrogram", "load_spectrogram", "SPECTROGRAM_KINDS"]

SPECTROGRAM_KINDS = ("power", "magnitude", "mel", "log-mel", "mfcc")


def spectrogram(signal: Signal | ArrayLike, *, n_fft: int = 512, hop_length: int | None = None,
                win_length: int | None = None, window: str = "hann", center: bool = True,
                kind: Literal["power", "magnitude", "mel", "log-mel", "mfcc"] = "power",
                n_mels: int = 64, n_mfcc: int = 20, fmin: float = 0.0, fmax: float | None = None,
                top_db: float | None = 80.0, sample_rate: float | None = None,
                dtype: DTypeLike = np.float32) -> Signal:
    """Time-frequency image of a waveform.

    Parameters
    ----------
    signal : Signal (waveform) or ndarray, shape (C, T) or (T,)
        An array needs ``sample_rate``.
    n_fft : int
        Frame (FFT) length in samples.
    hop_length : int, optional
        Samples between columns; default ``n_fft // 4``.
    kind : {"power", "magnitude", "mel", "log-mel", "mfcc"}
        |STFT|**2, |STFT|, mel-filtered power, mel power in dB (reference:
        each channel's maximum; floored ``top_db`` below it), or ``n_mfcc`` MFCCs.
    n_mels, fmin, fmax : mel filter bank (``mel``, ``log-mel``, ``mfcc``).
    center : bool
        Frames are centred on ``t * hop_length`` (librosa's default): column
        ``t`` is at ``t * hop_length / sample_rate`` seconds (see
        :meth:`Signal.times`).

    Returns
    -------
    Signal
        ``data`` shape (C, F, T'), kind "spectrogram", axes ("channel",
        "freq", "time"); ``frequencies`` (Hz of each row; ``None`` for MFCC,
        whose rows are cepstral coefficients), ``sample_rate``, ``n_fft``,
        ``hop_length``.
    """
    librosa = require("librosa", "audio", "sigconv.io.spectrogram")
    check_choice(kind, "kind", SPECTROGRAM_KINDS)
    if isinstance(signal, Signal):
        if signal.kind != "waveform":
            raise ArgumentError(f"spectrogram needs a waveform signal, got a {signal.kind}")
        y = signal.data
        sample_rate = signal.sample_rate if sample_rate is None else sample_rate
        path, start_time = signal.path, signal.start_time
    else:
        y = np.asarray(signal)
        if y.ndim == 1:
            y = y[None]
        if y.ndim != 2:
            raise ArgumentError(f"spectrogram needs a (C, T) or (T,) array, got shape {y.shape}")
        path, start_time = None, None
    sr = check_positive_real(sample_rate, "sample_rate", " (Hz)")
    n_fft, n_mels, n_mfcc = (check_int(n_fft, "n_fft"), check_int(n_mels, "n_mels"),
                             check_int(n_mfcc, "n_mfcc"))
    hop_length = check_int(n_fft // 4 if hop_length is None else hop_length, "hop_length")
    y = np.ascontiguousarray(y, dtype=np.float32 if y.dtype != np.float64 else np.float64)
    if y.shape[-1] < (n_fft if not center else 1):
        raise ArgumentError(f"the waveform has {y.shape[-1]} samples, fewer than n_fft={n_fft}")
    stft = dict(n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window,
                center=center)
    if kind in ("power", "magnitude"):
        mag = np.abs(librosa.stft(y, **stft))
        data = mag ** 2 if kind == "power" else mag
        frequencies = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    else:
        mel = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=n_mels, fmin=fmin, fmax=fmax,
                                             power=2.0, **stft)
        frequencies = librosa.mel_frequencies(n_mels=n_mels, fmin=fmin,
                                              fmax=sr / 2 if fmax is None else fmax)
        if kind == "mel":
            data = mel
        else:
            # dB below each channel's own peak: channels stay independent of each other
            data = np.stack([librosa.power_to_db(m, ref=np.max, top_db=top_db) for m in mel])
            if kind == "mfcc":
                data = librosa.feature.mfcc(S=data, n_mfcc=n_mfcc)
                frequencies = None
    return Signal(np.ascontiguousarray(data, dtype=dtype), "spectrogram", sample_rate=sr,
                  n_fft=int(n_fft), hop_length=int(hop_length), frequencies=frequencies,
                  start_time=start_time, path=path, spectrogram_kind=kind, center=center)


def load_spectrogram(path: PathLike, *, sample_rate: float | None = None, mono: bool = True,
                     offset: float = 0.0, duration: float | None = None,
                     max_bytes: float | None = MAX_BYTES, **options: Any) -> Signal:
    """:func:`load_audio` then :func:`spectrogram` (``options`` go to the latter)."""
    wave = load_audio(path, sample_rate=sample_rate, mono=mono, offset=offset, duration=duration,
                      max_bytes=max_bytes)
    return spectrogram(wave, **options)
