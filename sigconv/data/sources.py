"""Where preparation gets its items: source folders, and the converter built on sigconv.io."""
from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .._validation import check_int, check_positive_real
from ..errors import ArgumentError
from .prepare import PrepareSummary, Source
from ..typing import PathLike, SignalKind

if TYPE_CHECKING:
    from ..io import Signal

__all__ = ["folder_sources", "load_item", "signal_metadata", "hashed_split", "prepare_folder",
           "EXTENSIONS", "item_id", "relative_source"]

_HIDDEN = (".", "_")


def hashed_split(key: object, *, test: float = 0.1, validation: float = 0.1) -> str:
    """A stable split for ``key``: the same key always lands in the same split.

    The first 8 bytes of SHA-256 of the key, as a fraction in [0, 1), choose
    ``"test"``, ``"validation"`` or ``"train"``.
    """
    fraction = int.from_bytes(hashlib.sha256(str(key).encode()).digest()[:8], "big") / 2**64
    if fraction < test:
        return "test"
    if fraction < test + validation:
        return "validation"
    return "train"


def item_id(relative: str) -> str:
    """A store id from a path relative to the source folder: no extension, no separators."""
    stem = os.path.splitext(os.path.normpath(relative))[0]
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem.replace(os.sep, "__"))


def relative_source(relative: str, path: str, label: Any = None, split: str | None = None, *,
                    test: float = 0.1, validation: float = 0.1) -> Source:
    """The :class:`Source` of ``path``, known as ``relative`` under its folder: id
    :func:`item_id`, fields ``label``, ``split`` (:func:`hashed_split` when not given) and
    ``relative_path``."""
    split = split or hashed_split(relative, test=test, validation=validation)
    return Source(item_id(relative), path,
                  {"label": label, "split": split, "relative_path": relative})


def _inside_root(path: object, root: str, labels: PathLike, line: int) -> str:
    """A labels file's ``path`` cell, checked to name a file inside the source folder.

    Lexical: an empty, absolute, drive-qualified or ``..``-escaping path is
    refused with :class:`ArgumentError` naming the labels file, its line, the
    path and the folder.  Symbolic links placed inside the folder by its owner
    are followed, as they are when the folder is walked without a labels file.
    """
    if not isinstance(path, str) or not path.strip() or os.path.normpath(path) == ".":
        raise ArgumentError(f"labels file {os.fspath(labels)!r}, line {line}: the path "
                            f"{path!r} names no file; expected a file relative to {root!r}")
    normal = os.path.normpath(path)
    parts = normal.replace(os.altsep or os.sep, os.sep).split(os.sep)
    if os.path.isabs(path) or os.path.splitdrive(path)[0] or parts[0] == "..":
        raise ArgumentError(f"labels file {os.fspath(labels)!r}, line {line}: the path "
                            f"{path!r} is outside the source folder {root!r}; paths in a "
                            "labels file are relative to that folder and stay inside it")
    return path  # as written: its item id and hashed split stay what they were


