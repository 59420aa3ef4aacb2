"""Draw a :class:`Signal` with matplotlib (Agg backend; an optional extra: ``sigconv[plot]``)."""
from __future__ import annotations
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ArgumentError
from ._common import require
from .signal import Signal
from ..typing import PathLike

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["show", "describe"]


def describe(signal: Signal) -> list[str]:
    """Lines of text for ``sigconv info``: kind, shape, dtype, value range and metadata."""
    data = signal.data
    lines = [f"kind:     {signal.kind}",
             f"shape:    {data.shape}  axes {signal.axes}",
             f"dtype:    {data.dtype}"]
    if data.size:
        finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data
        if finite.size:
            lines.append(f"values:   min {finite.min():.6g}, max {finite.max():.6g}, "
                         f"mean {finite.mean():.6g}")
    if signal.duration is not None:
        lines.append(f"duration: {signal.duration:.3f} s")
    for key, value in signal.metadata().items():
        if key == "joints":
            roots = [j.name for j in value if j.parent < 0]
            ends = sum(j.end_site for j in value)
            value = f"{len(value) - ends} joints + {ends} end sites, root {roots[0]}"
        elif key == "channel_names":
            names = list(value)
            value = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
        elif key in ("affine",):
            rows = np.array2string(np.asarray(value), precision=3, suppress_small=True)
            value = "\n          ".join(rows.splitlines())
        elif key == "frequencies":
            freqs = np.asarray(value)
            value = f"{len(freqs)} rows, {freqs[0]:.1f} to {freqs[-1]:.1f} Hz"
        elif key == "spacing":
            value = "(" + ", ".join(f"{s:.4g}" for s in value) + ")"
        elif isinstance(value, float):
            value = f"{value:.6g}"
        lines.append(f"{key + ':':<9} {value}")
    return lines


def _waveform(fig: Figure, signal: Signal) -> None:
    t = signal.times()
    axes = fig.subplots(signal.channels, 1, squeeze=False)[:, 0]
    for c, ax in enumerate(axes):
        ax.plot(t, signal.data[c], lw=0.6)
        ax.set_ylabel(f"channel {c}")
        ax.set_xlim(t[0], t[-1])
    axes[-1].set_xlabel("time (s)")


def _spectrogram(fig: Figure, signal: Signal) -> None:
    ax = fig.subplots()
    data = signal.data[0]
    kind = signal.meta.get("spectrogram_kind", "power")
    if kind in ("power", "mel"):
        data = 10 * np.log10(np.maximum(data, 1e-10))
        data = np.maximum(data, data.max() - 80)
        label = "dB"
    elif kind == "magnitude":
        data = 20 * np.log10(np.maximum(data, 1e-10))
        label = "dB"
    else:
        label = "dB" if kind == "log-mel" else "coefficient value"
    t = signal.times() if signal.sample_rate else np.arange(data.shape[1])
    rows = data.shape[0]
    extent = (t[0], t[-1], 0, rows)
    image = ax.imshow(data, origin="lower", aspect="auto", extent=extent, cmap="magma")
    if signal.frequencies is not None:
        # rows may be mel-spaced: label row positions with their centre frequencies
        f = np.asarray(signal.frequencies)
        ticks = np.unique(np.linspace(0, rows - 1, 7).round().astype(int))
        ax.set_yticks(ticks + 0.5)
        ax.set_yticklabels([f"{f[i]:.0f}" for i in ticks])
        ax.set_ylabel("frequency (Hz)")
    else:
        ax.set_ylabel("coefficient")
    fig.colorbar(image, ax=ax, label=label)
    ax.set_xlabel("time (s)")
    ax.set_title(f"{kind} spectrogram, n_fft={signal.n_fft}, hop={signal.hop_length}")


