"""`load`: recognise a file's kind (content first, extension second) and call its reader."""
from .._validation import check_choice
from . import audio, image, skeleton, video, volume
from ._common import LoadError, check_file, extension, inspect, read_head
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


def load(path, *, kind=None, **options):
    """Load any supported file as a :class:`~sigconv.io.Signal`.

    Parameters
    ----------
    path : str or os.PathLike
        A file, or a directory holding a DICOM series.
    kind : str, optional
        Force a reader: "waveform", "spectrogram" (audio then
        :func:`~sigconv.io.spectrogram`), "skeleton", "image", "volume",
        "video".  Default: recognised from the content, then the extension.
    **options
        Passed to the reader (e.g. ``sample_rate=``, ``radians=``, ``mode=``,
        ``stop=``).

    Raises
    ------
    LoadError
        Missing, empty, unrecognised, truncated or corrupt file.
    """
    from .spectrogram import load_spectrogram

    path, size, head = inspect(path, directory_ok=True)
    if kind is None:
        kind = _content_kind(path, head) or _extension_kind(path)
        if kind is None:
            raise LoadError(path, "unsupported", "cannot work out file type (the content "
                            "matches no reader and the extension is not one of a waveform, "
                            "skeleton, image, volume or video)")
    else:
        check_choice(kind, "kind", KINDS)
    if kind == "waveform":
        return audio._load(path, size, head, **options)  # no second look at a small file
    reader = {"waveform": audio.load_audio, "spectrogram": load_spectrogram,
              "skeleton": skeleton.load_skeleton, "image": image.load_image,
              "volume": volume.load_volume, "video": video.load_video}[kind]
    return reader(path, **options)
