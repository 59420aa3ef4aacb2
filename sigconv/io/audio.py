"""Audio waveforms: soundfile (libsndfile) first, PyAV for what libsndfile cannot decode.

libsndfile reads WAV, FLAC, OGG/Vorbis, Opus, MP3, AIFF and more, straight
into a float32 buffer, seeking to ``offset`` without decoding what precedes it.
Formats it does not know (AAC/M4A, WMA, audio tracks of video files) are
decoded with PyAV, which is already a dependency for video.  Resampling uses
soxr.
"""
from __future__ import annotations

import numbers
import pathlib
import struct
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .._validation import check_positive_real
from ..errors import ArgumentError
from ._common import MAX_BYTES, LoadError, check_max_bytes, inspect, library_error, limit
from .formats import BY_NAME, content_kind, wrong_extension_or
from .signal import Signal, resample_waveform
from ..typing import PathLike

__all__ = ["load_audio", "resample_waveform", "EXTENSIONS"]

_AUDIO = BY_NAME["audio"]

#: The extensions of audio files (:data:`sigconv.io.formats.FORMATS`).
EXTENSIONS = _AUDIO.extensions


#: WAV format tags whose block align is fixed by channels and bits:
#: PCM, IEEE float, A-law, mu-law, and WAVE_FORMAT_EXTENSIBLE holding one of them.
_LINEAR_TAGS = (1, 3, 6, 7)


