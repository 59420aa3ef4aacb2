"""The pictures of a run: curves, confusion matrix, kernels, feature maps, an example.

Needs matplotlib (the ``plot`` extra); without it :func:`plot_run` draws nothing.
Every PNG is written atomically.
"""
import io
import os

import numpy as np

from .. import nn
from .._atomic import atomic_write_bytes
from ..autograd import Tensor, no_grad

__all__ = ["plot_run"]


def _save_figure(fig, path):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())


def _middle(array):
    """A 2-D view of a ``(*spatial)`` array of 2 or 3 axes: the middle slice of a volume."""
    return array[array.shape[0] // 2] if array.ndim == 3 else array


def _tiles(plt, images, title, cmap="RdBu_r"):
    """A grid of images (at most 8 per row) with their axes hidden."""
    columns = min(8, len(images))
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.3 * rows + 0.4),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image in zip(axes.ravel(), images):
        ax.imshow(image, cmap=cmap)
    fig.suptitle(title)
    return fig


def _first_conv(model):
    return next(m for m in model.modules() if isinstance(m, nn.Conv))


def plot_run(out, history, test, model, metric, example=None, task=None):
    """Write the run's PNGs; return their paths.

    ``curves.png`` (loss and ``metric`` per epoch), ``confusion.png`` (when
    the test metrics hold one), ``kernels.png`` (the first convolution's
    kernels) and, given an ``example`` item ``(input (C, *spatial), target)``,
    ``feature_maps.png`` (the first convolution's output on its input) and,
    for a dense 2-D or 3-D task, ``example.png`` (the input, the model's
    output and the target side by side; the middle slice of a volume).
    """
    try:
        import matplotlib
    except ImportError:
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []

    def save(fig, name):
        written.append(os.path.join(out, name))
        _save_figure(fig, written[-1])
        plt.close(fig)

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for split in ("train", "validation"):
        if f"{split}_loss" in history[0]:
            axes[0].plot(epochs, [h[f"{split}_loss"] for h in history], marker="o", label=split)
            axes[1].plot(epochs, [h[f"{split}_{metric}"] for h in history], marker="o",
                         label=split)
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
    axes[1].set(xlabel="epoch", ylabel=metric, title=metric)
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, "curves.png")
    if test.get("confusion"):
        confusion = np.array(test["confusion"])
        fig, ax = plt.subplots(figsize=(4.5, 4))
        image = ax.imshow(confusion, cmap="Blues")
        for (i, j), value in np.ndenumerate(confusion):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7)
        ax.set(xlabel="predicted", ylabel="true",
               title=f"test confusion (accuracy {test['accuracy']:.3f})")
        fig.colorbar(image)
        fig.tight_layout()
        save(fig, "confusion.png")
    conv = _first_conv(model)
    weight = conv.weight.data
    if weight.ndim == 3:  # 1-D kernels: one curve each
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot(weight[:, 0].T, alpha=0.7)
        ax.set(xlabel="tap", title="first-layer kernels")
    else:
        fig = _tiles(plt, [_middle(w) for w in weight[:, 0]], "first-layer kernels")
    save(fig, "kernels.png")
    if example is None:
        return written
    model.eval()
    with no_grad():
        maps = conv(Tensor(example[0][None])).data[0]
    if maps.ndim == 2:  # 1-D: the input above, one row per feature channel below
        fig, (top, ax) = plt.subplots(2, 1, figsize=(8, 4.5), sharex=True,
                                      gridspec_kw={"height_ratios": [1, 2]})
        top.plot(example[0][0], linewidth=0.6)
        top.set(ylabel="input", title="first-layer feature maps of one validation item")
        ax.imshow(maps, aspect="auto", cmap="RdBu_r", interpolation="nearest")
        ax.set(xlabel="sample", ylabel="channel")
    else:
        fig = _tiles(plt, [_middle(m) for m in maps], "first-layer feature maps", "viridis")
    save(fig, "feature_maps.png")
    images = task.example(model, *example) if task is not None and example[0].ndim >= 3 else None
    if images is not None:
        panels = zip(("input", "output", "target"), images)
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
        for ax, (title, image) in zip(axes, panels):
            ax.imshow(_middle(image), cmap="gray")
            ax.set_title(title)
            ax.axis("off")
        fig.tight_layout()
        save(fig, "example.png")
    return written
