"""`load`: recognise a file's kind (content first, extension second) and call its reader."""
from .._validation import check_choice
from . import audio, image, skeleton, video, volume
from ._common import (MAX_BYTES, LoadError, check_file, check_max_bytes, extension, inspect,
                      library_error, read_head)
from .signal import KINDS

__all__ = ["load", "detect", "sniff_content"]


def _content_kind(path, head):
    if path.is_dir():
        return "volume"  # a DICOM series
    if volume.sniff_format(head, path):
        return "volume"
    if skeleton.sniff(head):
        return "skeleton"
    if image.sniff(head):
        return "image"
    if video.sniff(head):
        return "video"
    if audio.sniff(head):
        return "waveform"
    return None


def _extension_kind(path):
    ext = extension(path)
    for kind, extensions in (("volume", volume.EXTENSIONS), ("skeleton", (".bvh",)),
                             ("image", image.EXTENSIONS), ("video", video.EXTENSIONS),
                             ("waveform", audio.EXTENSIONS)):
        if ext in extensions:
            return kind
    return None


def sniff_content(path):
    """The kind a file's first bytes say it is, or None (no extension used)."""
    try:
        return _content_kind(path, read_head(path))
    except LoadError:
        return None


def detect(path):
    """The kind :func:`load` would read ``path`` as: by content first, by extension second.

    Raises :class:`LoadError` when neither tells.
    """
    path = check_file(path, directory_ok=True)
    kind = _content_kind(path, read_head(path)) or _extension_kind(path)
    if kind is None:
        raise LoadError(path, "unsupported", "cannot work out file type (the content matches no "
                        "reader and the extension is not one of a waveform, skeleton, image, "
                        "volume or video)")
    return kind


def load(path, *, kind=None, max_bytes=MAX_BYTES, **options):
    """Load any supported file as a :class:`~sigconv.io.Signal`.

    Parameters
    ----------
    path : str or os.PathLike
        A file, or a directory holding a DICOM series.
    kind : str, optional
        Force a reader: "waveform", "spectrogram" (audio then
        :func:`~sigconv.io.spectrogram`), "skeleton", "image", "volume",
        "video".  Default: recognised from the content, then the extension.
    max_bytes : int or None
        The most bytes of decoded data the reader may allocate (the returned
        array, or the file's decoded content when that is larger); default
        :data:`sigconv.io.MAX_BYTES` (2 GiB); None for no limit.  A file
        that needs more is refused with LoadError (cause "too large") before
        anything that size is allocated.
    **options
        Passed to the reader (e.g. ``sample_rate=``, ``radians=``, ``mode=``,
        ``stop=``).

    Raises
    ------
    LoadError
        Missing, empty, unrecognised, truncated, corrupt or too large file;
        nothing a file holds raises anything else.
    """
    from .spectrogram import load_spectrogram

    max_bytes = check_max_bytes(max_bytes)
    path, size, head = inspect(path, directory_ok=True)
    if kind is None:
        kind = _content_kind(path, head) or _extension_kind(path)
        if kind is None:
            raise LoadError(path, "unsupported", "cannot work out file type (the content "
                            "matches no reader and the extension is not one of a waveform, "
                            "skeleton, image, volume or video)")
    else:
        check_choice(kind, "kind", KINDS)
    reader = {"waveform": audio.load_audio, "spectrogram": load_spectrogram,
              "skeleton": skeleton.load_skeleton, "image": image.load_image,
              "volume": volume.load_volume, "video": video.load_video}[kind]
    try:
        if kind == "waveform":  # no second look at a small file
            return audio._load(path, size, head, max_bytes=max_bytes, **options)
        return reader(path, max_bytes=max_bytes, **options)
    except (MemoryError, RecursionError) as exc:  # the last net: no reader should let these out
        raise library_error(path, f"the {kind} reader", exc) from None
