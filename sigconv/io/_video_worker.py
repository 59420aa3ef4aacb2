"""Video decoding, run in-process or as the child process of :mod:`sigconv.io.video`.

As a script (``python _video_worker.py OPTIONS_JSON``) it decodes frames into
shared memory; it imports only av (not numpy, not sigconv) so that it starts
fast.

Protocol (little endian).  To the parent on stdout, written unbuffered (each
message reaches the pipe when it is written, whatever ``PYTHONUNBUFFERED``
says: the parent waits for every message before it frees a slot): a uint32 length and a
JSON header (stream information plus ``out_channels``, ``out_height``,
``out_width``), after which the shared file (``shared_fd``) is sized to
``slots`` frames of C x H x W uint8; then, per frame, an int64 pair (index,
slot) once the frame is in that slot; finally (-1, -1).  From the parent on
stdin: one byte per slot it has finished with.  Failures are reported as one
JSON line {"cause", "detail"} on stderr and exit code 3.
"""
from __future__ import annotations

import json
import mmap
import os
import struct
import sys
from typing import Any


def _open(path, timeout):
    import av

    container = av.open(str(path), timeout=timeout)
    if not container.streams.video:
        container.close()
        raise ValueError("the file has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def _info(container, stream):
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else None
    frames = int(stream.frames or 0)
    if not frames and stream.duration and stream.time_base and fps:
        frames = int(round(float(stream.duration * stream.time_base) * fps))
    if not frames and container.duration and fps:
        frames = int(round(container.duration / 1e6 * fps))
    return {"width": stream.codec_context.width, "height": stream.codec_context.height,
            "frames": frames or None, "frame_rate": fps, "codec": stream.codec_context.name,
            "pixel_format": stream.codec_context.pix_fmt, "container": container.format.name}


def decode_frames(path, start, stop, step, size, mode, timeout, header=None, seek=False):
    """Yield (index, [planes]) of the frames asked for.

    Each plane is ``(buffer, height, width, line_size)``: the uint8 bytes of
    one channel, rows ``line_size`` apart (see :func:`plane_array`).

    Frames are converted to planar RGB (or grey) and resized by FFmpeg's
    swscale.  ``header`` is called once with the stream information before
    any frame.  The planes are views of the decoder's buffer: copy them
    before the next frame.  ``seek=True`` jumps to the key frame before
    ``start`` instead of decoding from the beginning: fast, but exact only
    when key frames are IDR frames (closed GOPs); H.264 files with open GOPs
    decode the frames after such a seek with visible errors.
    """
    import av

    container, stream = _open(path, timeout)
    with container:
        info = _info(container, stream)
        if header is not None:
            header(info)
        fps = info["frame_rate"] or 1.0
        base = stream.start_time or 0
        if seek and start > 0 and stream.time_base:
            target = int(start / fps / float(stream.time_base)) + base
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError:
                container.seek(0, stream=stream)
        fmt = "gray" if mode == "L" else "gbrp"
        kwargs = {"format": fmt}
        if size is not None:
            kwargs.update(height=size[0], width=size[1], interpolation="AREA")
        counter = None
        for frame in container.decode(stream):
            if frame.pts is not None and stream.time_base:
                index = int(round(float((frame.pts - base) * stream.time_base) * fps))
            else:
                counter = start if counter is None else counter + 1
                index = counter
            if index < start:
                continue
            if stop is not None and index >= stop:
                break
            if (index - start) % step:
                continue
            frame = frame.reformat(**kwargs)
            planes = [(memoryview(plane), plane.height, plane.width, plane.line_size)
                      for plane in frame.planes]
            if fmt == "gbrp":
                planes = [planes[2], planes[0], planes[1]]
            yield index, planes


def plane_array(plane):
    """A plane from :func:`decode_frames` as a numpy (H, W) uint8 view."""
    import numpy as np

    buffer, height, width, line = plane
    return np.frombuffer(buffer, np.uint8, count=height * line).reshape(height, line)[:, :width]


def _copy_plane(mapping, offset, plane):
    """Write a plane's H x W bytes into ``mapping`` at ``offset`` (rows packed)."""
    buffer, height, width, line = plane
    if line == width:
        mapping[offset:offset + height * width] = buffer[:height * width]
    else:
        for row in range(height):
            start = row * line
            mapping[offset + row * width:offset + (row + 1) * width] = buffer[start:start + width]


def _plane_bytes(plane):
    buffer, height, width, line = plane
    if line == width:
        return buffer[:height * width]
    return b"".join(bytes(buffer[r * line:r * line + width]) for r in range(height))


class _Pipe:
    """Unbuffered writes to a file descriptor: every message is on the pipe when
    ``write`` returns (a buffered stdout would hold the frame messages back until
    its buffer fills, while the parent waits for them to free a slot)."""

    def __init__(self, fd):
        self.fd = fd

    def write(self, data):
        view = memoryview(data).cast("B")
        while view:
            view = view[os.write(self.fd, view):]

    def flush(self):
        pass


def main(argv):
    options = json.loads(argv[1])
    out = _Pipe(sys.stdout.fileno())
    back = open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    try:
        info: dict[str, Any] = {}
        slots = options["slots"]
        state: dict[str, Any] = {"ring": None, "free": list(range(slots)), "direct": 0}

        def expected_frames():
            total = info.get("frames")
            if not total:
                return 0
            end = total if options["stop"] is None else min(options["stop"], total)
            return max(0, -(-(end - options["start"]) // options["step"]))

        def start_ring(channels, height, width):
            # direct: one slot per expected frame, laid out (C, T, H, W) = the caller's array
            direct = expected_frames() if options.get("direct") else 0
            raw = json.dumps(dict(info, out_channels=channels, out_height=height,
                                  out_width=width, direct_frames=direct)).encode()
            size = channels * (direct or slots) * height * width
            if size:
                os.ftruncate(options["shared_fd"], size)
                state["ring"] = mmap.mmap(options["shared_fd"], size)
            state.update(direct=direct, channels=channels, plane=height * width)
            out.write(struct.pack("<I", len(raw)) + raw)

        size = options["size"]
        for index, planes in decode_frames(options["path"], options["start"], options["stop"],
                                           options["step"], size, options["mode"],
                                           options["timeout"], info.update,
                                           seek=options.get("seek", False)):
            if state["ring"] is None:
                start_ring(len(planes), planes[0][1], planes[0][2])
                count = 0
            ring, plane_size = state["ring"], state["plane"]
            if state["direct"]:
                if count < state["direct"]:
                    for c, plane in enumerate(planes):
                        _copy_plane(ring, (c * state["direct"] + count) * plane_size, plane)
                    out.write(struct.pack("<qq", index, count))
                else:  # more frames than the header promised: send the bytes
                    out.write(struct.pack("<qq", index, -2))
                    for plane in planes:
                        out.write(_plane_bytes(plane))
                count += 1
                continue
            if not state["free"]:
                byte = back.read(1)
                if not byte:
                    return 0  # the parent went away
                state["free"].append(byte[0])
            slot = state["free"].pop()
            for c, plane in enumerate(planes):
                _copy_plane(ring, (slot * state["channels"] + c) * plane_size, plane)
            out.write(struct.pack("<qq", index, slot))
        if state["ring"] is None:
            start_ring(0, *(size or (info.get("height") or 0, info.get("width") or 0)))
        out.write(struct.pack("<qq", -1, -1))
        out.flush()
    except BrokenPipeError:
        return 0
    except Exception as exc:  # reported to the parent, which raises LoadError
        cause = "unsupported" if "no video stream" in str(exc) else "corrupt"
        sys.stderr.write("\n" + json.dumps({"cause": cause,
                                            "detail": f"{type(exc).__name__}: {exc}"}) + "\n")
        sys.stderr.flush()
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
