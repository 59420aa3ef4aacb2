"""The chapter's worked examples, runnable from Python and from ``sigconv``.

:func:`edge_detection` is figure 9.6: every pixel minus its left neighbour,
a convolution with the two-element kernel ``[-1, 1]``, finds vertical edges.
"""
import numpy as np

from . import functional as F
from .costs import conv_costs
from .errors import ShapeError

__all__ = ["EDGE_KERNEL", "edge_detection", "to_grey"]

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
