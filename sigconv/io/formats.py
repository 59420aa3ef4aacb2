"""The kinds and the file formats :mod:`sigconv.io` reads: one ordered registry.

:data:`FORMATS` lists every format once, as :class:`Format` (name, kind,
sniff, extensions, reader), in the order :func:`sigconv.io.load` tries them,
in the spirit of nibabel's ``imageclasses`` list and ``loadsave.load``:

1. the content: the first format whose ``sniff(head, path)`` says yes;
2. else the extension: the first format that lists it;
3. else LoadError "cannot work out file type".

The order matters where two formats could claim the same bytes: a DICOM
file's 128-byte preamble may hold a TIFF header, an Ogg file with Theora
video may also carry Vorbis audio, so volumes come first and audio last.

:data:`KIND_TABLE` lists the six kinds once (name, axes, the reader used
when ``load(kind=...)`` names the kind); :data:`KINDS` and :data:`AXES` are
derived from it.

This module is a leaf: it imports nothing from :mod:`sigconv.io` but
``_common``, so that every reader can use the sniffers (to tell a wrong
extension from a damaged file) without importing the dispatcher or another
reader.  Readers are therefore named, not imported: ``"volume.load_nifti"``
is the function ``load_nifti`` of :mod:`sigconv.io.volume`; the dispatcher
(:mod:`sigconv.io.loaders`) resolves the names once, at import.
"""
from __future__ import annotations

import collections
import pathlib
import zlib

from ._common import LoadError, extension, read_head

__all__ = ["Format", "FORMATS", "BY_NAME", "extensions", "Kind", "KIND_TABLE", "KINDS", "AXES", "recognise",
           "content_kind", "sniff_content", "image_extension", "nifti_class", "gunzip_head",
           "wrong_extension_or"]


# -- the sniffers: one signature, sniff(head, path) -> bool --------------------------
def _dicom_series(head: bytes, path: pathlib.Path) -> bool:
    return path.is_dir()


def _dicom(head: bytes, path: pathlib.Path) -> bool:
    return len(head) >= 132 and head[128:132] == b"DICM"


def gunzip_head(head: bytes, size: int = 560) -> bytes:
    """The first ``size`` bytes of the gzip stream that ``head`` starts (b"" if none)."""
    try:
        return zlib.decompressobj(31).decompress(head, size)
    except zlib.error:
        return b""


def nifti_class(header: bytes) -> str | None:
    """"Nifti1Image", "Nifti2Image" (single files), "pair" (.hdr/.img) or None from the
    first bytes of an (uncompressed) NIfTI header."""
    if len(header) >= 348 and header[344:348] == b"n+1\x00":
        return "Nifti1Image"
    if len(header) >= 8 and header[4:8] == b"n+2\x00":
        return "Nifti2Image"
    if (len(header) >= 348 and header[344:348] == b"ni1\x00") or header[4:8] == b"ni2\x00":
        return "pair"
    return None


def _nifti(head: bytes, path: pathlib.Path) -> bool:
    if nifti_class(head) is not None:
        return True
    if head[:2] != b"\x1f\x8b":
        return False
    name = path.name.lower()
    return (name.endswith(".nii.gz") or name.endswith(".hdr.gz")
            or nifti_class(gunzip_head(head)) is not None)


def _npy(head: bytes, path: pathlib.Path) -> bool:
    return head[:6] == b"\x93NUMPY"


def _npz(head: bytes, path: pathlib.Path) -> bool:
    if head[:4] != b"PK\x03\x04":
        return False
    first = head[30:30 + int.from_bytes(head[26:28], "little")]  # a zip whose first member
    return path.name.lower().endswith(".npz") or first.endswith(b".npy")  # is an .npy array


def _bvh(head: bytes, path: pathlib.Path) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:9].upper() == b"HIERARCHY"


def image_extension(head: bytes) -> str | None:
    """The extension of the image format the first bytes are (".png", ...), or None."""
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if head[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if head[:2] == b"BM":
        return ".bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return ".tif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if len(head) > 2 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return ".ppm"
    return None


def _image(head: bytes, path: pathlib.Path) -> bool:
    return image_extension(head) is not None


def _video(head: bytes, path: pathlib.Path) -> bool:
    if head[4:8] == b"ftyp":
        return head[8:12] not in (b"M4A ", b"M4B ", b"M4P ", b"F4A ")  # audio-only MP4 brands
    return (head[:4] == b"\x1aE\xdf\xa3"                       # Matroska / WebM
            or (head[:4] == b"RIFF" and head[8:11] == b"AVI")
            or head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")  # MPEG-PS
            or head[:3] == b"FLV"
            or (head[:4] == b"OggS" and b"\x80theora" in head[:128])
            or head[4:8] in (b"moov", b"mdat", b"wide", b"free"))


def _audio(head: bytes, path: pathlib.Path) -> bool:
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return True
    if head[:4] in (b"fLaC", b"RF64", b".snd", b"caff") or head[:3] == b"ID3":
        return True
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return True
    if head[:4] == b"OggS":
        # Ogg holding Vorbis, Opus, FLAC or Speex (not Theora video)
        return any(tag in head[:128] for tag in (b"\x01vorbis", b"OpusHead", b"\x7fFLAC", b"Speex"))
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06):
        return True  # MPEG audio frame sync (layer bits non-zero)
    return False


