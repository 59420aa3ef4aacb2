"""An exclusive lock on a folder (a store being prepared, a run being trained).

:func:`folder_lock` holds an exclusive, non-blocking lock on the file
``<folder>/.lock`` for the duration of a ``with`` block.  A second process (or
a second lock in the same process) that asks for it while it is held fails at
once with the caller's error class, naming the folder, the lock file and,
when the holder has written it yet, the holder's pid and host; it never
waits.

The lock file stays in the folder (empty while no one holds the lock):
removing it on release would let a third process lock a new file while a
second one holds the old, unlinked one.  The lock belongs to the open file,
so it ends with the process however it ends, kill -9 included: there is no
stale lock to clean up (the note a killed holder leaves is overwritten by the
next holder the moment it takes the lock).

Platforms:

- POSIX: ``fcntl.flock``.  On Linux it also works on NFS (the kernel maps it
  to a byte-range lock on the server); a file system that does not support
  locking at all (``ENOLCK``, ``EOPNOTSUPP``) gives a :class:`RuntimeWarning`
  and the work goes on unlocked.
- Windows: ``msvcrt.locking`` on one byte past the holder's note, non-blocking
  (``LK_NBLCK``); the same contract, not exercised by the test suite, which
  runs on Linux.
"""
from __future__ import annotations

import contextlib
import errno
import os
import socket
import warnings
from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]  # the module is None where it does not exist
    import msvcrt

__all__ = ["folder_lock", "LOCK_NAME"]

#: Name of the lock file inside the locked folder.
LOCK_NAME = ".lock"

_BUSY = {errno.EAGAIN, errno.EACCES, getattr(errno, "EWOULDBLOCK", errno.EAGAIN)}
_UNSUPPORTED = {errno.ENOLCK, getattr(errno, "EOPNOTSUPP", errno.ENOLCK),
                getattr(errno, "ENOTSUP", errno.ENOLCK)}
_WINDOWS_OFFSET = 4096  # the locked byte: past the holder's note, which stays readable


def _try_lock(fd: int) -> bool:
    """Take the lock without waiting; True when taken, False when another holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            os.lseek(fd, _WINDOWS_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as exc:
        if exc.errno in _BUSY:
            return False
        raise
    return True


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, _WINDOWS_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _holder(path: str) -> str:
    """' (pid N on host H)' from the lock file's note, or '' when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            words = handle.read(200).split()
    except (OSError, UnicodeDecodeError):
        return ""
    if len(words) >= 2 and words[0] == "pid" and words[1].isdigit():
        host = f" on {words[3]}" if len(words) >= 4 and words[2] == "on" else ""
        return f" (pid {words[1]}{host})"
    return ""


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], *, what: str,
                error: type[Exception]) -> Iterator[str]:
    """Hold an exclusive lock on ``folder`` (which must exist) for a ``with`` block.

    Parameters
    ----------
    folder : str
        The folder to lock; the lock file is ``folder/.lock``.
    what : str
        What the folder is, for the message ("store", "run folder").
    error : type
        The exception class raised when another process holds the lock (or the
        lock file cannot be opened), with a message naming ``folder``, the lock
        file and the holder's pid when known.
    """
    folder = os.fspath(folder)
    path = os.path.join(folder, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise error(f"cannot lock {what} {folder!r}: cannot open its lock file {path!r}: "
                    f"{exc.strerror or exc}") from None
    try:
        try:
            taken = _try_lock(fd)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise error(f"cannot lock {what} {folder!r} ({path!r}): "
                            f"{exc.strerror or exc}") from None
            warnings.warn(f"the file system of {folder!r} does not support file locks "
                          f"({exc.strerror}); going on without a lock, so do not run a "
                          "second process on it at the same time", RuntimeWarning, stacklevel=3)
            taken = None
        if taken is False:
            raise error(f"{what} {folder!r} is in use by another process{_holder(path)}: "
                        f"it holds the lock file {path!r}. Wait for it to finish (or stop "
                        "it) and run again; two processes on one folder would undo each "
                        "other's work")
        if taken:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        try:
            yield path
        finally:
            if taken:
                os.ftruncate(fd, 0)  # no note of a holder that has gone
                _unlock(fd)
    finally:
        os.close(fd)
