"""Colour video through PyAV (FFmpeg), decoded in a watched subprocess.

A damaged video can make FFmpeg's decoders loop forever or crash the whole
process (PyAV issue #2344).  By default the frames are therefore decoded in a
child process (``python sigconv/io/_video_worker.py``, which imports
only av) that streams planar
RGB frames through a pipe; the caller converts them to float while the child
decodes the next ones (two cores work at once).  If the child stops making
progress for ``timeout`` seconds it is killed and :class:`LoadError` (cause
"timeout") is raised; if it dies, LoadError (cause "crashed") names the
signal.  ``isolate=False`` decodes in-process (no start-up cost of about
0.2 s, but no protection).

Memory: ``start``, ``stop``, ``step`` and ``size`` are applied while
decoding, so only the frames asked for, at the size asked for, are ever
held; :func:`iter_video` yields chunks of frames so a long video never has
to fit in memory at all.
"""
from __future__ import annotations

import json
import mmap
import numbers
import os
import select
import signal as _signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Literal
from typing import Any

import numpy as np
from numpy.typing import DTypeLike
from numpy.typing import NDArray

from ..errors import ArgumentError
from .._validation import check_choice, check_int
from ._common import MAX_BYTES, LoadError, check_file, check_max_bytes, limit, read_head
from ._video_worker import decode_frames as _decode
from ._video_worker import plane_array as _plane_array
from .formats import BY_NAME, wrong_extension_or
from .signal import Signal
from ..typing import PathLike

__all__ = ["load_video", "iter_video", "probe_video", "EXTENSIONS"]

_VIDEO = BY_NAME["video"]

#: The extensions of video files (:data:`sigconv.io.formats.FORMATS`).
EXTENSIONS = _VIDEO.extensions


# -- decoding: _video_worker.decode_frames (in the child, or in-process) ------------


# -- the isolated reader ---------------------------------------------------------
#: the child runs this file as a script: it imports only numpy and av, not sigconv.
_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_video_worker.py")

#: frames in flight between the child and the caller.
SLOTS = 16

#: uint8 output of known length: the child writes into the caller's array itself.
_DIRECT = True