def _skeleton(fig: Figure, signal: Signal) -> None:
    ax = fig.subplots()
    t = signal.times()
    names = list(signal.channel_names or [])
    rotations = [i for i, n in enumerate(names) if "rotation" in n] or list(range(signal.channels))
    image = ax.imshow(signal.data[rotations], aspect="auto", cmap="coolwarm", origin="upper",
                      extent=(t[0], t[-1], len(rotations), 0), interpolation="nearest")
    unit = signal.meta.get("angle_unit", "")
    fig.colorbar(image, ax=ax, label=f"rotation ({unit})" if unit else "value")
    step = max(1, len(rotations) // 24)
    ax.set_yticks(np.arange(0, len(rotations), step) + 0.5)
    ax.set_yticklabels([names[i] if names else str(i) for i in rotations[::step]], fontsize=6)
    ax.set_xlabel("time (s)")
    ax.set_title(f"{len(rotations)} rotation channels over {signal.data.shape[1]} frames")


def _rgb(frame: NDArray[Any]) -> NDArray[Any]:
    """(C, H, W) in [0, 1] to something imshow draws: (H, W), (H, W, 3) or (H, W, 4)."""
    frame = np.clip(np.asarray(frame, dtype=np.float32), 0, 1) if frame.dtype != np.uint8 else frame
    if frame.shape[0] == 1:
        return frame[0]
    if frame.shape[0] == 2:
        return frame[0]
    return np.moveaxis(frame, 0, -1)


def _image(fig: Figure, signal: Signal) -> None:
    ax = fig.subplots()
    kwargs: dict[str, Any] = {"cmap": "gray", "vmin": 0, "vmax": 1} if signal.channels <= 2 else {}
    ax.imshow(_rgb(signal.data), **kwargs)
    ax.set_axis_off()


def _volume(fig: Figure, signal: Signal) -> None:
    data = signal.data[0]
    if signal.meta.get("units") == "HU":
        display = signal.window("abdomen").data[0]
        label = "abdomen window (level 40, width 400 HU)"
    else:
        low, high = np.percentile(data, [1, 99])
        display = np.clip((data - low) / max(high - low, 1e-12), 0, 1)
        label = "1st-99th percentile"
    d, h, w = data.shape
    sd, sh, sw = signal.spacing or (1.0, 1.0, 1.0)
    # RAS+ volumes: axial with anterior up and the patient's right on the right
    # (neurological convention), coronal and sagittal with superior up.  Arrays
    # without orientation (.npy/.npz) are drawn as stored, index 0 at the top.
    ras = signal.meta.get("orientation") == "RAS"
    tag = (lambda axis, letter: f"{axis} ({letter}+) mm") if ras else (lambda axis, _: f"{axis} mm")
    views = [(display[d // 2], (w * sw, h * sh), f"axial, depth {d // 2}",
              tag("width", "R"), tag("height", "A")),
             (display[:, h // 2, :], (w * sw, d * sd), f"coronal, height {h // 2}",
              tag("width", "R"), tag("depth", "S")),
             (display[:, :, w // 2], (h * sh, d * sd), f"sagittal, width {w // 2}",
              tag("height", "A"), tag("depth", "S"))]
    if d == 1:
        views = views[:1]  # a single slice has no coronal or sagittal view
    axes = fig.subplots(1, len(views), squeeze=False)[0]
    for ax, (image, (x, y), title, xlabel, ylabel) in zip(axes, views):
        extent = (0, x, 0, y) if ras else (0, x, y, 0)
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, origin="lower" if ras else "upper",
                  extent=extent, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"volume {d} x {h} x {w}, {label}", fontsize=10)


def _video(fig: Figure, signal: Signal, frames: int = 8) -> None:
    t = signal.data.shape[1]
    picks = np.unique(np.linspace(0, t - 1, min(frames, t)).round().astype(int))
    axes = fig.subplots(1, len(picks), squeeze=False)[0]
    times = signal.times() if signal.frame_rate else np.arange(t)
    for ax, i in zip(axes, picks):
        frame = signal.data[:, i]
        kwargs: dict[str, Any] = (
            {"cmap": "gray", "vmin": 0, "vmax": 1 if frame.dtype != np.uint8 else 255}
            if frame.shape[0] == 1 else {})
        ax.imshow(_rgb(frame), **kwargs)
        ax.set_title(f"{times[i]:.2f} s", fontsize=8)
        ax.set_axis_off()


def show(signal: Signal, out: PathLike, *, title: str | None = None, dpi: int = 100) -> PathLike:
    """Draw ``signal`` to the image file ``out`` (PNG, PDF, SVG, ...) and return ``out``.

    waveform: amplitude over time per channel; spectrogram: an image in dB
    with time and frequency axes; skeleton: every rotation channel over time
    as a heat map; image: the picture; volume: three orthogonal slices
    through the centre; video: a strip of up to 8 evenly spaced frames.
    """
    require("matplotlib", "plot", "sigconv.io.show")
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    if not isinstance(signal, Signal):
        raise ArgumentError(f"show needs a Signal, got {type(signal).__name__}")
    sizes = {"waveform": (10, 2.2 + 1.2 * min(signal.channels, 4)), "spectrogram": (10, 4),
             "skeleton": (10, 6), "volume": (13, 4.8), "video": (16, 2.6)}
    if signal.kind == "image":
        h, w = signal.data.shape[1:]
        size = (8, max(2.0, 8 * h / w))
    else:
        size = sizes[signal.kind]
    fig = Figure(figsize=size, layout="constrained")
    {"waveform": _waveform, "spectrogram": _spectrogram, "skeleton": _skeleton,
     "image": _image, "volume": _volume, "video": _video}[signal.kind](fig, signal)
    name = title or (str(signal.path).rsplit("/", 1)[-1] if signal.path else signal.kind)
    if signal.kind not in ("volume",):
        fig.suptitle(name, fontsize=10)
    else:
        fig.suptitle(f"{name}: " + fig.get_suptitle(), fontsize=10)
    fig.savefig(out, dpi=dpi)
    return out