def _check_fmt(path: pathlib.Path, fmt: bytes) -> None:
    """Refuse a WAV ``fmt `` chunk no writer could mean (libsndfile reads some anyway:
    7 bits per sample in 2-byte blocks came out as twice the samples)."""
    if len(fmt) < 16:
        raise LoadError(path, "corrupt", f"WAV fmt chunk of {len(fmt)} bytes, expected at least 16")
    tag, channels, rate, _, block, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == 0xFFFE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]
    if channels < 1:
        raise LoadError(path, "corrupt", f"WAV header says {channels} channels, expected at least 1")
    if rate < 1:
        raise LoadError(path, "corrupt", f"WAV header says a sample rate of {rate} Hz, expected "
                        "a positive rate")
    if tag in _LINEAR_TAGS:
        if not 1 <= bits <= 64:
            raise LoadError(path, "corrupt", f"WAV header says {bits} bits per sample, expected "
                            "1 to 64")
        expected = channels * -(-bits // 8)
        if block != expected:
            raise LoadError(path, "corrupt", f"WAV header says {bits} bits per sample and "
                            f"{channels} channel(s), so {expected}-byte frames, but its block "
                            f"align is {block} bytes")
    elif block < 1:
        raise LoadError(path, "corrupt", f"WAV header says a block align of {block} bytes, "
                        "expected at least 1")


def _wav_chunks(path: pathlib.Path, size: int, head: bytes) -> tuple[bytes | None, int, int] | None:
    """(fmt chunk bytes or None, data offset, data size) of a RIFF/WAVE file, or None.

    Raises LoadError when the file ends before its ``data`` chunk does:
    libsndfile silently reads what is there, so this is the only way to tell
    a truncated WAV from a short one.
    """
    if not (head[:4] == b"RIFF" and head[8:12] == b"WAVE"):
        return None
    fmt, pos, f = None, 12, None
    try:
        while pos + 8 <= size:
            if pos + 8 <= len(head):
                chunk = head[pos:pos + 8]
            else:
                f = f or open(path, "rb")
                f.seek(pos)
                chunk = f.read(8)
            if len(chunk) < 8:
                break
            chunk_id, chunk_size = struct.unpack("<4sI", chunk)
            if chunk_id == b"fmt " and pos + 8 + chunk_size <= len(head):
                fmt = head[pos + 8:pos + 8 + chunk_size]
                _check_fmt(path, fmt)
            if chunk_id == b"data":
                if fmt is None:
                    raise LoadError(path, "corrupt", "WAV data chunk before any fmt chunk (or no "
                                    "fmt chunk in the first 64 KiB)")
                if chunk_size in (0, 0xFFFFFFFF):
                    return None  # streamed WAV with unknown length: libsndfile copes
                if pos + 8 + chunk_size > size:
                    raise LoadError(path, "truncated",
                                    f"WAV data chunk declares {chunk_size} bytes but only "
                                    f"{size - pos - 8} follow")
                return fmt, pos + 8, chunk_size
            pos += 8 + chunk_size + (chunk_size & 1)
    finally:
        if f is not None:
            f.close()
    raise LoadError(path, "truncated", "WAV file ends before its data chunk")


#: (format tag, bits) of the WAV encodings read without libsndfile, with the
#: scale libsndfile applies when it reads them as float (x / 2**(bits-1)).
_PCM = {(1, 16): ("<i2", 1.0 / 32768.0), (1, 32): ("<i4", 1.0 / 2147483648.0),
        (3, 32): ("<f4", None)}


def _read_small_wav(path: pathlib.Path, size: int, head: bytes, chunks: Any, offset: float,
                    duration: float | None, max_bytes: int | None = None) -> Any:
    """Decode a whole-in-memory 16/32-bit PCM or float WAV with numpy, or return None.

    The values equal libsndfile's float reads bit for bit (the tests check
    it); anything else (8/24-bit, compressed, big files) goes to libsndfile.
    """
    if chunks is None or len(head) < size or chunks[0] is None or len(chunks[0]) < 16:
        return None
    fmt, start, nbytes = chunks
    tag, channels, rate, _, block, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's tag
        tag = struct.unpack("<H", fmt[24:26])[0]
    if (tag, bits) not in _PCM or channels < 1 or block != channels * bits // 8:
        return None
    dtype, scale = _PCM[(tag, bits)]
    total = nbytes // block
    first = int(round(offset * rate))
    if first > total:
        raise LoadError(path, "unsupported", f"offset {offset} s is past the end "
                        f"({total / rate:.3f} s)")
    count = total - first if duration is None else min(int(round(duration * rate)), total - first)
    limit(path, count * channels * 4, max_bytes, f"{count} frames of {channels} channels as float32")
    raw = np.frombuffer(head, dtype, count=count * channels, offset=start + first * block)
    data = raw.reshape(count, channels).T.astype(np.float32)
    if scale is not None:
        data *= np.float32(scale)
    return data, rate, {"format": "WAV", "subtype": "FLOAT" if tag == 3 else f"PCM_{bits}",
                        "channels_in_file": channels, "frames_in_file": total}


def _read_soundfile(path: pathlib.Path, offset: float, duration: float | None,
                    max_bytes: int | None = None) -> Any:
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as f:
            rate = f.samplerate
            total = f.frames
            if not rate or rate < 1:
                raise LoadError(path, "corrupt", f"the header says a sample rate of {rate} Hz, "
                                "expected a positive rate")
            start = int(round(offset * rate))
            if start > total:
                raise LoadError(path, "unsupported", f"offset {offset} s is past the end "
                                f"({total / rate:.3f} s)")
            count = total - start if duration is None else min(int(round(duration * rate)),
                                                                 total - start)
            limit(path, count * f.channels * 4, max_bytes,
                  f"{count} frames of {f.channels} channels as float32")
            if start and f.seekable():
                f.seek(start)
            elif start:
                f.read(start, dtype="float32")
            data = f.read(count, dtype="float32", always_2d=True)
            meta = {"format": f.format, "subtype": f.subtype, "channels_in_file": f.channels,
                    "frames_in_file": total}
    except LoadError:
        raise
    except MemoryError as exc:
        raise library_error(path, "libsndfile", exc) from None
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OverflowError) as exc:
        return None, exc  # RuntimeError: soundfile < 0.12
    if data.shape[0] < count:
        raise LoadError(path, "truncated", f"the header promises {count} frames from offset "
                        f"{offset} s but only {data.shape[0]} could be decoded")
    return (data.T, rate, meta), None


def _read_pyav(path: pathlib.Path, offset: float, duration: float | None, timeout: float | None,
               max_bytes: int | None = None) -> Any:
    """Decode the first audio stream with PyAV (in-process; audio decoders are robust)."""
    import av

    try:
        container = av.open(str(path), timeout=timeout)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        return None, exc
    with container:
        if not container.streams.audio:
            raise LoadError(path, "unsupported", "the file has no audio stream")
        stream = container.streams.audio[0]
        rate = (getattr(stream.codec_context, "sample_rate", None)
                or getattr(stream, "sample_rate", None) or getattr(stream, "rate", None))
        if not rate or rate < 1:
            raise LoadError(path, "corrupt", f"the audio stream has a sample rate of {rate!r}, "
                            "expected a positive rate")
        chunks, held = [], 0
        try:
            for frame in container.decode(stream):
                array = frame.to_ndarray()
                if not frame.format.is_planar:
                    array = array.reshape(-1, frame.layout.nb_channels).T
                chunks.append(array.astype(np.float32) if array.dtype.kind == "f"
                              else _int_to_float(array))
                held += chunks[-1].nbytes
                limit(path, held, max_bytes, "the decoded audio (float32)")
        except LoadError:
            raise
        except (av.error.FFmpegError, ValueError, TypeError, AttributeError, MemoryError) as exc:
            if isinstance(exc, MemoryError):
                raise library_error(path, "PyAV", exc) from None
            raise LoadError(path, "corrupt", f"PyAV could not decode the audio: "
                            f"{type(exc).__name__}: {exc}") from None
    if not chunks:
        raise LoadError(path, "corrupt", "no audio frames could be decoded")
    data = np.concatenate(chunks, axis=1)
    start = int(round(offset * rate))
    stop = None if duration is None else start + int(round(duration * rate))
    return (data[:, start:stop], rate, {"format": container.format.name,
                                        "codec": stream.codec_context.name}), None