def folder_sources(root: PathLike, *, labels: PathLike | None = None,
                   extensions: Iterable[str] | None = None, test: float = 0.1,
                   validation: float = 0.1) -> list[Source]:
    """Sources of a plain folder: a class per sub-folder, or a labels file.

    Parameters
    ----------
    root : str or os.PathLike
    labels : str or os.PathLike, optional
        A CSV file with a header ``path,label[,split]`` (paths relative to
        ``root``; a path that is absolute or climbs out of ``root`` with
        ``..`` is refused with :class:`ArgumentError` naming its line).
        Without it, each sub-folder of ``root`` is a class named after it,
        and files directly in ``root`` have no label.
    extensions : iterable of str, optional
        Only files with these extensions (e.g. ``{".wav", ".flac"}``).
    test, validation : float
        Fractions for :func:`hashed_split` when no split is given.

    Returns
    -------
    list of Source
        Sorted by id; ``fields`` hold ``label``, ``split`` and ``relative_path``.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise ArgumentError(f"source folder {root!r} does not exist or is not a folder")
    extensions = None if extensions is None else {e.lower() for e in extensions}
    entries: list[tuple[str, Any, str | None]] = []
    if labels is not None:
        with open(labels, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"path", "label"} <= set(reader.fieldnames):
                raise ArgumentError(f"labels file {labels!r} needs a header with 'path' and "
                                    f"'label' columns, got {reader.fieldnames}")
            for row in reader:
                path = _inside_root(row["path"], root, labels, reader.line_num)
                entries.append((path, row["label"], row.get("split") or None))
    else:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(_HIDDEN))
            relative_folder = os.path.relpath(folder, root)
            label = None if relative_folder == "." else relative_folder.split(os.sep)[0]
            for name in sorted(files):
                if not name.startswith(_HIDDEN):
                    entries.append((os.path.normpath(os.path.join(relative_folder, name)),
                                    label, None))
    sources: list[Source] = []
    for relative, label, split in entries:
        if extensions is not None and os.path.splitext(relative)[1].lower() not in extensions:
            continue
        sources.append(relative_source(relative, os.path.join(root, relative), label, split,
                                       test=test, validation=validation))
    ids = [s.id for s in sources]
    if len(set(ids)) != len(ids):
        raise ArgumentError("two source files map to the same item id; rename one of them")
    return sorted(sources, key=lambda s: s.id)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def signal_metadata(signal: Signal) -> dict[str, Any]:
    """The metadata of a :class:`sigconv.io.Signal` as a JSON-serialisable dict."""
    from ..io.signal import FIELDS

    record: dict[str, Any] = {"kind": signal.kind, "axes": list(signal.axes)}
    for name in FIELDS:
        if name in ("joints", "path"):  # joints below; a prepared item names its source
            continue
        value = getattr(signal, name, None)
        if value is not None:
            record[name] = _jsonable(value)
    joints = getattr(signal, "joints", None)
    if joints:
        record["joints"] = [{"name": j.name, "parent": j.parent} for j in joints]
    return record


def load_item(path: PathLike, *, kind: SignalKind | None = None,
              spectrogram: dict[str, Any] | None = None, size: tuple[int, int] | None = None,
              spacing: float | tuple[float, float, float] | None = None,
              dtype: DTypeLike = np.float32,
              **options: Any) -> tuple[NDArray[Any], dict[str, Any]]:
    """Converter for :func:`~sigconv.data.prepare`: load a file with :func:`sigconv.io.load`.

    Parameters
    ----------
    path : str
    kind : str, optional
        The loader to use (default: recognised from the file).
    spectrogram : dict, optional
        Turn the loaded audio into a spectrogram with these options of
        :func:`sigconv.io.spectrogram` (e.g. ``{"kind": "log-mel"}``).
    size : (int, int), optional
        Images and video: resize to (height, width) pixels (video frames
        while they are decoded, by FFmpeg's area filter; images by linear
        interpolation, :meth:`sigconv.io.Signal.resize`).
    spacing : float or (float, float, float), optional
        Volumes: resample to this voxel size in mm (one value, or depth,
        height, width; :meth:`sigconv.io.Signal.resample`).
    dtype : dtype of the stored array.
    **options
        Passed to the loader (``sample_rate=``, ``mono=``, ``mode=``, ...).

    Returns
    -------
    (ndarray, dict)
        The ``(C, *spatial)`` data and :func:`signal_metadata`.  Fix the
        options with :func:`functools.partial`: the result is picklable.
    """
    from .. import io

    if size is not None and kind == "video":
        options["size"] = size  # decoded at that size: full-size frames are never held
        size = None
    signal = io.load(path, kind=kind, **options)
    if spacing is not None:
        signal = signal.resample(spacing=spacing)
    if size is not None:
        height, width = size
        signal = signal.resize(height=height, width=width)
    if spectrogram is not None:
        signal = io.spectrogram(signal, **spectrogram)
    metadata = signal_metadata(signal)
    if spectrogram is not None:  # how to make the same input again (sigconv predict)
        metadata["spectrogram"] = dict(spectrogram)
    return np.asarray(signal.data, dtype=dtype), metadata


#: File extensions each kind of source folder holds (upper or lower case).
EXTENSIONS = {
    "waveform": {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"},
    "spectrogram": {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"},
    "skeleton": {".bvh"},
    "image": {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"},
    "volume": {".nii", ".gz", ".dcm", ".npy", ".npz"},
    "video": {".mp4", ".mov", ".avi", ".mkv", ".webm"},
}


#: The options of :func:`load_item` and its loaders that only some kinds take.
KIND_OPTIONS = {
    "sample_rate": ("waveform", "spectrogram"),
    "mono": ("waveform", "spectrogram"),
    "mode": ("image", "video"),
    "size": ("image", "video"),
    "spacing": ("volume",),
}


def _check_load_options(kind: str, spectrogram: dict[str, Any] | None,
                        options: dict[str, Any]) -> None:
    """Refuse (ArgumentError) options that ``kind`` does not take, before any file is read."""
    for name, kinds in KIND_OPTIONS.items():
        if options.get(name) is not None and kind not in kinds:
            raise ArgumentError(f"{name}={options[name]!r} is an option of {' and '.join(kinds)} "
                                f"items, not of {kind} items")
    if spectrogram is not None and kind not in ("waveform", "spectrogram"):
        raise ArgumentError(f"spectrogram options are for audio (kind 'spectrogram'), not for "
                            f"{kind} items")
    for name in ("n_fft", "hop_length", "n_mels", "n_mfcc"):
        value = (spectrogram or {}).get(name)
        if value is not None:
            check_int(value, f"spectrogram {name}")
    if options.get("sample_rate") is not None:
        check_positive_real(options["sample_rate"], "sample_rate", " (Hz)")
    if options.get("size") is not None:
        size = options["size"]
        if (not isinstance(size, (tuple, list)) or len(size) != 2
                or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool)
                           and n >= 1 for n in size)):
            raise ArgumentError(f"size must be (height, width), two ints >= 1, got {size!r}")
    if options.get("spacing") is not None:
        spacing = np.atleast_1d(np.asarray(options["spacing"], dtype=object))
        if len(spacing) not in (1, 3) or not all(
                isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))
                and np.isfinite(v) and v > 0 for v in spacing):
            raise ArgumentError(f"spacing must be one voxel size in mm > 0 or three (depth, "
                                f"height, width), got {options['spacing']!r}")
    if options.get("mode") is not None:
        modes = ("L", "RGB", "RGBA") if kind == "image" else ("L", "RGB")
        if options["mode"] not in modes:
            raise ArgumentError(f"mode of {kind} items must be one of {', '.join(modes)}, got "
                                f"{options['mode']!r}")


def prepare_folder(source: PathLike, out: PathLike, *, kind: SignalKind,
                   labels: PathLike | None = None,
                   workers: int = 1, client: Any = None, progress: bool = True,
                   spectrogram: dict[str, Any] | None = None,
                   **load_options: Any) -> PrepareSummary:
    """Prepare a plain folder of ``kind`` files (class per sub-folder, or a labels file).

    ``kind`` chooses the loader and the file extensions
    (:data:`EXTENSIONS`); ``spectrogram`` (options of
    :func:`sigconv.io.spectrogram`: ``n_fft``, ``hop_length``, ``n_mels``,
    ...) turns audio into spectrograms, and is implied by
    ``kind="spectrogram"`` (default ``{"kind": "log-mel"}``); other options
    go to :func:`load_item` and the loader: ``sample_rate`` and ``mono``
    (audio), ``mode`` and ``size`` (images, video), ``spacing`` (volumes).
    An option the kind does not take is refused before any file is read.
    Returns the :class:`~sigconv.data.prepare.PrepareSummary`; items of
    different channel counts end the run with
    :class:`~sigconv.errors.ShapeError` (see :func:`~sigconv.data.prepare`).
    """
    import functools

    from .prepare import prepare

    if kind not in EXTENSIONS:
        listed = ", ".join(map(repr, EXTENSIONS))
        raise ArgumentError(f"kind must be one of {listed}; got {kind!r}")
    _check_load_options(kind, spectrogram, load_options)
    if load_options.get("size") is not None:
        load_options["size"] = tuple(int(n) for n in load_options["size"])
    sources = folder_sources(source, labels=labels, extensions=EXTENSIONS[kind])
    if kind == "spectrogram":
        spectrogram = dict(spectrogram or {})
        spectrogram.setdefault("kind", "log-mel")
        loader_kind: SignalKind = "waveform"
    else:
        loader_kind = kind
    convert = functools.partial(load_item, kind=loader_kind, spectrogram=spectrogram,
                                **load_options)
    return prepare(sources, out, convert, workers=workers, client=client, progress=progress)
