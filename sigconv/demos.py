"""The chapter's worked examples, runnable from Python and from ``sigconv``.

:func:`edge_detection` is figure 9.6: every pixel minus its left neighbour,
a convolution with the two-element kernel ``[-1, 1]``, finds vertical edges.
"""
import numpy as np

from . import functional as F
from .costs import conv_costs
from .errors import ShapeError

__all__ = ["EDGE_KERNEL", "edge_detection", "to_grey", "demo"]

#: Figure 9.6's kernel: output[i, j] = image[i, j + 1] - image[i, j].
EDGE_KERNEL = np.array([[[[-1.0, 1.0]]]])


def to_grey(image):
    """A greyscale float image in [0, 1] from ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` pixels."""
    image = np.asarray(image)
    scale = float(np.iinfo(image.dtype).max) if image.dtype.kind in "ui" else 1.0
    image = image.astype(np.float64) / scale
    if image.ndim == 3 and image.shape[2] in (3, 4):
        image = image[..., :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma
    if image.ndim != 2:
        raise ShapeError(f"expected a (H, W) or (H, W, 3|4) image, got shape {image.shape}")
    return image


def edge_detection(image, *, size=(280, 320)):
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


# -- `sigconv demo`: the same model code on 1-D, 2-D and 3-D data, offline ------

def _demo_items(ndim, rng, count):
    """Generated items of three classes and varying sizes, ``(1, *spatial)``.

    1-D: a low tone, a high tone or a chirp in noise (64-600 samples);
    2-D: a square, a disc or a cross on noise (16-40 pixels a side);
    3-D: a cube, a ball or a rod in a noisy volume (10-20 voxels a side).
    """
    items = []
    for i in range(count):
        label = i % 3
        if ndim == 1:
            n = int(rng.integers(64, 600))
            t = np.arange(n) / n
            phase = rng.uniform(0, 2 * np.pi)
            signal = [np.sin(2 * np.pi * 8 * t * n / 200 + phase),
                      np.sin(2 * np.pi * 30 * t * n / 200 + phase),
                      np.sin(2 * np.pi * (5 + 40 * t) * t * n / 200 + phase)][label]
            data = signal + 0.5 * rng.standard_normal(n)
        else:
            low, high = (16, 40) if ndim == 2 else (10, 20)
            shape = tuple(int(v) for v in rng.integers(low, high, ndim))
            grids = np.meshgrid(*[np.arange(s) - s / 2 + rng.uniform(-2, 2) for s in shape],
                                indexing="ij")
            radius = min(shape) / 4
            distance = np.sqrt(sum(g ** 2 for g in grids))
            if label == 0:
                mask = np.max(np.abs(np.stack(grids)), axis=0) < radius
            elif label == 1:
                mask = distance < radius
            else:  # a cross (2-D) or a rod (3-D): thin along every axis but one
                mask = np.zeros(shape, bool)
                for axis in range(ndim if ndim == 2 else 1):
                    others = [g for k, g in enumerate(grids) if k != axis]
                    mask |= (np.max(np.abs(np.stack(others)), axis=0) < radius / 3) & \
                        (np.abs(grids[axis]) < 1.6 * radius)
            data = mask.astype(float) + 0.3 * rng.standard_normal(shape)
        items.append((data[None].astype(np.float32), label))
    return items


def demo(out, *, epochs=10, count=240, seed=0, progress=True, log=None):
    """Train the same classifier code on generated 1-D, 2-D and 3-D data; return the results.

    For each rank, items of varying sizes are written as ``.npy`` files,
    prepared into a store (:func:`sigconv.data.prepare`) and trained on with
    :func:`sigconv.train.train` in Ragged batches; each run folder gets its
    metrics and plots.

    Returns
    -------
    dict
        ``{"1-D": test accuracy, "2-D": ..., "3-D": ...}``.
    """
    import os

    from .data import Source, convert_npy, prepare
    from .train import train

    rng = np.random.default_rng(seed)
    results = {}
    for ndim, name in ((1, "1-D"), (2, "2-D"), (3, "3-D")):
        folder = os.path.join(out, f"{name}-sources")
        os.makedirs(folder, exist_ok=True)
        sources = []
        for i, (data, label) in enumerate(_demo_items(ndim, rng, count)):
            path = os.path.join(folder, f"item{i:04d}.npy")
            np.save(path, data)
            split = "test" if i % 5 == 0 else "train"
            sources.append(Source(f"item{i:04d}", path, {"label": label, "split": split}))
        store = os.path.join(out, f"{name}-store")
        prepare(sources, store, convert_npy, progress=False, log=None)
        if log is not None:
            print(f"{name}: {count} generated items of varying size, training ...", file=log)
        metrics = train(store, os.path.join(out, f"{name}-run"), epochs=epochs, batch_size=16,
                        seed=seed, progress=progress, log=None)
        results[name] = metrics["test"]["accuracy"]
        if log is not None:
            print(f"{name}: test accuracy {results[name]:.3f} (metrics, and plots when "
                  f"matplotlib is installed, in {os.path.join(out, name + '-run')})", file=log)
    return results
