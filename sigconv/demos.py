"""The chapter's worked examples, runnable from Python and from ``sigconv``.

:func:`edge_detection` is figure 9.6: every pixel minus its left neighbour,
a convolution with the two-element kernel ``[-1, 1]``, finds vertical edges.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import functional as F
from .costs import conv_costs
from .errors import ShapeError
from .typing import PathLike

__all__ = ["EDGE_KERNEL", "edge_detection", "to_grey", "demo"]

#: Figure 9.6's kernel: output[i, j] = image[i, j + 1] - image[i, j].
EDGE_KERNEL = np.array([[[[-1.0, 1.0]]]])


def to_grey(image: ArrayLike) -> NDArray[np.float64]:
    """A greyscale float image in [0, 1] from ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` pixels."""
    image = np.asarray(image)
    scale = float(np.iinfo(image.dtype).max) if image.dtype.kind in "ui" else 1.0
    image = image.astype(np.float64) / scale
    if image.ndim == 3 and image.shape[2] in (3, 4):
        image = image[..., :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma
    if image.ndim != 2:
        raise ShapeError(f"expected a (H, W) or (H, W, 3|4) image, got shape {image.shape}")
    return image


def edge_detection(image: ArrayLike, *,
                   size: tuple[int, int] = (280, 320)) -> tuple[NDArray[Any], dict[str, Any]]:
    """Vertical edges of a greyscale photograph, as in figure 9.6.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
        Cropped at its centre to ``size`` (the figure's 280 rows by 320
        columns) when larger.
    size : tuple of int

    Returns
    -------
    edges : ndarray, shape (size[0], size[1] - 1)
        ``image[:, 1:] - image[:, :-1]``.
    costs : dict
        :func:`sigconv.costs.conv_costs` of the convolution against the
        equivalent dense matrix product.
    """
    grey = to_grey(image)
    rows, cols = size
    if grey.shape[0] < rows or grey.shape[1] < cols:
        raise ShapeError(f"image must be at least {size} pixels, got {grey.shape}")
    top, left = (grey.shape[0] - rows) // 2, (grey.shape[1] - cols) // 2
    grey = grey[top:top + rows, left:left + cols]
    edges = F.conv(grey[None, None], EDGE_KERNEL)[0, 0]
    return edges, conv_costs(grey.shape, EDGE_KERNEL.shape[2:])


# -- `sigconv demo`: the same training code on 1-D, 2-D and 3-D data, offline ---

def _demo_signals(rng: np.random.Generator, count: int) -> list[tuple[NDArray[Any], int]]:
    """Generated 1-D items of three classes and 64-600 samples: a low tone, a high tone
    or a chirp, in noise; ``[(array (1, n), label)]``."""
    items: list[tuple[NDArray[Any], int]] = []
    for i in range(count):
        label = i % 3
        n = int(rng.integers(64, 600))
        t = np.arange(n) / 200
        phase = rng.uniform(0, 2 * np.pi)
        signal = [np.sin(2 * np.pi * 8 * t + phase), np.sin(2 * np.pi * 30 * t + phase),
                  np.sin(2 * np.pi * (5 + 40 * t * 200 / n) * t + phase)][label]
        items.append(((signal + 0.5 * rng.standard_normal(n))[None], label))
    return items


def _demo_shapes(rng: np.random.Generator, count: int) -> list[tuple[NDArray[Any], int]]:
    """Generated 2-D items (16-40 pixels a side): a square, a disc or a cross on noise."""
    items: list[tuple[NDArray[Any], int]] = []
    for i in range(count):
        label = i % 3
        shape = tuple(int(v) for v in rng.integers(16, 40, 2))
        y, x = np.meshgrid(*[np.arange(s) - s / 2 + rng.uniform(-2, 2) for s in shape],
                           indexing="ij")
        radius = min(shape) / 4
        mask = [np.maximum(abs(y), abs(x)) < radius, np.hypot(y, x) < radius,
                ((abs(y) < radius / 3) & (abs(x) < 1.6 * radius))
                | ((abs(x) < radius / 3) & (abs(y) < 1.6 * radius))][label]
        items.append(((mask + 0.3 * rng.standard_normal(shape))[None], label))
    return items


def _demo_digits(rng: np.random.Generator,
                 count: int) -> list[tuple[NDArray[Any], int]] | None:
    """scikit-learn's real handwritten digits (8x8, ten classes), or None without it."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    digits = load_digits()
    chosen = rng.permutation(len(digits.target))[:count]
    return [(digits.images[i][None], int(digits.target[i])) for i in chosen]


def _demo_phantom(rng: np.random.Generator, shape: tuple[int, ...]) -> NDArray[np.float64]:
    """A generated volume of overlapping balls of 3 intensities, smoothed (a CT-like phantom)."""
    from scipy.ndimage import gaussian_filter

    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    volume = np.zeros(shape)
    for _ in range(int(np.prod(shape) / 600)):
        centre = [rng.uniform(0, n) for n in shape]
        inside = sum((g - c) ** 2 for g, c in zip(grids, centre)) < rng.uniform(2, 6) ** 2
        volume[inside] = rng.choice([300.0, 600.0, 1000.0])
    return gaussian_filter(volume, 0.7)[None]


def _store_of(items: Sequence[tuple[ArrayLike, dict[str, Any]]], folder: str) -> str:
    """Write ``[(array, fields)]`` as .npy files and prepare them into ``folder``-store."""
    import os

    from .data import Source, convert_npy, prepare

    os.makedirs(folder + "-sources", exist_ok=True)
    sources = []
    for i, (array, fields) in enumerate(items):
        path = os.path.join(folder + "-sources", f"item{i:04d}.npy")
        np.save(path, np.asarray(array, dtype=np.float32))
        sources.append(Source(f"item{i:04d}", path, fields))
    prepare(sources, folder + "-store", convert_npy, progress=False, log=None)
    return folder + "-store"


#: The phantom's intensity classes for the 3-D labelling task (np.digitize thresholds).
PHANTOM_THRESHOLDS = [150.0, 450.0, 800.0]


def _demo_volumes(rng: np.random.Generator) -> list[tuple[NDArray[Any], dict[str, Any]]]:
    """Phantom volumes for training, validation and testing, each with a channel of classes."""
    items: list[tuple[NDArray[Any], dict[str, Any]]] = []
    for depth, split in ((64, "train"), (16, "validation"), (32, "test")):
        volume = _demo_phantom(rng, (depth, 64, 64))
        classes = np.digitize(volume, PHANTOM_THRESHOLDS)
        items.append((np.concatenate([volume, classes]),
                      {"split": split, "target_channels": 1,
                       "label_thresholds": PHANTOM_THRESHOLDS}))
    return items


def demo(out: PathLike, *, epochs: int = 10, count: int = 900, seed: int = 0,
         progress: bool = True, log: IO[str] | None = None) -> dict[str, dict[str, float]]:
    """Train with one ``sigconv.train.train`` on 1-D, 2-D and 3-D data; return the results.

    1-D: generated tones and chirps of 64-600 samples (classify, Ragged
    batches); 2-D: scikit-learn's real handwritten digits when it is installed
    (the ``demo`` extra), else generated shapes of 16-40 pixels (classify);
    3-D: generated phantom volumes with Gaussian noise, one store for two
    dense tasks scored on a held-out volume by sliding windows: denoising
    (against a Gaussian filter tuned on the training volume) and labelling
    four intensity classes with the chapter's structured-output labeller
    (against thresholds on the tuned Gaussian).  Each run folder gets metrics
    and plots.

    Returns
    -------
    dict
        ``{"1-D": {"accuracy": ...}, "2-D": {...}, "3-D": {"psnr": ...,
        "psnr_noisy": ..., "psnr_gaussian": ...}, "3-D labels": {"dice": ...,
        "dice_threshold": ...}}``, the test scores.
    """
    import os

    from .train import train

    rng = np.random.default_rng(seed)
    digits = _demo_digits(rng, count)
    volumes = dict(noise=100.0, patch=16, batch_size=4, lr=3e-3)
    tasks: list[tuple[str, str, Any, dict[str, Any]]] = [
        ("1-D", "generated tones and chirps of 64-600 samples", _demo_signals(rng, count), {}),
        ("2-D", "scikit-learn's handwritten digits (8x8)" if digits else
         "generated shapes of 16-40 pixels (install scikit-learn for real digits)",
         digits or _demo_shapes(rng, count), {}),
        ("3-D", "generated phantom volumes, denoised (noise sigma 100, range 0-1000)",
         _demo_volumes(rng), dict(volumes, task="denoise")),
        ("3-D labels", "the same volumes, 4 classes by the chapter's structured-output "
         "labeller", None, dict(volumes, task="label")),
    ]
    results: dict[str, dict[str, float]] = {}
    for name, what, items, options in tasks:
        if not options:  # classification: a fifth of the items for testing
            items = [(a, {"label": y, "split": "test" if i % 5 == 0 else "train"})
                     for i, (a, y) in enumerate(items)]
            options = dict(batch_size=16)
        folder = os.path.join(out, name.replace(" ", "-"))
        if items is not None:  # else: the previous task's store
            store = _store_of(items, folder)
        if log is not None:
            print(f"{name}: {what}: training ...", file=log)
        # the demo's own folder: a second `sigconv demo` replaces its runs
        metrics = train(store, folder + "-run", epochs=epochs, seed=seed, progress=progress,
                        log=None, overwrite=True, **options)
        results[name] = {k: v for k, v in metrics["test"].items() if isinstance(v, float)}
        if log is not None:
            print(f"{name}: test " + ", ".join(f"{k} {v:.3f}" for k, v in
                                              results[name].items()) +
                  f" (metrics and plots in {folder}-run)", file=log)
    return results
