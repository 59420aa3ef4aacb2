"""Still images through imageio (Pillow underneath for PNG, JPEG, GIF, BMP, TIFF, WebP).

Channel rules (``mode=None``, the default, keeps what the file holds):

- greyscale (H, W) -> 1 channel; greyscale + alpha -> 2 channels;
- RGB -> 3 channels ("R", "G", "B"); RGBA -> 4 channels (alpha kept, not
  premultiplied);
- palette images are expanded through their palette by Pillow: RGB, or RGBA
  when the palette has transparency;
- a multi-frame file (animated GIF, multi-page TIFF) gives its first frame
  (``index=`` picks another).

``mode="L"`` converts to one luminance channel (ITU-R 601: 0.299 R + 0.587 G
+ 0.114 B, alpha dropped); ``mode="RGB"`` gives three channels (grey
replicated, alpha dropped); ``mode="RGBA"`` four (opaque alpha added).

Values: uint8 are divided by 255 and uint16 by 65535 (so [0, 1]); bool become
0/1; float images are kept as they are; other integer types are converted
without scaling.
"""
from __future__ import annotations

import struct
from typing import Any, Literal

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .._validation import check_choice
from ._common import (MAX_BYTES, LoadError, check_file, check_max_bytes, extension,
                      library_error, limit, read_head)
from .formats import BY_NAME, image_extension, wrong_extension_or
from .signal import Signal
from ..typing import PathLike

__all__ = ["load_image", "to_float", "EXTENSIONS"]

_IMAGE = BY_NAME["image"]

#: The extensions of image files (:data:`sigconv.io.formats.FORMATS`).
EXTENSIONS = _IMAGE.extensions

_NAMES = {1: ("L",), 2: ("L", "A"), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}


def _check_size(path: Any, itemsize: int, max_bytes: int | None) -> None:
    """Refuse an image whose header claims more than ``max_bytes`` of decoded pixels
    (Pillow reads the header only; formats Pillow does not know are not checked here)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - imageio needs Pillow for these formats
        return
    try:
        with Image.open(path) as im:
            width, height = im.size
            bands = 4 if im.mode in ("P", "PA") else len(im.getbands())
    except Image.DecompressionBombError as exc:
        raise LoadError(path, "too large", f"Pillow refuses it as a decompression bomb: {exc} "
                        "(the limit is PIL.Image.MAX_IMAGE_PIXELS)") from None
    except Exception:  # noqa: BLE001 - not for Pillow to judge; imageio will say what is wrong
        return
    limit(path, width * height * bands * itemsize, max_bytes,
          f"a {width} x {height} image of {bands} channel(s) at {itemsize} bytes per value")


def to_float(array: NDArray[Any], dtype: Any = np.float32) -> NDArray[Any]:
    """uint8 / 255, uint16 / 65535, bool -> 0/1, others converted unscaled."""
    if array.dtype == np.uint8:
        return array.astype(dtype) / dtype(255)
    if array.dtype == np.uint16:
        return array.astype(dtype) / dtype(65535)
    return array.astype(dtype)


def _convert(array: NDArray[Any], mode: str | None) -> NDArray[Any]:
    """(C, H, W) array to ``mode`` (None keeps it)."""
    c = array.shape[0]
    if mode is None:
        return array
    colour = array[:3] if c >= 3 else np.repeat(array[:1], 3, axis=0)
    if mode == "L":
        if c < 3:
            return array[:1]
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float64)
        return np.tensordot(weights, colour.astype(np.float64), axes=1)[None].astype(array.dtype)
    if mode == "RGB":
        return colour
    alpha = array[c - 1:c] if c in (2, 4) else np.ones_like(array[:1])
    return np.concatenate([colour, alpha])


def load_image(path: PathLike, *, mode: Literal["L", "RGB", "RGBA"] | None = None, index: int = 0,
               dtype: DTypeLike = np.float32, max_bytes: float | None = MAX_BYTES) -> Signal:
    """Load an image file as an image :class:`Signal`.

    Parameters
    ----------
    mode : {None, "L", "RGB", "RGBA"}
        None keeps the file's channels (see the module docstring for the rules).
    index : int
        Frame of a multi-frame file.
    dtype : float32 or float64
    max_bytes : int or None
        Refuse (LoadError, cause "too large") an image whose header claims
        more decoded bytes; default :data:`sigconv.io.MAX_BYTES`.

    Returns
    -------
    Signal
        ``data`` shape (C, H, W), axes ("channel", "height", "width"),
        ``channel_names`` (e.g. ("R", "G", "B")), ``source_dtype``.
    """
    import imageio.v3 as iio

    path = check_file(path)
    if mode is not None:
        check_choice(mode, "mode", ("L", "RGB", "RGBA"))
    max_bytes = check_max_bytes(max_bytes)
    head = read_head(path)
    if not _IMAGE.claims(head, path):
        raise LoadError(path, "unsupported", "not an image format (PNG, JPEG, GIF, BMP, TIFF, "
                        "WebP, PNM) by content or extension")
    _check_size(path, np.dtype(dtype).itemsize, max_bytes)
    try:
        # the content, not the name, picks imageio's plugin (a PNG named .nii is a PNG)
        array = iio.imread(path, index=index,
                           extension=image_extension(head))  # type: ignore[arg-type]  # None: imageio picks the plugin
    except IndexError as exc:
        raise LoadError(path, "unsupported", f"no frame {index}: {exc}") from None
    except MemoryError as exc:
        raise library_error(path, "imageio", exc) from None
    except (OSError, ValueError, SyntaxError, RuntimeError, EOFError, TypeError, KeyError,
            ZeroDivisionError, OverflowError, struct.error) as exc:
        found = (image_extension(head) or extension(path) or "image").lstrip(".").upper()
        message = f"imageio cannot decode it as a {found} image: {exc}"
        if "truncated" in str(exc).lower() or isinstance(exc, EOFError):
            raise LoadError(path, "truncated", message) from None
        if _IMAGE.sniff(head, path):
            raise LoadError(path, "corrupt", message) from None
        raise wrong_extension_or(path, "image", "image", message) from None
    array = np.asarray(array)
    source_dtype = array.dtype
    if array.dtype.kind not in "biuf":
        raise LoadError(path, "unsupported", f"pixel values of dtype {array.dtype}, expected "
                        "numbers")
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3 and array.shape[-1] in (1, 2, 3, 4):
        array = np.moveaxis(array, -1, 0)
    else:
        raise LoadError(path, "unsupported", f"image array of shape {array.shape} is not "
                        "(H, W) or (H, W, 1-4 channels)")
    data = np.ascontiguousarray(_convert(to_float(array, np.dtype(dtype).type), mode))
    return Signal(data, "image", channel_names=_NAMES[data.shape[0]], path=str(path),
                  source_dtype=str(source_dtype))