# -- the registry -----------------------------------------------------------------
class Format(collections.namedtuple("Format", "name kind sniff extensions reader")):
    """One file format: its ``name``, the ``kind`` of Signal it gives, ``sniff(head,
    path)`` (True when the first bytes are this format's), the lower-case
    ``extensions`` it goes by, and its ``reader`` ("module.function")."""

    __slots__ = ()

    def claims(self, head: bytes, path: pathlib.Path) -> bool:
        """True when the content or, failing that, the extension is this format's."""
        return self.sniff(head, path) or extension(path) in self.extensions


#: Every format, in the order load() tries them (content first, then extension).
FORMATS = (
    Format("DICOM series", "volume", _dicom_series, (), "volume.load_dicom"),
    Format("DICOM", "volume", _dicom, (".dcm", ".dicom", ".ima"), "volume.load_dicom"),
    Format("NIfTI", "volume", _nifti, (".nii", ".nii.gz", ".hdr", ".img"), "volume.load_nifti"),
    Format("NumPy", "volume", _npy, (".npy",), "volume.load_numpy_volume"),
    Format("NumPy archive", "volume", _npz, (".npz",), "volume.load_numpy_volume"),
    Format("BVH", "skeleton", _bvh, (".bvh",), "skeleton.load_skeleton"),
    Format("image", "image", _image, (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff",
                                      ".webp", ".ppm", ".pgm", ".pbm", ".ico"),
           "image.load_image"),
    Format("video", "video", _video, (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg",
                                      ".mpeg", ".ts", ".ogv", ".flv", ".wmv", ".3gp"),
           "video.load_video"),
    Format("audio", "waveform", _audio, (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus",
                                         ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd",
                                         ".caf", ".w64", ".m4a", ".aac", ".wma"),
           "audio.load_audio"),
)

#: The formats by name.
BY_NAME = {fmt.name: fmt for fmt in FORMATS}

#: One kind of Signal: its ``name``, its ``axes`` (the first always "channel") and
#: the ``reader`` ("module.function") of ``load(kind=name)``.
Kind = collections.namedtuple("Kind", "name axes reader")

#: The six kinds of the chapter's table.  A spectrogram has no file format of
#: its own: it is computed from audio, and read only when named.
KIND_TABLE = (
    Kind("waveform", ("channel", "time"), "audio.load_audio"),
    Kind("spectrogram", ("channel", "freq", "time"), "spectrogram.load_spectrogram"),
    Kind("skeleton", ("channel", "time"), "skeleton.load_skeleton"),
    Kind("image", ("channel", "height", "width"), "image.load_image"),
    Kind("volume", ("channel", "depth", "height", "width"), "volume.load_volume"),
    Kind("video", ("channel", "time", "height", "width"), "video.load_video"),
)

#: The kind names, in the table's order.
KINDS = tuple(kind.name for kind in KIND_TABLE)

#: Axis names of each kind.
AXES = {kind.name: kind.axes for kind in KIND_TABLE}


def extensions(kind: str) -> tuple[str, ...]:
    """Every extension the formats of ``kind`` go by, in registry order."""
    return tuple(ext for fmt in FORMATS if fmt.kind == kind for ext in fmt.extensions)


def recognise(path: pathlib.Path, head: bytes, kind: str | None = None) -> Format | None:
    """The :class:`Format` of ``path`` by content first, by extension second, or None.

    ``kind`` restricts the search to the formats of that kind.
    """
    formats = FORMATS if kind is None else tuple(f for f in FORMATS if f.kind == kind)
    for fmt in formats:
        if fmt.sniff(head, path):
            return fmt
    ext = extension(path)
    for fmt in formats:
        if ext in fmt.extensions:
            return fmt
    return None


def content_kind(path: pathlib.Path, head: bytes) -> str | None:
    """The kind the first bytes ``head`` of ``path`` say it is, or None (no extension used)."""
    for fmt in FORMATS:
        if fmt.sniff(head, path):
            return fmt.kind
    return None


def sniff_content(path: pathlib.Path) -> str | None:
    """The kind a file's first bytes say it is, or None (no extension used)."""
    try:
        return content_kind(path, read_head(path))
    except LoadError:
        return None


def wrong_extension_or(path: pathlib.Path, kind: str, expected: str, detail: str) -> LoadError:
    """A LoadError for a file a reader of ``kind`` could not read.

    When the file's content says it is another kind than its extension
    claims (:func:`sniff_content`), the cause is "wrong extension";
    otherwise ``detail`` is reported as corrupt.
    """
    actual = sniff_content(path)
    if actual is not None and actual != kind:
        return LoadError(path, "wrong extension",
                         f"read as {kind} ({expected}) but the content looks like a {actual} file")
    return LoadError(path, "corrupt", detail)
