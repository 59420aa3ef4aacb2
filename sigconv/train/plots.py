"""The pictures of a run: curves, confusion matrix, kernels, feature maps, an example.

Needs matplotlib (the ``plot`` extra); without it :func:`plot_run` draws nothing.
Each picture is built by a ``*_figure`` function returning a
:class:`matplotlib.figure.Figure` (no pyplot, so the caller's backend is left
alone) and written atomically as a PNG.

Scales: signed quantities (kernels, first-layer outputs) use one colour scale
per figure, symmetric around 0 and diverging, so panels compare; the example's
input, output and target of a denoising run share one intensity scale; labels
use one colour per class.
"""
from __future__ import annotations

import importlib.util
import io
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import nn
from .._atomic import atomic_write_bytes
from ..autograd import Tensor, no_grad
from ..errors import ArgumentError, ShapeError
from ..typing import PathLike

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap, Normalize
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from .tasks import Pair, Task

__all__ = ["plot_run", "curves_figure", "confusion_figure", "kernels_figure",
           "feature_maps_figure", "example_figure"]

#: Colour maps: signed values (symmetric around 0), counts, intensities.
DIVERGING, COUNTS, INTENSITY = "RdBu_r", "Blues", "gray"
#: At most this many panels per row in a grid of kernels or feature maps.
COLUMNS = 8
#: At most this many output channels (and input channels) are drawn per layer.
MAX_KERNELS, MAX_INPUT_CHANNELS = 64, 4
#: A loss axis is logarithmic when its largest value is this many times its smallest.
LOG_SPAN = 10.0
#: How a metric is named on an axis.
METRIC_LABELS = {"accuracy": "accuracy", "psnr": "PSNR (dB)", "dice": "mean foreground Dice"}


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _check_shape(array: ArrayLike, name: str, ndims: Sequence[int],
                 layout: str) -> NDArray[Any]:
    """``array`` as a numpy array, or ShapeError when its number of axes is not in ``ndims``."""
    array = np.asarray(array)
    if array.ndim not in ndims:
        raise ShapeError(f"{name} must be {layout}, got an array of shape {array.shape}")
    return array


def _rows(count: int, columns: int) -> int:
    return -(-count // columns)


def _even_columns(count: int, most: int) -> int:
    """Panels per row for ``count`` panels, at most ``most``, the rows as even as can be."""
    return -(-count // _rows(count, most))


def _diverging_with_blank() -> Colormap:
    """The diverging colour map with NaN (a gap between a kernel's slices) drawn white."""
    from matplotlib import colormaps

    return colormaps[DIVERGING].with_extremes(bad="white")


def _save_figure(fig: Figure, path: str) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())


def _symmetric_norm(*arrays: NDArray[Any]) -> Normalize:
    """A colour scale from ``-m`` to ``m``, ``m`` the largest magnitude in ``arrays``."""
    from matplotlib.colors import Normalize

    finite = [np.abs(a[np.isfinite(a)]) for a in arrays]
    limit = max((float(f.max()) for f in finite if f.size), default=0.0)
    limit = limit if limit > 0 else 1.0
    return Normalize(-limit, limit)


def _middle(array: NDArray[Any]) -> tuple[NDArray[Any], str]:
    """``(view, note)``: a ``(*spatial)`` array of 1 or 2 axes as it is, or the middle
    depth slice of a volume, with words saying which slice (empty otherwise)."""
    if array.ndim < 3:
        return array, ""
    depth = array.shape[0]
    return array[depth // 2], f"middle slice: depth {depth // 2} of {depth}"


def _whole_numbers() -> MaxNLocator:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _integer_ticks(axis: Any) -> None:
    axis.set_major_locator(_whole_numbers())


def _first_conv(model: nn.Module) -> tuple[str, nn.Conv] | None:
    """``(name, layer)`` of the model's first :class:`~sigconv.nn.Conv`, or None."""
    return next(((name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv)),
                None)


# -- curves ------------------------------------------------------------------

def _spans_decades(values: Sequence[float | None]) -> bool:
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)])
    return values.size > 1 and values.min() > 0 and values.max() >= LOG_SPAN * values.min()