def _int_to_float(array: NDArray[Any]) -> NDArray[np.float32]:
    info = np.iinfo(array.dtype)
    return (array.astype(np.float32) / float(-info.min if info.min < 0 else info.max))


def load_audio(path: PathLike, *, sample_rate: float | None = None, mono: bool = True,
               offset: float = 0.0, duration: float | None = None, dtype: DTypeLike = np.float32,
               quality: str = "HQ", timeout: float | None = 30.0,
               max_bytes: float | None = MAX_BYTES) -> Signal:
    """Load an audio file as a waveform :class:`Signal`.

    Parameters
    ----------
    path : str or os.PathLike
        WAV, FLAC, OGG (Vorbis/Opus), MP3, AIFF, ... (libsndfile); M4A/AAC and
        other FFmpeg formats through PyAV.
    sample_rate : float, optional
        Resample to this rate with soxr; default keeps the file's own rate.
    mono : bool
        Mix all channels down to one (their mean); ``False`` keeps them.
    offset, duration : float
        Start reading ``offset`` seconds in, and read at most ``duration``
        seconds (default: to the end).
    dtype : float32 or float64
    quality : str
        soxr quality when resampling ("QQ", "LQ", "MQ", "HQ", "VHQ").
    max_bytes : int or None
        Refuse (LoadError, cause "too large") a file whose decoded samples
        (float32) need more bytes; default :data:`sigconv.io.MAX_BYTES`.

    Returns
    -------
    Signal
        ``data`` shape (C, T) in [-1, 1], axes ("channel", "time"),
        ``sample_rate``, ``start_time`` (= ``offset``).
    """
    path, size, head = inspect(path)  # no second look at a file load() has inspected
    if not (isinstance(offset, numbers.Real) and offset >= 0):
        raise ArgumentError(f"offset must be a number of seconds >= 0, got {offset!r}")
    if duration is not None:
        check_positive_real(duration, "duration", " (seconds) or None")
    if sample_rate is not None:
        check_positive_real(sample_rate, "sample_rate", " (Hz) or None")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ArgumentError(f"dtype must be float32 or float64, got {dtype}")
    max_bytes = check_max_bytes(max_bytes)
    chunks = _wav_chunks(path, size, head)
    result = _read_small_wav(path, size, head, chunks, offset, duration, max_bytes)
    if result is not None:
        sf_error = None
    else:
        result, sf_error = _read_soundfile(path, offset, duration, max_bytes)
    if result is None:
        if content_kind(path, head[:512]) in ("image", "volume", "skeleton"):
            raise wrong_extension_or(path, "waveform", "audio", str(sf_error))
        result, av_error = _read_pyav(path, offset, duration, timeout, max_bytes)
        if result is None:
            if _AUDIO.claims(head, path):
                raise wrong_extension_or(path, "waveform", "audio",
                                         f"neither libsndfile ({sf_error}) nor FFmpeg ({av_error}) "
                                         "could read it")
            raise LoadError(path, "unsupported", f"not an audio file libsndfile or FFmpeg "
                            f"can read ({sf_error})")
    data, rate, meta = result
    if data.dtype.kind == "f" and not np.isfinite(data).all():  # float WAV/FLAC: NaN, inf
        bad = np.flatnonzero(~np.isfinite(data.reshape(-1)))[0]
        raise LoadError(path, "corrupt", f"sample {bad % data.shape[1]} of channel "
                        f"{bad // data.shape[1]} is {data.reshape(-1)[bad]}, expected finite "
                        "samples")
    if mono and data.shape[0] > 1:
        data = data.mean(axis=0, keepdims=True)
    if sample_rate is not None and sample_rate != rate:
        data = resample_waveform(data, rate, sample_rate, quality=quality)
        rate = sample_rate
    data = np.ascontiguousarray(data, dtype=dtype)
    return Signal(data, "waveform", sample_rate=rate, start_time=float(offset), path=str(path),
                  **meta)
