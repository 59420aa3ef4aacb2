"""`load`: recognise a file's format (content first, extension second) and call its reader.

One loop over the registry :data:`sigconv.io.formats.FORMATS`, as nibabel's
``loadsave.load`` loops over ``imageclasses``: check that the file exists and
is not empty, ask each format whether the content is its own, then whether
the extension is, otherwise "cannot work out file type".  The readers never
call back here: they tell a wrong extension from a damaged file with the
registry's sniffers (:func:`sigconv.io.formats.wrong_extension_or`).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._validation import check_choice
from ._common import (MAX_BYTES, Inspected, LoadError, check_file, check_max_bytes, inspect,
                      library_error, read_head)
from .formats import FORMATS, KIND_TABLE, KINDS, recognise, sniff_content
from ..typing import PathLike, SignalKind

if TYPE_CHECKING:
    from .signal import Signal

__all__ = ["load", "detect", "sniff_content"]


def _resolve(name: str) -> Callable[..., Any]:
    """The function ``"module.function"`` of a reader module of sigconv.io."""
    module, _, function = name.partition(".")
    return getattr(importlib.import_module(f"{__package__}.{module}"), function)


#: The reader of each format (by name) and of each kind named with ``kind=``.
_FORMAT_READERS = {fmt.name: _resolve(fmt.reader) for fmt in FORMATS}
_KIND_READERS = {kind.name: _resolve(kind.reader) for kind in KIND_TABLE}

_RECOGNISED = [k for k in KINDS if any(fmt.kind == k for fmt in FORMATS)]
_UNKNOWN = ("cannot work out file type (the content matches no reader and the extension is "
            f"not one of a {', '.join(_RECOGNISED[:-1])} or {_RECOGNISED[-1]})")


def detect(path: PathLike) -> SignalKind:
    """The kind :func:`load` would read ``path`` as: by content first, by extension second.

    Raises :class:`LoadError` when neither tells.
    """
    path = check_file(path, directory_ok=True)
    fmt = recognise(path, read_head(path))
    if fmt is None:
        raise LoadError(path, "unsupported", _UNKNOWN)
    return fmt.kind


def load(path: PathLike, *, kind: SignalKind | None = None, max_bytes: float | None = MAX_BYTES,
         **options: Any) -> Signal:
    """Load any supported file as a :class:`~sigconv.io.Signal`.

    Parameters
    ----------
    path : str or os.PathLike
        A file, or a directory holding a DICOM series.
    kind : str, optional
        Force a reader: "waveform", "spectrogram" (audio then
        :func:`~sigconv.io.spectrogram`), "skeleton", "image", "volume",
        "video".  Default: recognised from the content, then the extension
        (see :data:`sigconv.io.formats.FORMATS` for the order).
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
    max_bytes = check_max_bytes(max_bytes)
    path, size, head = inspect(path, directory_ok=True)
    if kind is None:
        fmt = recognise(path, head)
        if fmt is None:
            raise LoadError(path, "unsupported", _UNKNOWN)
        kind, reader = fmt.kind, _FORMAT_READERS[fmt.name]
    else:
        check_choice(kind, "kind", KINDS)
        reader = _KIND_READERS[kind]
    try:
        # the reader gets the checked file and its head: no second stat or read
        return reader(Inspected(path, size, head), max_bytes=max_bytes, **options)
    except (MemoryError, RecursionError) as exc:  # the last net: no reader should let these out
        raise library_error(path, f"the {kind} reader", exc) from None
