"""What every reader shares: the error classes, the file checks, the sniffing helpers."""
from __future__ import annotations

import importlib
import numbers
import os
import pathlib
import stat
from types import ModuleType
from typing import Any

from ..errors import ArgumentError, SigconvError
from ..typing import PathLike

__all__ = ["LoadError", "MissingDependencyError", "MAX_BYTES", "Inspected", "check_file",
           "inspect", "read_head", "require", "check_max_bytes", "limit", "library_error",
           "extension"]

#: Default ``max_bytes`` of every loader: the most bytes of decoded data (the
#: returned array, or the file's decoded content when that is larger) a loader
#: allocates before refusing the file with ``LoadError`` (cause "too large").
#: A header can claim any size and a 2 MB archive can inflate to gigabytes;
#: the limit turns both into a clear error instead of a ``MemoryError`` or a
#: machine that swaps.  Pass ``max_bytes=`` to a loader to raise it, or
#: ``max_bytes=None`` for no limit.
MAX_BYTES = 2 * 2**30

#: bytes read from the start of a file to recognise its format; files up to
#: this size (most short clips) are read whole in that one read.
HEAD_SIZE = 64 * 1024


class LoadError(SigconvError, OSError):
    """A file could not be loaded.

    ``str(error)`` names the file and the cause; the attributes ``path`` and
    ``cause`` (one of ``"missing"``, ``"empty"``, ``"truncated"``,
    ``"corrupt"``, ``"unsupported"``, ``"wrong extension"``, ``"timeout"``,
    ``"crashed"``, ``"unreadable"``) make it checkable by programs.  It derives
    from :class:`OSError`, so ``except OSError`` also catches it.
    """

    def __init__(self, path: PathLike | None, cause: str, detail: str) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.cause = cause
        self.detail = detail
        super().__init__(f"cannot load {self.path!r}: {cause}: {detail}")

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.cause, self.detail))


class MissingDependencyError(SigconvError, ImportError):
    """An optional package that a function needs is not installed."""


def _human(nbytes: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:.3g} {unit}"
    return f"{nbytes} bytes"


def check_max_bytes(max_bytes: float | None) -> int | None:
    """``max_bytes`` as an int (or None), or ArgumentError."""
    if max_bytes is None:
        return None
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Real) or not max_bytes > 0:
        raise ArgumentError(f"max_bytes must be a positive number of bytes or None (no limit), "
                            f"got {max_bytes!r}")
    if max_bytes == float("inf"):
        return None
    return int(max_bytes)


def limit(path: PathLike, nbytes: int, max_bytes: int | None, what: str) -> None:
    """Raise LoadError (cause "too large") when ``nbytes`` of ``what`` exceed ``max_bytes``."""
    if max_bytes is not None and nbytes > max_bytes:
        raise LoadError(path, "too large", f"{what} needs {nbytes} bytes ({_human(nbytes)}), "
                        f"more than max_bytes={max_bytes} ({_human(max_bytes)}); pass a larger "
                        "max_bytes= (or max_bytes=None) if the file is meant to be that big")


def library_error(path: PathLike, library: str, exc: BaseException,
                  cause: str = "corrupt") -> LoadError:
    """A LoadError for an exception ``library`` raised on the file's content.

    MemoryError (a header claiming more than can be allocated) becomes "too
    large"; everything else ``cause``, naming the library and its exception.
    """
    if isinstance(exc, LoadError):
        return exc
    if isinstance(exc, MemoryError):
        return LoadError(path, "too large", f"{library} ran out of memory reading it "
                         f"({exc or 'MemoryError'}): the file claims more data than this "
                         "machine can hold")
    return LoadError(path, cause, f"{library} could not read it: {type(exc).__name__}: {exc}")


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the pip extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{what} needs the package {module!r}, which is not installed "
            f"({exc}); install it with: pip install 'sigconv[{extra}]'") from None


class Inspected(os.PathLike):
    """A file :func:`inspect` has checked and read the first bytes of.

    :func:`sigconv.io.load` hands it to the reader as the path, so that the
    reader's own :func:`check_file` / :func:`inspect` neither stats nor reads
    the file again (``path``: a :class:`pathlib.Path`; ``size``: None for a
    directory; ``head``: the first bytes, all of a file up to HEAD_SIZE).
    """

    __slots__ = ("path", "size", "head")

    def __init__(self, path: pathlib.Path, size: int | None, head: bytes) -> None:
        self.path, self.size, self.head = path, size, head

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __repr__(self) -> str:
        return f"Inspected({os.fspath(self.path)!r})"


def _stat(path: PathLike | Inspected, directory_ok: bool) -> tuple[pathlib.Path, int | None]:
    if isinstance(path, Inspected):
        if path.size is None and not directory_ok:
            raise LoadError(path.path, "unsupported", "is a directory, not a file")
        return path.path, path.size
    try:
        path = pathlib.Path(os.fspath(path))
    except TypeError:
        raise LoadError(repr(path), "unsupported", "path must be a str or os.PathLike, "
                        f"got {type(path).__name__}") from None
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise LoadError(path, "missing", "no such file or directory") from None
    except OSError as exc:
        raise LoadError(path, "unreadable", str(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        if directory_ok:
            return path, None
        raise LoadError(path, "unsupported", "is a directory, not a file")
    if info.st_size == 0:
        raise LoadError(path, "empty", "the file has 0 bytes")
    return path, info.st_size


def check_file(path: PathLike | Inspected, *, directory_ok: bool = False) -> pathlib.Path:
    """Return ``path`` as a :class:`pathlib.Path` after checking it exists and is not empty."""
    return _stat(path, directory_ok)[0]


def inspect(path: PathLike | Inspected, *, directory_ok: bool = False,
            head_size: int = HEAD_SIZE) -> tuple[pathlib.Path, int | None, bytes]:
    """One stat and one read: ``(Path, size, head)``; a file no longer than ``head_size``
    is read whole (size is None and head is ``b""`` for a directory)."""
    if isinstance(path, Inspected) and (path.size is None or len(path.head) >= min(path.size,
                                                                                   head_size)):
        _stat(path, directory_ok)
        return path.path, path.size, path.head[:head_size]
    path, size = _stat(path, directory_ok)
    if size is None:
        return path, None, b""
    try:
        with open(path, "rb") as f:
            head = f.read(head_size)
    except OSError as exc:
        raise LoadError(path, "unreadable", str(exc)) from None
    return path, size, head


def read_head(path: pathlib.Path, size: int = 512) -> bytes:
    """The first ``size`` bytes of a file (``b""`` for a directory)."""
    if path.is_dir():
        return b""
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError as exc:
        raise LoadError(path, "unreadable", str(exc)) from None


def extension(path: pathlib.Path) -> str:
    """Lower-case suffix of ``path`` including compound ones like ``.nii.gz``."""
    name = path.name.lower()
    for compound in (".nii.gz", ".hdr.gz", ".img.gz"):
        if name.endswith(compound):
            return compound
    return path.suffix.lower()