def curves_figure(history: Sequence[dict[str, Any]], metric: str,
                  test: dict[str, Any] | None = None) -> Figure:
    """Loss, ``metric`` and learning rate per epoch, train and validation (``curves.png``).

    Parameters
    ----------
    history : list of dict
        One record per epoch, as in ``metrics.json``: ``epoch``, ``lr``,
        ``train_loss``, ``train_<metric>``, ``validation_...``.
    metric : str
        The score's name (``"accuracy"``, ``"psnr"``, ``"dice"``).
    test : dict, optional
        Test scores of the best model: ``test[metric]`` and ``test["loss"]``
        are drawn as dashed lines.

    Returns
    -------
    matplotlib.figure.Figure
        The loss axis is logarithmic when the loss spans a decade or more; one
        legend under the panels.
    """
    if not history or not all(isinstance(h, dict) and "epoch" in h for h in history):
        raise ArgumentError(f"history must be a non-empty list of per-epoch records with an "
                            f"'epoch' (as in metrics.json), got {str(history)[:80]}")
    test = test or {}
    epochs = [h["epoch"] for h in history]
    panels = [("loss", "loss"), (metric, METRIC_LABELS.get(metric, metric))]
    has_lr = all("lr" in h for h in history)
    fig = _figure(4.2 * (len(panels) + has_lr), 3.4)
    axes = fig.subplots(1, len(panels) + has_lr, squeeze=False)[0]
    for ax, (key, label) in zip(axes, panels):
        plotted = []
        for split in ("train", "validation"):
            values = [h.get(f"{split}_{key}") for h in history]
            if all(v is not None for v in values):
                ax.plot(epochs, values, marker="o", label=split)
                plotted += values
        if isinstance(test.get(key), float):
            ax.axhline(test[key], color="black", linestyle="--", linewidth=1,
                       label="test (best model)")
            plotted.append(test[key])
        if key == "loss" and _spans_decades(plotted):
            ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel=label, title=label)
    if has_lr:
        ax = axes[-1]
        rates = [h["lr"] for h in history]
        ax.plot(epochs, rates, marker="o", color="tab:green")
        if _spans_decades(rates):
            ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel="learning rate", title="learning rate (in the epoch)")
    entries: dict[str, Any] = {}  # one legend for the panels, under them: it covers no data
    for ax in axes:
        entries.update(zip(*reversed(ax.get_legend_handles_labels())))
        if len(epochs) <= 15:
            ax.set_xticks(epochs)
        else:
            _integer_ticks(ax.xaxis)
        ax.grid(alpha=0.3)
    if entries:
        fig.legend(list(entries.values()), list(entries), loc="outside lower center",
                   ncols=len(entries), fontsize=9, frameon=False)
    return fig


# -- confusion matrix --------------------------------------------------------

def _class_names(count: int, classes: Sequence[Any] | None) -> list[str]:
    """``classes`` as text when there are ``count`` of them, else ``"0"`` ... ``count - 1``."""
    if classes is not None and len(classes) == count:
        return [str(c) for c in classes]
    return [str(k) for k in range(count)]


def _tick_rotation(names: Sequence[str]) -> int:
    """Degrees to turn x tick labels by: 0 while they fit side by side, else 45 (90 for
    more than 30 classes)."""
    if len(names) * max(len(n) for n in names) <= 30:
        return 0
    return 45 if len(names) <= 30 else 90


