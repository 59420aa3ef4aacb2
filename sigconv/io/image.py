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
import numpy as np

from .._validation import check_choice
from ._common import LoadError, check_file, extension, read_head, wrong_extension_or
from .signal import Signal

__all__ = ["load_image", "to_float", "EXTENSIONS"]

EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm",
              ".pgm", ".pbm", ".ico")

_NAMES = {1: ("L",), 2: ("L", "A"), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}


def sniff(head):
    return (head[:8] == b"\x89PNG\r\n\x1a\n" or head[:3] == b"\xff\xd8\xff"
            or head[:6] in (b"GIF87a", b"GIF89a") or head[:2] == b"BM"
            or head[:4] in (b"II*\x00", b"MM\x00*")
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
            or (len(head) > 2 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace()))


def to_float(array, dtype=np.float32):
    """uint8 / 255, uint16 / 65535, bool -> 0/1, others converted unscaled."""
    if array.dtype == np.uint8:
        return array.astype(dtype) / dtype(255)
    if array.dtype == np.uint16:
        return array.astype(dtype) / dtype(65535)
    return array.astype(dtype)


def _convert(array, mode):
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


def load_image(path, *, mode=None, index=0, dtype=np.float32):
    """Load an image file as an image :class:`Signal`.

    Parameters
    ----------
    mode : {None, "L", "RGB", "RGBA"}
        None keeps the file's channels (see the module docstring for the rules).
    index : int
        Frame of a multi-frame file.
    dtype : float32 or float64

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
    head = read_head(path)
    if not sniff(head) and extension(path) not in EXTENSIONS:
        raise LoadError(path, "unsupported", "not an image format (PNG, JPEG, GIF, BMP, TIFF, "
                        "WebP, PNM) by content or extension")
    try:
        array = iio.imread(path, index=index)
    except IndexError as exc:
        raise LoadError(path, "unsupported", f"no frame {index}: {exc}") from None
    except (OSError, ValueError, SyntaxError, RuntimeError, EOFError) as exc:
        message = str(exc)
        if "truncated" in message.lower() or isinstance(exc, EOFError):
            raise LoadError(path, "truncated", message) from None
        if sniff(head):
            raise LoadError(path, "corrupt", message) from None
        raise wrong_extension_or(path, "image", "image", message) from None
    array = np.asarray(array)
    source_dtype = array.dtype
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
