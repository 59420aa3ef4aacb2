"""Atomic file writes, the one helper every writer of sigconv uses."""
from __future__ import annotations

import io
import os

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["atomic_write_bytes", "atomic_save_npy", "TEMP_PREFIX", "TEMP_SUFFIX"]

#: Temporary files are named ``.tmp-*.part`` in the destination's folder, so
#: that an interrupted writer's leftovers are recognisable and removable.
TEMP_PREFIX, TEMP_SUFFIX = ".tmp-", ".part"

# O_EXCL: never open an existing file (nor follow a symlink planted under the name);
# O_BINARY: no newline translation on Windows (0 elsewhere).
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _create_temp(folder: str) -> tuple[int, str]:
    """Create a new, empty temporary file in ``folder``; return ``(fd, path)``.

    Unlike :func:`tempfile.mkstemp`, which always gives mode 0600, the file is
    created with mode 0666 and the kernel takes the process's umask off it (and
    applies the folder's default ACL), exactly as for a file made by ``open(path,
    "w")``.  The umask is never read or changed, so other threads are unaffected.
    """
    for _ in range(100):
        temp = os.path.join(folder, TEMP_PREFIX + os.urandom(8).hex() + TEMP_SUFFIX)
        try:
            return os.open(temp, _FLAGS, 0o666), temp
        except FileExistsError:  # a 64-bit random name taken: try another
            continue
    raise FileExistsError(f"cannot create a temporary file in {folder!r}: 100 names taken")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temporary file in the same folder, fsync, replace.

    Readers see the old file or the new one, never a partial one, even if the
    process is killed at any moment; the temporary file is removed when the
    write fails.  The folder is fsynced afterwards so the rename survives a
    power loss where the file system allows it.

    The file gets the permissions of any newly created file: 0666 less the
    umask (0644 under the usual umask 022); a replaced file's own mode is not
    kept.
    """
    folder = os.path.dirname(os.path.abspath(path))
    handle, temp = _create_temp(folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    try:
        directory = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)


def atomic_save_npy(path: str | os.PathLike[str], array: ArrayLike) -> bytes:
    """Write ``array`` as a ``.npy`` file atomically (no pickles); return the bytes written."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    return data