def _text_colour(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on the colour ``rgba``."""
    red, green, blue = rgba[:3]
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"


def confusion_figure(confusion: ArrayLike, classes: Sequence[Any] | None = None,
                     accuracy: float | None = None) -> Figure:
    """The test confusion matrix (``confusion.png``): rows true, columns predicted.

    Parameters
    ----------
    confusion : array_like of int, (classes, classes)
        Counts: ``confusion[i, j]`` items of class ``i`` predicted as ``j``.
    classes : list, optional
        The class names, in index order (a run's ``task.state["classes"]``);
        without them, or when their number differs, the indices.
    accuracy : float, optional
        Written in the title.

    Returns
    -------
    matplotlib.figure.Figure
        Ticks at the cell centres carry the names (turned when long or many),
        each cell its count (up to 50 classes), and a colour bar the scale.
    """
    from matplotlib.colors import Normalize

    confusion = _check_shape(confusion, "confusion", (2,), "a square (classes, classes) "
                             "array of counts")
    count = confusion.shape[0]
    if count == 0 or confusion.shape[1] != count:
        raise ShapeError(f"confusion must be a square (classes, classes) array of counts, "
                         f"got an array of shape {confusion.shape}")
    names = _class_names(count, classes)
    side = min(max(4.5, 0.42 * count + 2.5), 16)
    fig = _figure(side + 0.8, side)
    ax = fig.subplots()
    norm = Normalize(0, max(int(confusion.max()), 1))
    image = ax.imshow(confusion, cmap=COUNTS, norm=norm, interpolation="nearest")
    if count <= 50:
        size = 9 if count <= 12 else 7 if count <= 25 else 5
        for (i, j), value in np.ndenumerate(confusion):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=size,
                    color=_text_colour(image.cmap(norm(value))))
    ticks = np.arange(count)
    rotation = _tick_rotation(names)
    ax.set_xticks(ticks, names, rotation=rotation, ha="right" if rotation == 45 else "center",
                  rotation_mode="anchor" if rotation == 45 else "default")
    ax.set_yticks(ticks, names)
    title = "test confusion matrix"
    if accuracy is not None:
        title += f" (accuracy {accuracy:.3f})"
    ax.set(xlabel="predicted", ylabel="true", title=title)
    bar = fig.colorbar(image, ax=ax, label="items", shrink=0.8)
    bar.locator = _whole_numbers()
    return fig


# -- kernels and feature maps ------------------------------------------------

def _montage(kernel: NDArray[Any]) -> NDArray[Any]:
    """A ``(*kernel)`` array of 2 or 3 axes as one image: a volume's depth slices left to
    right, a blank (NaN) column between them."""
    if kernel.ndim == 2:
        return kernel
    gap = np.full((kernel.shape[1], 1), np.nan)
    return np.concatenate([part for s in kernel for part in (s, gap)][:-1], axis=1)


#: Inches: gaps between panels of a grid (across; down, room for a panel's title), a
#: line of a figure's title, the margin right of a grid (its colour bar and labels).
PANEL_GAP, PANEL_TITLE, TITLE_LINE, BAR_MARGIN = 0.12, 0.24, 0.2, 1.1


def _panel_grid(count: int, columns: int, panel: tuple[float, float], title: Sequence[str], *,
                left: float = 0.1, min_height: float = 2.6) -> tuple[Figure, list[Axes], Axes]:
    """A figure of ``count`` image panels of ``panel`` (width, height) inches, in rows of
    ``columns``, ``left`` inches from its left edge, under a title of the lines
    ``title``, at least ``min_height`` inches tall; returns ``(fig, axes,
    colour_bar_axes)``.

    The panels are placed by hand rather than by a layout engine: the figure's
    size follows from them, so everything fits, and drawing 64 panels stays
    fast (constrained layout takes seconds for as many).
    """
    from matplotlib.figure import Figure

    columns = min(columns, count)
    rows = _rows(count, columns)
    width, height = panel
    top = _title_height(title)
    fig_width = left + columns * (width + PANEL_GAP) + BAR_MARGIN
    fig_height = max(top + rows * (height + PANEL_TITLE) + 0.1, min_height)
    fig = Figure(figsize=(fig_width, fig_height))
    axes = [_axes_at(fig, left + column * (width + PANEL_GAP),
                     top + row * (height + PANEL_TITLE) + PANEL_TITLE, width, height)
            for row, column in (divmod(index, columns) for index in range(count))]
    bar_height = min(fig_height - top - 0.2, max(1.5, rows * (height + PANEL_TITLE)))
    bar = _axes_at(fig, fig_width - BAR_MARGIN + 0.15, top + 0.1, 0.14, bar_height)
    fig.suptitle("\n".join(title), y=1 - 0.08 / fig_height, va="top", fontsize=10)
    return fig, axes, bar


def _axes_at(fig: Figure, left: float, top: float, width: float, height: float) -> Axes:
    """Axes ``width`` x ``height`` inches, ``left`` inches from the figure's left edge and
    ``top`` inches below its top."""
    fig_width, fig_height = fig.get_size_inches()
    return fig.add_axes((left / fig_width, 1 - (top + height) / fig_height,
                         width / fig_width, height / fig_height))


def _title_height(title: Sequence[str]) -> float:
    """Inches above a grid of panels for a title of the lines ``title``."""
    return 0.15 + TITLE_LINE * len(title)


def _panel_size(shape: tuple[int, ...], largest: float = 1.25,
                shortest: float = 0.35) -> tuple[float, float]:
    """(width, height) inches of a panel showing an image of ``shape`` (rows, columns):
    its longer side ``largest`` inches, unless that makes the shorter side less than
    ``shortest`` (a strip: it grows, up to 3.3 inches long)."""
    rows, columns = shape
    scale = largest / max(rows, columns)
    if min(rows, columns) * scale < shortest:
        scale = min(shortest / min(rows, columns), 3.3 / max(rows, columns))
    return columns * scale, rows * scale


def _blank_ticks(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _channels_note(shown: int, total: int, what: str) -> str:
    return f"{what} 0-{shown - 1} of {total}" if shown < total else ""


def kernels_figure(weight: ArrayLike, name: str = "first convolution") -> Figure:
    """A convolution's kernels on one colour scale symmetric around 0 (``kernels.png``).

    Parameters
    ----------
    weight : array_like, (C_out, C_in, *kernel)
        1 to 3 kernel axes.
    name : str
        Which layer, for the title.

    Returns
    -------
    matplotlib.figure.Figure
        1-D: one heat map (kernel x tap) per input channel.  2-D and 3-D: one
        panel per kernel and input channel (a 3-D kernel's depth slices left
        to right).  At most :data:`MAX_KERNELS` kernels and
        :data:`MAX_INPUT_CHANNELS` input channels are drawn.
    """
    weight = _check_shape(weight, "weight", (3, 4, 5), "(C_out, C_in, *kernel) with 1 to 3 "
                          "kernel axes").astype(np.float64)
    kernels = min(weight.shape[0], MAX_KERNELS)
    channels = min(weight.shape[1], MAX_INPUT_CHANNELS)
    shown = weight[:kernels, :channels]
    norm = _symmetric_norm(shown)
    size = f"{weight.shape[2]} taps" if weight.ndim == 3 else \
        "size " + " x ".join(str(s) for s in weight.shape[2:])
    lines = [name, f"{weight.shape[0]} kernels x {weight.shape[1]} input channel"
             f"{'s' if weight.shape[1] > 1 else ''}, {size}"]
    lines += [n for n in (_channels_note(kernels, weight.shape[0], "kernels"),
                          _channels_note(channels, weight.shape[1], "input channels")) if n]
    if weight.ndim == 5:
        lines.append(f"each panel: its {weight.shape[2]} depth slices left to right")
    if weight.ndim == 3:
        taps = weight.shape[2]
        fig = _figure(1.6 + channels * min(max(2.6, 0.22 * taps), 6),
                      min(max(3.4, 0.1 * kernels + 1.8), 9))
        axes = fig.subplots(1, channels, squeeze=False, sharey=True)[0]
        for c, ax in enumerate(axes):
            image = ax.imshow(shown[:, c], cmap=DIVERGING, norm=norm, aspect="auto",
                              interpolation="nearest")
            ax.set(xlabel="tap", title=f"input channel {c}" if weight.shape[1] > 1 else None)
            _integer_ticks(ax.xaxis)
            _integer_ticks(ax.yaxis)
        axes[0].set_ylabel("kernel (output channel)")
        fig.colorbar(image, ax=axes, label="weight", shrink=0.9)
        fig.suptitle("\n".join(lines), fontsize=10)
        return fig
    montages = [_montage(shown[k, c]) for k in range(kernels) for c in range(channels)]
    panel = _panel_size(montages[0].shape, shortest=0.6)
    # a kernel's input channels side by side, rows as even as they can be
    per_row = max(1, min(COLUMNS, int(12 // (panel[0] + PANEL_GAP))) // channels)
    columns = channels * _even_columns(kernels, per_row)
    fig, axes, bar = _panel_grid(len(montages), columns, panel, lines)
    cmap = _diverging_with_blank()
    for index, (ax, montage) in enumerate(zip(axes, montages)):
        k, c = divmod(index, channels)
        image = ax.imshow(montage, cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_title(f"kernel {k}" + (f", in {c}" if weight.shape[1] > 1 else ""), fontsize=7)
        _blank_ticks(ax)
    fig.colorbar(image, cax=bar, label="weight")
    return fig


def feature_maps_figure(x: ArrayLike, maps: ArrayLike, name: str = "first convolution") -> Figure:
    """An item and a layer's output on it (``feature_maps.png``).

    Parameters
    ----------
    x : array_like, (C, *spatial)
        The item (1 to 3 spatial axes).
    maps : array_like, (C_out, *spatial')
        The layer's output, before the activation (as many spatial axes).
    name : str
        Which layer, for the title.

    Returns
    -------
    matplotlib.figure.Figure
        The input on its own scale, the outputs on one scale symmetric around
        0.  1-D: the input's channels as lines above a heat map (output
        channel x sample).  2-D and 3-D: the input beside one panel per output
        channel (a volume's middle slice).
    """
    x = _check_shape(x, "x", (2, 3, 4), "(C, *spatial) with 1 to 3 spatial axes")
    maps = _check_shape(maps, "maps", (x.ndim,), f"(C_out, *spatial) with {x.ndim - 1} "
                        f"spatial axes as x {x.shape}")
    count = min(maps.shape[0], MAX_KERNELS)
    maps = maps[:count]
    title = f"{name}: its output on one item (before the activation)"
    if maps.ndim == 2:
        fig = _figure(9, min(max(4.5, 0.09 * count + 3), 10))
        grid = fig.add_gridspec(2, 2, width_ratios=[40, 1], height_ratios=[1, 2])
        top = fig.add_subplot(grid[0, 0])
        bottom = fig.add_subplot(grid[1, 0], sharex=top)
        shown = min(x.shape[0], MAX_INPUT_CHANNELS)
        for c in range(shown):
            top.plot(x[c], linewidth=0.6, label=f"channel {c}")
        if x.shape[0] > 1:
            top.legend(loc="upper right", fontsize=7)
        top.set(ylabel=" ".join(["input", _channels_note(shown, x.shape[0], "channels")]))
        top.tick_params(labelbottom=False)
        image = bottom.imshow(maps, aspect="auto", cmap=DIVERGING, norm=_symmetric_norm(maps),
                              interpolation="nearest",
                              extent=(-0.5, maps.shape[1] - 0.5, count - 0.5, -0.5))
        bottom.set(xlabel="sample", ylabel="output channel")
        _integer_ticks(bottom.yaxis)
        fig.colorbar(image, cax=fig.add_subplot(grid[1, 1]), label="output")
        fig.suptitle(title, fontsize=10)
        return fig
    views = [_middle(m)[0] for m in maps]
    source, note = _middle(x[0])
    lines = [title] + ([note] if note else [])
    panel = _panel_size(views[0].shape)
    source_size = _panel_size(source.shape, largest=2.4)
    top = _title_height(lines) + PANEL_TITLE  # the input's top, level with the first row's
    fig, axes, bar = _panel_grid(count, _even_columns(count, COLUMNS), panel, lines,
                                 left=source_size[0] + 0.6,
                                 min_height=top + source_size[1] + 0.9)
    ax = _axes_at(fig, 0.2, top, *source_size)
    image = ax.imshow(source, cmap=INTENSITY, interpolation="nearest")
    ax.set_title("input" + (", channel 0" if x.shape[0] > 1 else ""), fontsize=8)
    _blank_ticks(ax)
    source_bar = _axes_at(fig, 0.2, top + source_size[1] + 0.2, source_size[0], 0.1)
    fig.colorbar(image, cax=source_bar, orientation="horizontal")
    source_bar.tick_params(labelsize=7)
    source_bar.set_xlabel("input", fontsize=8)
    norm = _symmetric_norm(*views)
    for c, (ax, view) in enumerate(zip(axes, views)):
        image = ax.imshow(view, cmap=DIVERGING, norm=norm, interpolation="nearest")
        ax.set_title(f"channel {c}", fontsize=7)
        _blank_ticks(ax)
    fig.colorbar(image, cax=bar, label="output")
    return fig


# -- example of a dense task -------------------------------------------------

def _class_colours(count: int) -> tuple[Colormap, Normalize]:
    """``(cmap, norm)``: one colour per class index ``0 .. count - 1``."""
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap

    source = colormaps["tab10" if count <= 10 else "tab20"]
    cmap = ListedColormap([source(k % source.N) for k in range(count)])
    return cmap, BoundaryNorm(np.arange(count + 1) - 0.5, count)


def _shared_range(*arrays: ArrayLike) -> tuple[float, float]:
    """``(low, high)``: the 1st and 99th percentiles of all of ``arrays`` together."""
    values = np.concatenate([np.ravel(a) for a in arrays]).astype(np.float64)
    values = values[np.isfinite(values)]
    if not values.size:
        return 0.0, 1.0
    low, high = np.percentile(values, [1, 99])
    return (float(low), float(high)) if high > low else (float(low) - 0.5, float(low) + 0.5)


def example_figure(x: ArrayLike, output: ArrayLike, target: ArrayLike,
                   classes: Sequence[Any] | None = None) -> Figure:
    """One item's input, the model's output and the target (``example.png``).

    Parameters
    ----------
    x, output, target : array_like, (*spatial)
        One channel each, 1 to 3 axes, the same shape.  An integer
        ``target`` holds class indices (labelling, as ``output`` then).
    classes : list, optional
        The class names, in index order.

    Returns
    -------
    matplotlib.figure.Figure
        Denoising: the three on one intensity scale (the 1st to 99th
        percentile of all three) with one colour bar; 1-D: the input above,
        output and target overlaid below, on the same y-limits.  Labelling:
        the input on its own scale, output and target in one colour per
        class.  A volume shows its middle slice, named in the title.
    """
    from matplotlib.colors import Normalize

    x = _check_shape(x, "x", (1, 2, 3), "(*spatial) with 1 to 3 axes")
    output, target = np.asarray(output), np.asarray(target)
    if output.shape != x.shape or target.shape != x.shape:
        raise ShapeError(f"x, output and target must have one shape, got {x.shape}, "
                         f"{output.shape} and {target.shape}")
    labels = np.issubdtype(target.dtype, np.integer)
    if labels:
        count = max(int(max(output.max(), target.max())) + 1, len(classes or ()))
        names = _class_names(count, classes)
        class_cmap, class_norm = _class_colours(count)
    if x.ndim == 1:
        fig = _figure(9, 5)
        top, bottom = fig.subplots(2, 1, sharex=True, sharey=not labels)
        top.plot(x, linewidth=0.6, color="tab:gray")
        top.set(ylabel="input", title="input")
        if labels:
            bottom.step(np.arange(target.size), target, where="mid", color="black",
                        label="target")
            bottom.step(np.arange(output.size), output, where="mid", color="tab:orange",
                        linestyle="--", label="output")
            bottom.set_yticks(np.arange(count), names)
        else:
            bottom.plot(target, linewidth=1.2, color="black", label="target")
            bottom.plot(output, linewidth=1.0, color="tab:orange", label="output")
        bottom.set(xlabel="sample", ylabel="class" if labels else "value",
                   title="output and target")
        bottom.legend(loc="best", fontsize=8)
        return fig
    (x, note), (output, _), (target, _) = (_middle(a) for a in (x, output, target))
    fig = _figure(12, min(max(3.0, 3.6 * x.shape[0] / x.shape[1] + 1.0), 6))
    axes = fig.subplots(1, 3)
    titles = ("input", "output", "target")
    if labels:
        image = axes[0].imshow(x, cmap=INTENSITY, interpolation="nearest")
        fig.colorbar(image, ax=axes[0], label="input (normalised)", shrink=0.85)
        for ax, image_data in zip(axes[1:], (output, target)):
            image = ax.imshow(image_data, cmap=class_cmap, norm=class_norm,
                              interpolation="nearest")
        bar = fig.colorbar(image, ax=list(axes[1:]), label="class", shrink=0.85)
        bar.set_ticks(list(range(count)), labels=names)
    else:
        norm = Normalize(*_shared_range(x, output, target))
        for ax, image_data in zip(axes, (x, output, target)):
            image = ax.imshow(image_data, cmap=INTENSITY, norm=norm, interpolation="nearest")
        fig.colorbar(image, ax=list(axes), label="intensity (normalised)", extend="both",
                     shrink=0.85)
    for ax, title in zip(axes, titles):
        ax.set_title(title)
        _blank_ticks(ax)
    scale = "output and target: one colour per class" if labels else \
        "input, output and target on one intensity scale"
    fig.suptitle(f"{scale}; {note}" if note else scale)
    return fig


def plot_run(out: PathLike, history: Sequence[dict[str, Any]], test: dict[str, Any],
             model: nn.Module, metric: str, example: Pair | None = None,
             task: Task | None = None) -> list[str]:
    """Write the run's PNGs; return their paths.

    ``curves.png`` (loss, ``metric`` and learning rate per epoch),
    ``confusion.png`` (when the test metrics hold one; class names from
    ``task.state["classes"]``), ``kernels.png`` (the first convolution's
    kernels) and, given an ``example`` item ``(input (C, *spatial), target)``,
    ``feature_maps.png`` (the first convolution's output on its input) and,
    for a dense task, ``example.png`` (the input, the model's output and the
    target; the middle slice of a volume).
    """
    if importlib.util.find_spec("matplotlib") is None:
        return []
    written: list[str] = []

    def save(fig: Figure, name: str) -> None:
        written.append(os.path.join(out, name))
        _save_figure(fig, written[-1])

    classes = (getattr(task, "state", None) or {}).get("classes")
    if history:
        save(curves_figure(history, metric, test), "curves.png")
    if test.get("confusion"):
        save(confusion_figure(test["confusion"], classes, test.get("accuracy")),
             "confusion.png")
    first = _first_conv(model)
    if first is None:
        return written
    name, conv = first
    layer = f"first convolution ({name})" if name else "first convolution"
    save(kernels_figure(conv.weight.data, layer), "kernels.png")
    if example is None:
        return written
    x = example[0]
    # a dense task's model sees the noisy item
    if task is not None and hasattr(task, "evaluation_inputs"):
        x = task.evaluation_inputs([example])[0]
    model.eval()
    if conv.in_channels == x.shape[0] and conv.ndim == x.ndim - 1:  # the layer takes the item
        with no_grad():
            maps = conv(Tensor(x[None])).data[0]
        save(feature_maps_figure(x, maps, layer), "feature_maps.png")
    images = task.example(model, *example) if task is not None else None
    if images is not None:
        save(example_figure(*images, classes=classes), "example.png")
    return written
