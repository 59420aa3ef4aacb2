"""Scores of the test metrics that are more than a running tally: per-class
precision, recall and F1 from a confusion matrix, and the structural similarity
(SSIM) of a denoised signal.

Both are checked against their reference implementations in the tests
(``sklearn.metrics.precision_recall_fscore_support`` and
``skimage.metrics.structural_similarity``), neither of which sigconv needs.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ShapeError

__all__ = ["per_class_scores", "ssim", "SSIM_SIGMA", "SSIM_TRUNCATE", "SSIM_K1", "SSIM_K2"]


def per_class_scores(confusion: ArrayLike, classes: Sequence[Any]) -> dict[str, Any]:
    """Precision, recall, F1 and support of each class, and their macro averages.

    Parameters
    ----------
    confusion : array-like of int, shape (K, K)
        ``confusion[true, predicted]`` counts.
    classes : sequence of K names
        The names the per-class table is keyed by (as strings, for JSON).

    Returns
    -------
    dict
        ``{"per_class": {name: {"precision", "recall", "f1", "support"}},
        "macro_precision", "macro_recall", "macro_f1"}``.  A class never
        predicted has precision 0, one never present recall 0, and F1 is 0
        when both are 0 (scikit-learn's ``zero_division=0``); the macro
        averages are unweighted means over all K classes.
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1] or \
            confusion.shape[0] != len(classes):
        raise ShapeError(f"confusion must be a square matrix of one row per class "
                         f"({len(classes)}), got shape {confusion.shape}")
    hits = np.diag(confusion).astype(np.float64)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    table = {str(name): {"precision": float(p), "recall": float(r), "f1": float(f),
                         "support": int(n)}
             for name, p, r, f, n in zip(classes, precision, recall, f1, support)}
    return {"per_class": table, "macro_precision": float(precision.mean()),
            "macro_recall": float(recall.mean()), "macro_f1": float(f1.mean())}


#: SSIM's settings (Wang, Bovik, Sheikh and Simoncelli 2004): a Gaussian window of
#: standard deviation 1.5 samples cut at 3.5 of them (11 taps, as scikit-image), and
#: the constants ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2`` of the data range ``L``.
SSIM_SIGMA, SSIM_TRUNCATE, SSIM_K1, SSIM_K2 = 1.5, 3.5, 0.01, 0.03


def ssim(output: ArrayLike, target: ArrayLike, data_range: float | None = None) -> float:
    """Mean structural similarity of ``output`` to ``target``, channels averaged.

    The index of Wang et al. (2004) with Gaussian-weighted local statistics
    (population covariances) over the spatial axes, the same number as
    ``skimage.metrics.structural_similarity(target[c], output[c],
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=data_range)`` averaged over channels ``c``.  As there, the
    mean leaves out a border of 5 samples (the window's radius) on every
    axis; an axis of 10 samples or fewer keeps its border (scikit-image
    refuses such items).

    Parameters
    ----------
    output, target : ndarray, shape (C, *spatial), 1 to 3 spatial axes
        In the same units (the store's).
    data_range : float, optional
        ``L`` of the constants; by default ``target.max() - target.min()``.

    Returns
    -------
    float
        1 for identical signals; lower is less similar (it can be negative).
    """
    from scipy.ndimage import gaussian_filter

    output = np.asarray(output, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if output.shape != target.shape or not 2 <= target.ndim <= 4:
        raise ShapeError(f"ssim takes output and target of one shape (C, *spatial) with 1 to 3 "
                         f"spatial axes, got {output.shape} and {target.shape}")
    if data_range is None:
        data_range = float(target.max() - target.min())
    sigma = (0,) + (SSIM_SIGMA,) * (target.ndim - 1)

    def local_mean(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return gaussian_filter(array, sigma=sigma, truncate=SSIM_TRUNCATE, mode="reflect")

    mean_x, mean_y = local_mean(output), local_mean(target)
    var_x = local_mean(output * output) - mean_x * mean_x
    var_y = local_mean(target * target) - mean_y * mean_y
    covariance = local_mean(output * target) - mean_x * mean_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    index = ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / \
        ((mean_x ** 2 + mean_y ** 2 + c1) * (var_x + var_y + c2))
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    inner = (slice(None),) + tuple(slice(radius, n - radius) if n > 2 * radius else slice(None)
                                   for n in target.shape[1:])
    return float(index[inner].reshape(len(index), -1).mean(axis=1).mean())
