"""Atomic file writes, the one helper every writer of sigconv uses."""
import io
import os
import tempfile

import numpy as np

__all__ = ["atomic_write_bytes", "atomic_save_npy", "TEMP_PREFIX", "TEMP_SUFFIX"]

#: Temporary files are named ``.tmp-*.part`` in the destination's folder, so
#: that an interrupted writer's leftovers are recognisable and removable.
TEMP_PREFIX, TEMP_SUFFIX = ".tmp-", ".part"


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` atomically: temporary file in the same folder, fsync, replace.

    Readers see the old file or the new one, never a partial one, even if the
    process is killed at any moment; the temporary file is removed when the
    write fails.  The folder is fsynced afterwards so the rename survives a
    power loss where the file system allows it.
    """
    folder = os.path.dirname(os.path.abspath(path))
    handle, temp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
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


def atomic_save_npy(path, array):
    """Write ``array`` as a ``.npy`` file atomically (no pickles); return the bytes written."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    return data
