"""`Signal`: a ``(C, *spatial)`` array with named axes and the metadata of its kind.

Every loader in :mod:`sigconv.io` returns one.  The helpers (dtype conversion,
per-channel standardisation, intensity windowing, resampling/resizing along
named axes, crop, pad) return new signals whose metadata follow the data:
cropping a volume moves its affine's origin, resizing a time axis changes the
sample or frame rate, resizing a spectrogram's time axis changes its hop.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ..errors import ArgumentError, DTypeError, ShapeError
from .._validation import check_choice, check_int, check_positive_real
from .formats import AXES, KINDS
from ..typing import PadMode, SignalKind

__all__ = ["Signal", "KINDS", "AXES", "HU_WINDOWS", "resample_waveform"]

#: Common CT windows as (level, width) in Hounsfield units.
HU_WINDOWS = {
    "abdomen": (40.0, 400.0),
    "soft-tissue": (50.0, 350.0),
    "mediastinum": (50.0, 350.0),
    "liver": (60.0, 160.0),
    "brain": (40.0, 80.0),
    "stroke": (40.0, 40.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "angio": (300.0, 600.0),
}

#: Metadata fields shown as attributes (None when a kind has no such field).
FIELDS = (
    "sample_rate",      # waveform, spectrogram: samples per second of the waveform
    "frame_rate",       # skeleton, video: frames per second
    "spacing",          # volume: voxel size per spatial axis (mm); image: pixel size if known
    "affine",           # volume: 4x4 map from (depth, height, width) index to RAS+ mm
    "channel_names",    # skeleton ("Hips.Zrotation", ...), image ("R", "G", "B"), ...
    "joints",           # skeleton: tuple of Joint(name, parent, offset, channels, end_site)
    "hop_length",       # spectrogram: samples between columns
    "n_fft",            # spectrogram: frame (FFT) length in samples
    "frequencies",      # spectrogram: centre frequency (Hz) of each row
    "start_time",       # time axes: seconds of the first sample/frame/column in the source
    "path",             # the file the signal came from
)


def resample_waveform(data: NDArray[Any], rate: float, new_rate: float, *,
                      quality: str = "HQ") -> NDArray[Any]:
    """Resample ``data`` (C, T) from ``rate`` to ``new_rate`` with soxr; returns (C, T')."""
    import soxr

    if rate == new_rate:
        return data
    dtype = data.dtype if data.dtype in (np.float32, np.float64) else np.float32
    out = soxr.resample(np.ascontiguousarray(data.T, dtype=dtype), rate, new_rate, quality=quality)
    return np.ascontiguousarray(out.T.reshape(data.shape[0], -1))


class Signal:
    """An array ``data`` of shape ``(C, *spatial)`` with named axes and metadata.

    Parameters
    ----------
    data : ndarray, shape (C, *spatial)
    kind : str
        One of :data:`KINDS`.
    axes : tuple of str, optional
        Axis names; default :data:`AXES` ``[kind]``.
    **metadata
        Any of :data:`FIELDS` (read back as attributes) and free extra
        entries (kept in ``signal.meta``).
    """

    # the metadata of FIELDS, set from ``**metadata`` (None when a kind has no such field)
    sample_rate: float | None
    frame_rate: float | None
    spacing: tuple[float, ...] | None
    affine: NDArray[np.float64] | None
    channel_names: tuple[str, ...] | None
    joints: tuple[Any, ...] | None
    hop_length: int | None
    n_fft: int | None
    frequencies: NDArray[np.float64] | None
    start_time: float | None
    path: str | None

    def __init__(self, data: ArrayLike, kind: SignalKind, axes: Sequence[str] | None = None,
                 **metadata: Any) -> None:
        check_choice(kind, "kind", KINDS)
        data = np.asarray(data)
        axes = tuple(AXES[kind] if axes is None else axes)
        if data.ndim != len(axes):
            raise ShapeError(f"a {kind} signal with axes {axes} needs a {len(axes)}-d array, "
                             f"got shape {data.shape}")
        if axes[0] != "channel":
            raise ArgumentError(f"the first axis must be 'channel', got axes {axes}")
        self.data = data
        self.kind = kind
        self.axes = axes
        self.meta: dict[str, Any] = {}
        for name in FIELDS:
            setattr(self, name, metadata.pop(name, None))
        self.meta.update(metadata)

    # -- basic properties -------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data``: ``(C, *spatial)``."""
        return self.data.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """dtype of ``data``."""
        return self.data.dtype

    @property
    def channels(self) -> int:
        """Number of channels, ``data.shape[0]``."""
        return int(self.data.shape[0])

    def __array__(self, dtype: DTypeLike | None = None, copy: bool | None = None) -> NDArray[Any]:
        if dtype is None:
            return self.data
        return self.data.astype(dtype)

    def axis(self, name: str) -> int:
        """Index of the axis called ``name`` (raises ArgumentError listing the axes)."""
        try:
            return self.axes.index(name)
        except ValueError:
            raise ArgumentError(f"this {self.kind} has axes {self.axes}; no axis {name!r}") from None

    def rate(self, name: str) -> float | None:
        """Samples per unit along axis ``name`` (per second for time, per mm for space), or None."""
        if name == "time":
            if self.kind == "spectrogram":
                if self.sample_rate and self.hop_length:
                    return self.sample_rate / self.hop_length
                return None
            return self.sample_rate if self.kind == "waveform" else self.frame_rate
        if self.spacing is not None and name in self.axes:
            return 1.0 / self.spacing[self.axes.index(name) - 1]
        return None

    @property
    def duration(self) -> float | None:
        """Seconds covered by the time axis, or None."""
        if "time" not in self.axes:
            return None
        rate = self.rate("time")
        return None if not rate else self.data.shape[self.axis("time")] / rate

    def times(self) -> NDArray[np.float64]:
        """Seconds of each index along the time axis (spectrogram columns are frame centres)."""
        n = self.data.shape[self.axis("time")]
        rate = self.rate("time")
        if not rate:
            raise ArgumentError(f"this {self.kind} has no rate on its time axis")
        return (self.start_time or 0.0) + np.arange(n) / rate

    def metadata(self) -> dict[str, Any]:
        """Every metadata entry that is set, as a dict (fields first, then ``meta``)."""
        out = {name: getattr(self, name) for name in FIELDS if getattr(self, name) is not None}
        out.update(self.meta)
        return out

    def __repr__(self) -> str:
        parts = [f"kind={self.kind!r}", f"shape={self.data.shape}", f"dtype={self.data.dtype}",
                 f"axes={self.axes}"]
        for name in ("sample_rate", "frame_rate"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value:g}")
        if self.duration is not None:
            parts.append(f"duration={self.duration:.3f}s")
        if self.spacing is not None:
            parts.append("spacing=(" + ", ".join(f"{s:.4g}" for s in self.spacing) + ")")
        if self.hop_length is not None:
            parts.append(f"n_fft={self.n_fft}, hop_length={self.hop_length}")
        if self.channel_names is not None and self.kind in ("skeleton",):
            names = list(self.channel_names)
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            parts.append(f"channel_names=[{shown}]")
        if self.joints is not None:
            parts.append(f"joints={len(self.joints)}")
        if self.path is not None:
            parts.append(f"path={str(self.path)!r}")
        return "Signal(" + ", ".join(parts) + ")"

    def replace(self, data: ArrayLike | None = None, **changes: Any) -> Signal:
        """A copy with ``data`` and/or metadata fields replaced (``meta`` entries merged)."""
        fields = {name: getattr(self, name) for name in FIELDS}
        meta = dict(self.meta)
        for key, value in changes.items():
            if key in FIELDS:
                fields[key] = value
            elif key != "axes":
                meta[key] = value
        return Signal(self.data if data is None else data, self.kind,
                      changes.get("axes", self.axes), **fields, **meta)

    # -- helpers ------------------------------------------------------------
    def astype(self, dtype: DTypeLike) -> Signal:
        """The signal with its data converted to ``dtype`` (a float or integer dtype)."""
        dtype = np.dtype(dtype)
        if dtype.kind not in "fiub":
            raise DTypeError(f"dtype must be a float, integer or bool dtype, got {dtype}")
        return self.replace(self.data.astype(dtype, copy=False))

    def standardize(self, *, eps: float = 1e-8) -> Signal:
        """Per-channel zero mean, unit standard deviation over all spatial axes.

        Channels with a standard deviation below ``eps`` are only centred.
        """
        data = self.data.astype(np.result_type(self.data.dtype, np.float32), copy=False)
        spatial = tuple(range(1, data.ndim))
        mean = data.mean(axis=spatial, keepdims=True)
        std = data.std(axis=spatial, keepdims=True)
        std = np.where(std < eps, 1.0, std).astype(data.dtype)
        return self.replace((data - mean) / std, standardized=True)

    def window(self, window: str | tuple[float, float] | None = None, *,
               level: float | None = None, width: float | None = None) -> Signal:
        """Intensity window mapped to [0, 1]: values below ``level - width/2`` become 0.

        ``window`` is a name from :data:`HU_WINDOWS` (CT in Hounsfield units,
        e.g. ``"lung"``, ``"bone"``, ``"brain"``) or a ``(level, width)`` pair;
        or pass ``level`` and ``width``.
        """
        if window is not None:
            if isinstance(window, str):
                check_choice(window, "window", tuple(HU_WINDOWS))
                level, width = HU_WINDOWS[window]
            else:
                try:
                    level, width = window
                except (TypeError, ValueError):
                    raise ArgumentError(f"window must be a name or a (level, width) pair, "
                                        f"got {window!r}") from None
        if level is None or width is None:
            raise ArgumentError("window needs a name, a (level, width) pair, or level= and width=")
        if not width > 0:
            raise ArgumentError(f"window width must be > 0, got {width!r}")
        dtype = np.result_type(self.data.dtype, np.float32)
        low = level - width / 2.0
        data = np.clip((self.data.astype(dtype, copy=False) - low) / width, 0.0, 1.0)
        return self.replace(data.astype(dtype, copy=False), window=(float(level), float(width)))

    def _sizes(self, sizes: dict[str, Any]) -> dict[int, int]:
        out = {}
        for name, value in sizes.items():
            index = self.axis(name)
            if index == 0:
                raise ArgumentError("the channel axis cannot be resized")
            out[index] = check_int(value, f"size of axis {name!r}")
        return out

    def resize(self, *, order: int = 1, **sizes: int) -> Signal:
        """Resize named axes to new lengths by spline interpolation (``order=1``: linear).

        ``signal.resize(height=224, width=224)``; ``signal.resize(time=100)``.
        Rates, spacing, affine, hop and frequencies are updated to match.
        Waveforms are better resampled with :meth:`resample`, which filters.
        """
        from scipy import ndimage

        new = self._sizes(sizes)
        if not new:
            return self
        shape = list(self.data.shape)
        zoom = [1.0] * self.data.ndim
        for index, size in new.items():
            zoom[index] = size / shape[index]
        data = self.data
        if data.dtype.kind not in "f":
            data = data.astype(np.float32)
        out = ndimage.zoom(data, zoom, order=order, mode="nearest", grid_mode=True)
        return self.replace(out, **self._rescaled_metadata(zoom))

    def _rescaled_metadata(self, zoom: Sequence[float]) -> dict[str, Any]:
        """Metadata after axis ``i`` was stretched by ``zoom[i]`` (output/input length)."""
        changes: dict[str, Any] = {}
        for index, factor in enumerate(zoom):
            if index == 0 or factor == 1.0:
                continue
            name = self.axes[index]
            if name == "time":
                if self.kind == "waveform" and self.sample_rate:
                    changes["sample_rate"] = self.sample_rate * factor
                elif self.kind == "spectrogram" and self.hop_length:
                    changes["hop_length"] = self.hop_length / factor
                elif self.frame_rate:
                    changes["frame_rate"] = self.frame_rate * factor
            elif name == "freq" and self.frequencies is not None:
                old = np.asarray(self.frequencies)
                n = int(round(len(old) * factor))
                changes["frequencies"] = np.interp(
                    (np.arange(n) + 0.5) / factor - 0.5, np.arange(len(old)), old)
        if self.spacing is not None:
            spacing = list(self.spacing)
            for index, factor in enumerate(zoom[1:]):
                spacing[index] = spacing[index] / factor
            changes["spacing"] = tuple(spacing)
            if self.affine is not None:
                affine = np.array(self.affine, dtype=float)
                scale = np.array(zoom[1:], dtype=float)
                # index i_new covers the same world point as (i_new + 0.5) / z - 0.5
                affine_new = affine.copy()
                affine_new[:3, :3] = affine[:3, :3] / scale
                affine_new[:3, 3] = affine[:3, :3] @ (0.5 / scale - 0.5) + affine[:3, 3]
                changes["affine"] = affine_new
        return changes

    def resample(self, rate: float | None = None, *, spacing: float | Sequence[float] | None = None,
                 order: int = 1, quality: str = "HQ") -> Signal:
        """Change the sampling of the time axis (``rate``) or of the spatial axes (``spacing``).

        Waveforms are resampled with soxr (band-limited, ``quality`` one of
        soxr's "QQ", "LQ", "MQ", "HQ", "VHQ"); other kinds are interpolated
        with :meth:`resize`.  ``spacing`` (volumes, mm) is one value or one
        per spatial axis.
        """
        if (rate is None) == (spacing is None):
            raise ArgumentError("resample needs exactly one of rate= or spacing=")
        if rate is not None:
            check_positive_real(rate, "rate")
            old = self.rate("time")
            if not old:
                raise ArgumentError(f"this {self.kind} has no rate on a time axis to resample")
            if self.kind == "waveform":
                data = resample_waveform(self.data, old, rate, quality=quality)
                return self.replace(data, sample_rate=rate)
            n = self.data.shape[self.axis("time")]
            return self.resize(order=order, time=max(1, int(round(n * rate / old))))
        if self.spacing is None:
            raise ArgumentError(f"this {self.kind} has no spacing to resample")
        n_spatial = self.data.ndim - 1
        if isinstance(spacing, numbers.Real):
            spacing = (float(spacing),) * n_spatial
        spacing = tuple(float(s) for s in spacing)  # type: ignore[union-attr]  # a sequence here
        if len(spacing) != n_spatial or not all(s > 0 for s in spacing):
            raise ArgumentError(f"spacing must be one positive number or {n_spatial}, got {spacing}")
        sizes = {}
        for index, (old, new) in enumerate(zip(self.spacing, spacing)):
            n = self.data.shape[index + 1]
            sizes[self.axes[index + 1]] = max(1, int(round(n * old / new)))
        return self.resize(order=order, **sizes)

    def _ranges(self, ranges: dict[str, Any], what: str) -> dict[int, tuple[Any, Any]]:
        out = {}
        for name, value in ranges.items():
            index = self.axis(name)
            if isinstance(value, (numbers.Integral, np.integer)):
                value = (value, value) if what == "pad" else (0, value)
            try:
                lo, hi = value
            except (TypeError, ValueError):
                raise ArgumentError(f"{what} of axis {name!r} must be an int or a pair, "
                                    f"got {value!r}") from None
            out[index] = (lo, hi)
        return out

    def crop(self, **ranges: int | tuple[int | None, int | None]) -> Signal:
        """Keep ``[start, stop)`` along named axes: ``signal.crop(time=(8000, 16000))``.

        ``None`` and negative bounds work as in slicing.  The affine origin and
        ``start_time`` follow the crop.
        """
        index = [slice(None)] * self.data.ndim
        starts = [0] * self.data.ndim
        for axis, (lo, hi) in self._ranges(ranges, "crop").items():
            start, stop, _ = slice(lo, hi).indices(self.data.shape[axis])
            if stop <= start:
                raise ArgumentError(f"crop of axis {self.axes[axis]!r} to ({lo}, {hi}) is empty "
                                    f"(length {self.data.shape[axis]})")
            index[axis] = slice(start, stop)
            starts[axis] = start
        changes: dict[str, Any] = {}
        if "time" in self.axes and starts[self.axis("time")]:
            rate = self.rate("time")
            if rate:
                changes["start_time"] = (self.start_time or 0.0) + starts[self.axis("time")] / rate
        if self.affine is not None and any(starts[1:]):
            affine = np.array(self.affine, dtype=float)
            affine[:3, 3] = affine[:3, :3] @ np.array(starts[1:4], dtype=float) + affine[:3, 3]
            changes["affine"] = affine
        return self.replace(np.ascontiguousarray(self.data[tuple(index)]), **changes)

    def pad(self, *, mode: PadMode = "constant", value: float = 0,
            **widths: int | tuple[int, int]) -> Signal:
        """Pad named axes: ``signal.pad(time=(0, 100))`` or ``signal.pad(height=4)`` (both sides).

        ``mode`` is any :func:`numpy.pad` mode; ``value`` the constant for
        ``"constant"``.  The affine origin and ``start_time`` follow the padding.
        """
        pad = [(0, 0)] * self.data.ndim
        for axis, (lo, hi) in self._ranges(widths, "pad").items():
            if lo < 0 or hi < 0:
                raise ArgumentError(f"pad widths must be >= 0, got {(lo, hi)} for {self.axes[axis]!r}")
            pad[axis] = (int(lo), int(hi))
        kwargs: dict[str, Any] = {"constant_values": value} if mode == "constant" else {}
        data = np.pad(self.data, pad, mode=mode, **kwargs)
        changes: dict[str, Any] = {}
        if "time" in self.axes and pad[self.axis("time")][0]:
            rate = self.rate("time")
            if rate:
                changes["start_time"] = (self.start_time or 0.0) - pad[self.axis("time")][0] / rate
        if self.affine is not None and any(p[0] for p in pad[1:]):
            affine = np.array(self.affine, dtype=float)
            affine[:3, 3] = affine[:3, 3] - affine[:3, :3] @ np.array([p[0] for p in pad[1:4]], float)
            changes["affine"] = affine
        return self.replace(data, **changes)