def _worker_env():
    """The child's environment, controlled here rather than inherited as it is.

    Python's own variables (``PYTHONUNBUFFERED``, ``PYTHONSTARTUP``,
    ``PYTHONINSPECT``, ``PYTHONWARNINGS``, ...) are dropped, so the child
    behaves the same on every machine; ``PYTHONPATH`` is set to this process's
    ``sys.path`` so the child finds PyAV wherever this process found it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


class _Worker:
    """A child process decoding frames into a shared ring of ``SLOTS`` frame buffers.

    The child sends (index, slot) pairs through its stdout pipe once a frame
    is in the slot; the caller copies or converts the frame out of the slot
    and hands the slot back with one byte on the child's stdin.  Frames thus
    cross between the processes through shared memory, not through the pipe.
    """

    def __init__(self, path, options, timeout):
        self.path = path
        self.timeout = timeout
        self.mapping: mmap.mmap | None = None
        self.ring: NDArray[np.uint8] | None = None  # the frames' slots, once the header is read
        self.closed = False
        # shared memory the child sizes once it knows the frame size
        if hasattr(os, "memfd_create"):
            self.shared = None
            self.shared_fd = os.memfd_create("sigconv-video")
        else:  # pragma: no cover - non-Linux POSIX
            self.shared = tempfile.TemporaryFile()
            self.shared_fd = self.shared.fileno()
        # stderr goes to a file: FFmpeg's log could otherwise fill a pipe and stall the child
        self.errors = tempfile.TemporaryFile()
        options = dict(options, shared_fd=self.shared_fd, slots=SLOTS)
        self.proc = subprocess.Popen(
            [sys.executable, _WORKER, json.dumps(options)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors,
            bufsize=0, pass_fds=(self.shared_fd,), env=_worker_env())
        self.fd = self.proc.stdout.fileno()  # type: ignore[union-attr]  # stdout=PIPE

    def readinto(self, view):
        """Fill ``view`` (a writable byte memoryview) or raise LoadError."""
        done, total = 0, len(view)
        while done < total:
            ready, _, _ = select.select([self.fd], [], [], self.timeout)
            if not ready:
                self.close()
                raise LoadError(self.path, "timeout", f"the decoder made no progress for "
                                f"{self.timeout:g} s (damaged video?); it was stopped")
            n = self.proc.stdout.readinto(view[done:])  # type: ignore[union-attr]  # a pipe
            if not n:
                self._died()
            done += n

    def _died(self):
        try:
            self.proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.close()
        self.errors.seek(0)
        error = self.errors.read().decode("utf-8", "replace").strip()
        code = self.proc.returncode
        if code is not None and code < 0:
            try:
                name = _signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            raise LoadError(self.path, "crashed", f"the video decoder died with {name} "
                            "(damaged video?); your process is unaffected")
        try:
            message = json.loads(error.splitlines()[-1])
        except (ValueError, IndexError):
            message = {"cause": "corrupt", "detail": error or f"decoder exited with {code}"}
        raise LoadError(self.path, message.get("cause", "corrupt"), message.get("detail", error))

    def header(self):
        length = np.zeros(1, dtype="<u4")
        self.readinto(length.data.cast("B"))
        raw = bytearray(int(length[0]))
        self.readinto(memoryview(raw))
        info = json.loads(raw.decode())
        if info.get("direct_frames"):
            # the child writes every frame straight into the caller's (C, T, H, W) array
            shape = (info["out_channels"], info["direct_frames"], info["out_height"],
                     info["out_width"])
        else:
            shape = (SLOTS, info["out_channels"], info["out_height"], info["out_width"])
        if all(shape):
            self.mapping = mmap.mmap(self.shared_fd, int(np.prod(shape)))
            self.ring = np.frombuffer(self.mapping, np.uint8).reshape(shape)
        return info

    def release(self, slot):
        try:
            self.proc.stdin.write(bytes((slot,)))  # type: ignore[union-attr]  # stdin=PIPE
        except BrokenPipeError:
            pass

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stdin, self.errors):
            stream.close()  # type: ignore[union-attr]  # all three are open files
        self.ring = None
        if self.mapping is not None:
            try:
                self.mapping.close()
            except BufferError:  # a caller still holds a frame view; the GC will unmap it
                pass
        if self.shared is None:
            os.close(self.shared_fd)
        else:  # pragma: no cover
            self.shared.close()


def _frames_isolated(path, start, stop, step, size, mode, timeout, on_header, seek,
                     direct=False):
    """Yield (index, planes) from the child; with ``direct`` (uint8 output of a known
    length) the child writes frames into the output array itself, handed over as
    ``info["direct"]``, and planes is None for the frames already there."""
    options = {"path": str(path), "start": start, "stop": stop, "step": step,
               "size": size, "mode": mode, "timeout": timeout, "seek": seek,
               "direct": direct}
    worker = _Worker(path, options, timeout)
    try:
        info = worker.header()
        if info.get("direct_frames") and worker.ring is not None:
            info["direct"] = worker.ring
        on_header(info)
        message = np.zeros(2, dtype="<i8")
        overflow = None
        while True:
            worker.readinto(message.data.cast("B"))
            index, slot = int(message[0]), int(message[1])
            if index < 0:
                break
            if "direct" in info:
                if slot >= 0:
                    yield index, None
                    continue
                # more frames than the header said: their bytes follow on the pipe
                if overflow is None:
                    overflow = np.empty(info["direct"].shape[:1] + info["direct"].shape[2:],
                                        np.uint8)
                worker.readinto(overflow.data.cast("B"))
                yield index, overflow
                continue
            # the header maps the ring before any slot arrives
            yield index, worker.ring[slot]  # type: ignore[index]
            worker.release(slot)
        worker.proc.wait(timeout=timeout)
    finally:
        worker.close()


def _frames_inprocess(path, start, stop, step, size, mode, timeout, on_header, seek):
    import av

    try:
        for index, planes in _decode(path, start, stop, step, size, mode, timeout, on_header,
                                     seek=seek):
            yield index, [_plane_array(plane) for plane in planes]
    except av.error.FFmpegError as exc:
        raise LoadError(path, "corrupt", f"FFmpeg: {exc}") from None
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise LoadError(path, "corrupt", str(exc)) from None


# -- public API -----------------------------------------------------------------
def _check_options(start, stop, step, size, mode, chunk=None):
    start, step = check_int(start, "start", minimum=0), check_int(step, "step")
    if stop is not None and (not isinstance(stop, (numbers.Integral, np.integer)) or stop <= start):
        raise ArgumentError(f"stop must be None or an int > start ({start}), got {stop!r}")
    if size is not None:
        try:
            size = tuple(int(s) for s in size)
        except TypeError:
            raise ArgumentError(f"size must be (height, width), got {size!r}") from None
        if len(size) != 2 or min(size) < 1:
            raise ArgumentError(f"size must be (height, width) with both >= 1, got {size!r}")
    check_choice(mode, "mode", ("RGB", "L"))
    if chunk is not None:
        check_int(chunk, "chunk")
    return (int(start), None if stop is None else int(stop), int(step), size)


def _frames(path, start, stop, step, size, mode, isolate, timeout, on_header, seek=False,
            direct=False):
    head = read_head(path)
    if not _VIDEO.claims(head, path):
        raise LoadError(path, "unsupported", "not a video container (MP4, MOV, MKV, WebM, AVI, "
                        "MPEG, OGV) by content or extension")
    try:
        if isolate:
            yield from _frames_isolated(path, start, stop, step, size, mode, timeout, on_header,
                                        seek, direct)
        else:
            yield from _frames_inprocess(path, start, stop, step, size, mode, timeout, on_header,
                                         seek)
    except LoadError as exc:
        if exc.cause == "corrupt" and not _VIDEO.sniff(head, path):
            raise wrong_extension_or(path, "video", "video", exc.detail) from None
        raise


def _scale(planes, out, dtype):
    """Copy planar uint8 frames into ``out`` (C, H, W), scaling to [0, 1] for floats."""
    if dtype == np.uint8:
        for c, plane in enumerate(planes):
            out[c] = plane
    else:
        for c, plane in enumerate(planes):
            np.multiply(plane, dtype.type(1.0 / 255.0), out=out[c], dtype=dtype)


def _expected_frames(total, start, stop, step):
    end = total if stop is None or total is None else min(stop, total)
    return max(0, -(-(end - start) // step)) if end is not None else 0


def iter_video(path: PathLike, *, chunk: int = 32, start: int = 0, stop: int | None = None,
               step: int = 1, size: tuple[int, int] | None = None,
               mode: Literal["RGB", "L"] = "RGB", dtype: DTypeLike = np.float32,
               isolate: bool = True, timeout: float | None = 20.0, seek: bool = False,
               max_bytes: float | None = MAX_BYTES) -> Iterator[Signal]:
    """Yield the video as chunks: Signals of at most ``chunk`` frames, (C, t, H, W) each.

    Each chunk's ``start_time`` is the time of its first frame and its
    ``meta["first_frame"]`` that frame's index, so chunks can be placed back
    on the video's time line.  Options as in :func:`load_video`; ``max_bytes``
    bounds one chunk.
    """
    path = check_file(path)
    start, stop, step, size = _check_options(start, stop, step, size, mode, chunk)
    max_bytes = check_max_bytes(max_bytes)
    dtype = np.dtype(dtype)
    info: dict[str, Any] = {}
    buffer: Any = None  # the (C, chunk, H, W) array, allocated for the first frame
    first, filled = None, 0

    def emit(n):
        rate = info["frame_rate"]
        return Signal(buffer[:, :n].copy(), "video", frame_rate=None if not rate else rate / step,
                      start_time=None if not rate else first / rate, path=str(path),
                      first_frame=first, **{k: info[k] for k in ("codec", "container")})

    for index, planes in _frames(path, start, stop, step, size, mode, isolate, timeout,
                                 info.update, seek):
        if buffer is None:
            limit(path, len(planes) * chunk * planes[0].size * dtype.itemsize, max_bytes,
                  f"a chunk of {chunk} frames of {len(planes)} x {planes[0].shape} ({dtype})")
            buffer = np.empty((len(planes), chunk) + planes[0].shape, dtype)
        if filled == 0:
            first = index
        _scale(planes, buffer[:, filled], dtype)
        filled += 1
        if filled == chunk:
            yield emit(filled)
            filled = 0
    if filled:
        yield emit(filled)
    elif buffer is None:
        raise LoadError(path, "corrupt" if start == 0 else "unsupported",
                        "no frames could be decoded" + (f" from frame {start} on" if start else ""))


def load_video(path: PathLike, *, start: int = 0, stop: int | None = None, step: int = 1,
               size: tuple[int, int] | None = None, mode: Literal["RGB", "L"] = "RGB",
               dtype: DTypeLike = np.float32, isolate: bool = True,
               timeout: float | None = 20.0, seek: bool = False,
               max_bytes: float | None = MAX_BYTES) -> Signal:
    """Load a video file as a video :class:`Signal`.

    Parameters
    ----------
    start, stop, step : int
        Frame indices: frames ``start, start + step, ...`` before ``stop``.
        Frames before ``start`` are decoded and dropped (exact for every
        stream); frames not taken are never converted or copied.
    seek : bool
        Jump to the key frame before ``start`` instead: fast for a late
        ``start``, but exact only for streams whose key frames are IDR frames
        (not for open-GOP H.264 such as the shared cockatoo clip).
    size : (height, width), optional
        Resize every frame while decoding (FFmpeg's area filter).
    mode : {"RGB", "L"}
        Three colour channels or one luma channel.
    dtype : float32, float64 or uint8
        Floats are scaled to [0, 1]; uint8 keeps the decoded bytes.
    isolate : bool
        Decode in a watched child process (default; see the module docstring).
    timeout : float
        Seconds without a decoded frame after which decoding is abandoned.
    max_bytes : int or None
        Refuse (LoadError, cause "too large") a video whose frames asked for
        need more bytes (as ``dtype``); default :data:`sigconv.io.MAX_BYTES`.
        A long or large video fits with ``stop=``, ``step=``, ``size=``, or
        :func:`iter_video`.

    Returns
    -------
    Signal
        ``data`` shape (C, T, H, W), axes ("channel", "time", "height",
        "width"), ``frame_rate`` (of the returned frames: the file's rate
        divided by ``step``), ``start_time``, ``meta["frames_in_file"]``.
    """
    path = check_file(path)
    start, stop, step, size = _check_options(start, stop, step, size, mode)
    max_bytes = check_max_bytes(max_bytes)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64, np.uint8):
        raise ArgumentError(f"dtype must be float32, float64 or uint8, got {dtype}")
    info: dict[str, Any] = {}
    chunks: list[Any] = []
    out, t, first = None, 0, None
    direct = _DIRECT and isolate and dtype == np.uint8

    def check(frames, channels, height, width):
        limit(path, frames * channels * height * width * dtype.itemsize, max_bytes,
              f"{frames} frames of {channels} x {height} x {width} ({dtype})")

    def on_header(header):
        info.update(header)
        if header.get("out_channels"):  # the child's header: the output's frame size
            check(_expected_frames(header.get("frames"), start, stop, step),
                  header["out_channels"], header["out_height"], header["out_width"])

    for index, planes in _frames(path, start, stop, step, size, mode, isolate, timeout,
                                 on_header, seek, direct):
        if planes is None:  # already written into info["direct"] by the child
            if out is None:
                out, first = info["direct"], index
            t += 1
            continue
        if out is None:
            first = index
            expected = _expected_frames(info.get("frames"), start, stop, step)
            check(max(expected, 1), len(planes), *planes[0].shape)
            out = np.empty((len(planes), max(expected, 1)) + planes[0].shape, dtype)
        if t == out.shape[1]:  # more frames than the header said: grow
            check(sum(c.shape[1] for c in chunks) + t + max(16, t), *out.shape[:1], *out.shape[2:])
            chunks.append(out)
            out = np.empty((out.shape[0], max(16, t)) + out.shape[2:], dtype)
            t = 0
        _scale(planes, out[:, t], dtype)
        t += 1
    if out is None:
        raise LoadError(path, "corrupt" if start == 0 else "unsupported",
                        "no frames could be decoded" + (f" from frame {start} on" if start else ""))
    if chunks:
        data = np.concatenate(chunks + [out[:, :t]], axis=1)
    else:
        data = out if t == out.shape[1] else np.ascontiguousarray(out[:, :t])
    rate = info.get("frame_rate")
    return Signal(data, "video", frame_rate=None if not rate else rate / step,
                  start_time=None if not rate else first / rate, path=str(path),
                  first_frame=first, frames_in_file=info.get("frames"), codec=info.get("codec"),
                  container=info.get("container"), pixel_format=info.get("pixel_format"))


def probe_video(path: PathLike, *, timeout: float | None = 20.0) -> dict[str, Any]:
    """Stream information (size, frame count, rate, codec) without decoding, in a child process."""
    path = check_file(path)
    info: dict[str, Any] = {}
    for _ in _frames(path, 0, 1, 1, None, "RGB", True, timeout, info.update):
        break
    return info
