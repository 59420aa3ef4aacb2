"""Damaged-file corpus: generate broken copies of real files, load each in a watched child.

Used by ``tests/io/test_damaged_corpus.py`` (a quick corpus, part of the suite)
and by ``tests/fuzz/damaged_files.py`` (a long one, run by hand).  Every case is
a file written from ``../shared/data`` (or derived from it: a NIfTI and a .npy
of the stent volume, a 24-bit stereo WAV, a JPEG) with one kind of damage:

- ``truncate``: the first n bytes only;
- ``flip``: bits flipped (in the header region or anywhere);
- ``zeros``: a block overwritten with zero bytes;
- ``append``: bytes after the end (zeros, junk, a sparse 2 GiB tail);
- ``extension``: the undamaged bytes under another extension (or none);
- ``crafted``: a header field set to a value a writer could not mean (7 bits per
  sample, sample rate 0, 5,000 nested joints, a 1e15-element npz member, a
  zip bomb, a PNG claiming 10^10 pixels, ...).

All cases are loaded by ``sigconv.io.load`` in a child process (a batch per
child; the environment a user has, without ``PYTHONUNBUFFERED``; an address
space limit so a runaway allocation fails instead of swapping) that reports one
JSON line per case.  A case that kills the child is recorded as "crash", one
that makes no progress within the timeout as "hang"; the child is restarted
for the cases after it.

Outcomes (:func:`classify`): ``LoadError``; ``identical`` (the data equal the
undamaged file's); ``different`` (loaded, other data: acceptable only where the
format cannot tell, e.g. a flipped bit inside raw PCM samples or pixel data:
``strict=False``; required of a crafted valid file: ``strict="loads"``); and the failures ``LoadError without path``, ``foreign
exception``, ``non-finite data``, ``crash``, ``hang``.
"""
import hashlib
import json
import os
import pathlib
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

#: outcomes that break the contract whatever the case
BAD = ("foreign exception", "LoadError without path", "non-finite data", "crash", "hang")

#: address-space limit of the child (bytes): runaway allocations fail fast
MEMORY_LIMIT = 6 * 2**30

HERE = pathlib.Path(__file__).resolve()


def clean_env():
    """The environment a user has: ours without PYTHONUNBUFFERED and friends."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("PYTHON") and k != "PYTHONPATH") and k != "CI"}
    return env


# -- sources ----------------------------------------------------------------------
def _video_options():
    return {"stop": 6, "size": (36, 64), "dtype": "uint8", "timeout": 10.0}


def sources(shared_data, work):
    """{name: (path, extension, load options)} of the undamaged files.

    Shared files are used as they are; derived ones are written into ``work``.
    """
    d = pathlib.Path(shared_data)
    work = pathlib.Path(work)
    work.mkdir(parents=True, exist_ok=True)
    out = {
        "wav": (d / "fsdd" / "recordings" / "0_george_0.wav", ".wav", {}),
        "bvh": (d / "mocap" / "freebvh.bvh", ".bvh", {}),
        "png-grey": (d / "images" / "camera.png", ".png", {}),
        "png-rgb": (d / "images" / "chelsea.png", ".png", {}),
        "npz": (d / "volumes" / "stent.npz", ".npz", {}),
        "dcm": (d / "volumes" / "ct_slice.dcm", ".dcm", {}),
        "mp4": (d / "video" / "cockatoo.mp4", ".mp4", _video_options()),
    }
    with np.load(d / "volumes" / "stent.npz") as z:
        stent = z["arr_0"][::4, ::2, ::2].copy()            # (64, 64, 64) int16
    npy = work / "stent_small.npy"
    np.save(npy, stent)
    out["npy"] = (npy, ".npy", {})
    try:
        import nibabel as nib

        affine = np.diag([0.7, 0.8, 2.0, 1.0])
        affine[:3, 3] = (-20, 10, 5)
        image = nib.Nifti1Image(stent, affine)
        nib.save(image, work / "stent.nii")
        nib.save(image, work / "stent.nii.gz")
        out["nii"] = (work / "stent.nii", ".nii", {})
        out["nii.gz"] = (work / "stent.nii.gz", ".nii.gz", {})
    except ImportError:  # pragma: no cover
        pass
    try:
        import soundfile as sf

        wave, rate = sf.read(str(out["wav"][0]), dtype="float64")
        stereo = np.stack([wave, wave[::-1]], axis=1)
        stereo = np.concatenate([stereo] * 8)               # > 64 KiB: libsndfile's path
        sf.write(str(work / "stereo24.wav"), stereo, rate, subtype="PCM_24")
        out["wav24"] = (work / "stereo24.wav", ".wav", {"mono": False})
    except ImportError:  # pragma: no cover
        pass
    try:
        from PIL import Image

        Image.open(out["png-rgb"][0]).save(work / "chelsea.jpg", quality=90)
        out["jpg"] = (work / "chelsea.jpg", ".jpg", {})
    except ImportError:  # pragma: no cover
        pass
    return out


# -- damage -----------------------------------------------------------------------
#: formats whose payload carries a checksum (zip CRC, gzip CRC, PNG chunk CRC and
#: zlib Adler-32): a flipped bit anywhere must be caught or harmless.
CHECKSUMMED = ("npz", "nii.gz", "png-grey", "png-rgb")

#: extensions a file is renamed to
EXTENSIONS = (".wav", ".bvh", ".png", ".npz", ".npy", ".nii", ".dcm", ".mp4", ".bin", "")


def _flip(data, rng, count, lo=0, hi=None):
    data = bytearray(data)
    hi = len(data) if hi is None else min(hi, len(data))
    for i in rng.integers(lo, hi, count):
        data[i] ^= 1 << int(rng.integers(0, 8))
    return bytes(data)


def _header_size(name, data):
    """Bytes at the start of a file that are structure rather than payload (roughly)."""
    if name.startswith("wav"):
        return 44
    if name == "bvh":
        return data.index(b"MOTION")
    if name == "nii":
        return 352
    if name == "npy":
        return 128
    if name == "dcm":
        return data.rindex(b"\xe0\x7f\x10\x00")  # the PixelData tag
    if name == "jpg":
        return 2  # no checksum, and its tables are data: a zeroed table is a valid JPEG
    if name == "mp4" and 0 <= data.find(b"mdat") < data.find(b"moov"):
        return data.index(b"mdat") + 4            # frames follow; the index (moov) is at the end
    return min(len(data), 4096)


def _cut_inside_last_line(name, data, n):
    """A BVH (text) cut inside its last number leaves a shorter, valid number."""
    return name == "bvh" and n >= data.rstrip().rfind(b" ") and n < len(data.rstrip())


def damaged(name, data, ext, rng, level):
    """Yield (damage, label, bytes, extension, strict) for one source."""
    n = len(data)
    long = level == "long"
    cuts = [1, 8, 100, n // 4, n // 2, 3 * n // 4, n - 2, n - 1]
    if long:
        cuts += [4, 16, 44, 128, 348, 352, 1000] + sorted(int(c) for c in rng.integers(1, n, 24))
    for cut in sorted(set(c for c in cuts if 0 < c < n)):
        strict = not _cut_inside_last_line(name, data, cut)
        yield "truncate", f"first {cut} of {n} bytes", data[:cut], ext, strict
    head = _header_size(name, data)
    checksummed = name in CHECKSUMMED
    for i in range(12 if long else 3):
        yield ("flip", f"3 bits in the first {head} bytes (#{i})", _flip(data, rng, 3, 0, head),
               ext, checksummed)
    for i in range(24 if long else 3):
        yield "flip", f"4 bits anywhere (#{i})", _flip(data, rng, 4), ext, checksummed
    for at in ([0, 8, head // 2, n // 2] + ([int(x) for x in rng.integers(0, n, 8)] if long else [])):
        zeroed = data[:at] + bytes(min(256, n - at)) + data[at + 256:]
        yield "zeros", f"256 zero bytes at {at}", zeroed, ext, checksummed or at < head
    yield "append", "1 KiB of zero bytes after the end", data + bytes(1024), ext, False
    if long:
        yield "append", "4 KiB of random bytes after the end", data + rng.bytes(4096), ext, False
    for other in EXTENSIONS:
        if other != ext and (long or other in (".bin", "", _swap_extension(ext))):
            yield "extension", f"renamed to {other or 'no extension'}", data, other, True


def _swap_extension(ext):
    return {".wav": ".png", ".png": ".wav", ".bvh": ".nii", ".npz": ".mp4", ".npy": ".dcm",
            ".nii": ".npz", ".nii.gz": ".bin", ".dcm": ".bvh", ".mp4": ".wav",
            ".jpg": ".npz"}.get(ext, ".bin")


# -- crafted headers ----------------------------------------------------------------
def _wav_fields(data, **fields):
    """A WAV with fmt fields replaced (tag, channels, rate, byte_rate, block, bits)."""
    names = ("tag", "channels", "rate", "byte_rate", "block", "bits")
    pos = data.index(b"fmt ") + 8
    values = dict(zip(names, struct.unpack("<HHIIHH", data[pos:pos + 16])))
    values.update(fields)
    return data[:pos] + struct.pack("<HHIIHH", *(values[k] for k in names)) + data[pos + 16:]


def _npy_bytes(shape, dtype="|u1", payload=b"\0" * 64):
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def _npz_with(member, *, compress=True):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        z.writestr("arr_0.npy", member)
    return buffer.getvalue()


def _zip_bomb(path, mib):
    """An .npz whose one member inflates to ``mib`` MiB of zero bytes: a valid
    (mib, 1024, 1024) uint8 volume."""
    import zipfile

    inflated = mib * 2**20
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("arr_0.npy", "w", force_zip64=True) as member:
            member.write(_npy_bytes((mib, 1024, 1024), payload=b""))
            block = bytes(64 * 2**20)
            left = inflated
            while left:
                member.write(block[:min(left, len(block))])
                left -= min(left, len(block))


def _png(width, height, *, depth=8, colour=0, idat=None):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(bytes(64)) if idat is None else idat
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def _nifti_field(data, offset, fmt, value):
    return data[:offset] + struct.pack("<" + fmt, value) + data[offset + struct.calcsize(fmt):]


def _nested_bvh(depth):
    lines = ["HIERARCHY", "ROOT j0", "{", "OFFSET 0 0 0", "CHANNELS 3 Zrotation Xrotation Yrotation"]
    for i in range(1, depth):
        lines += [f"JOINT j{i}", "{", "OFFSET 0 1 0", "CHANNELS 1 Zrotation"]
    lines += ["End Site", "{", "OFFSET 0 1 0", "}"] + ["}"] * depth
    channels = 3 + (depth - 1)
    lines += ["MOTION", "Frames: 1", "Frame Time: 0.033333", " ".join(["0"] * channels)]
    return ("\n".join(lines) + "\n").encode()


def crafted(src, work, level):
    """Yield (source name, label, bytes or a path already written, extension, strict)."""
    long = level == "long"
    wav = pathlib.Path(src["wav"][0]).read_bytes()
    yield "wav", "7 bits per sample", _wav_fields(wav, bits=7), ".wav", True
    yield "wav", "sample rate 0", _wav_fields(wav, rate=0, byte_rate=0), ".wav", True
    yield "wav", "0 channels", _wav_fields(wav, channels=0), ".wav", True
    yield "wav", "block align 0", _wav_fields(wav, block=0), ".wav", True
    yield "wav", "0 bits per sample", _wav_fields(wav, bits=0), ".wav", True
    yield "wav", "format tag 0x1234", _wav_fields(wav, tag=0x1234), ".wav", True
    yield "wav", "rate 4e9", _wav_fields(wav, rate=4_000_000_000), ".wav", True
    pos = wav.index(b"data") + 4
    yield "wav", "data chunk of 2**31 bytes", wav[:pos] + struct.pack("<I", 2**31) + wav[pos + 4:], \
        ".wav", True
    wav24 = pathlib.Path(src["wav24"][0]).read_bytes() if "wav24" in src else None
    if wav24 is not None:
        yield "wav24", "7 bits per sample (24-bit file)", _wav_fields(wav24, bits=7), ".wav", True
        yield "wav24", "sample rate 0 (24-bit file)", _wav_fields(wav24, rate=0), ".wav", True

    bvh = pathlib.Path(src["bvh"][0]).read_bytes()
    header, motion = bvh.split(b"MOTION", 1)
    lines = motion.split(b"\n")
    first_value = lines[3].split()[0]
    for value in (b"nan", b"inf", b"-inf", b"1e999"):
        lines2 = list(lines)
        lines2[3] = lines2[3].replace(first_value, value, 1)
        yield "bvh", f"motion value {value.decode()}", header + b"MOTION" + b"\n".join(lines2), \
            ".bvh", True
    for label, line in (("Frame Time: 0", b"Frame Time: 0"), ("Frame Time: nan", b"Frame Time: nan"),
                        ("Frame Time: inf", b"Frame Time: inf"),
                        ("Frames: 10**12", b"Frames: 1000000000000")):
        lines2 = list(lines)
        lines2[2 if label.startswith("Frame Time") else 1] = line
        yield "bvh", label, header + b"MOTION" + b"\n".join(lines2), ".bvh", True
    yield "bvh", "OFFSET nan", bvh.replace(b"OFFSET", b"OFFSET nan", 1).replace(
        b"OFFSET nan ", b"OFFSET nan\t", 1), ".bvh", True
    yield "bvh", "5,000 nested joints (valid)", _nested_bvh(5000), ".bvh", "loads"
    yield "bvh", "CHANNELS 10**9", bvh.replace(b"CHANNELS 6", b"CHANNELS 1000000000", 1), ".bvh", True
    huge = work / "crafted_bvh_2gib.bvh"
    with open(huge, "wb") as f:           # sparse: cheap to write, 2 GiB to read
        f.write(bvh)
        f.truncate(len(bvh) + 2 * 2**30)
    yield "bvh", "2 GiB of zero bytes appended", huge, ".bvh", True

    yield "npz", "member claiming 1e15 elements", _npz_with(_npy_bytes((10**15,))), ".npz", True
    yield "npz", "member claiming 1e15 elements (stored)", \
        _npz_with(_npy_bytes((10**15,)), compress=False), ".npz", True
    yield "npz", "member of dtype object", _npz_with(_npy_bytes((4,), "|O")), ".npz", True
    yield "npz", "member of 3e9 bytes declared", _npz_with(_npy_bytes((3 * 10**9,))), ".npz", True
    yield "npy", "header claiming 1e15 elements", _npy_bytes((10**15,)), ".npy", True
    yield "npy", "header claiming (1000, 1000, 1000) float64", \
        _npy_bytes((1000, 1000, 1000), "<f8"), ".npy", True
    yield "npy", "negative shape", _npy_bytes((-5, 4, 4)), ".npy", True
    bomb = work / "crafted_bomb.npz"
    mib = 2048 if long else 1024
    _zip_bomb(bomb, mib)
    yield "npz", f"zip bomb: {bomb.stat().st_size} bytes inflating to {mib} MiB", bomb, ".npz", True

    yield "png-grey", "IHDR 100000 x 100000", _png(100000, 100000), ".png", True
    yield "png-grey", "IHDR 12000 x 12000 (between Pillow's warning and error)", \
        _png(12000, 12000), ".png", True
    yield "png-grey", "IHDR width 0", _png(0, 10), ".png", True
    yield "png-grey", "IHDR bit depth 3", _png(8, 8, depth=3), ".png", True
    yield "png-grey", "IHDR colour type 5", _png(8, 8, colour=5), ".png", True

    if "nii" in src:
        nii = pathlib.Path(src["nii"][0]).read_bytes()
        fields = [("dim[0] = 0", 40, "h", 0), ("dim[0] = 9", 40, "h", 9),
                  ("dim[0] = -1", 40, "h", -1), ("dim[1] = -64", 42, "h", -64),
                  ("dim[1] = 0", 42, "h", 0), ("datatype 9999", 70, "h", 9999),
                  ("datatype 0", 70, "h", 0), ("bitpix 0", 72, "h", 0),
                  ("vox_offset -1e9", 108, "f", -1e9), ("vox_offset 1e12", 108, "f", 1e12),
                  ("vox_offset nan", 108, "f", float("nan")),
                  ("pixdim[1] nan", 80, "f", float("nan")), ("pixdim[1] = 0", 80, "f", 0.0),
                  ("scl_slope inf", 112, "f", float("inf")),
                  ("sizeof_hdr 0", 0, "i", 0), ("qform_code 99 and sform_code 99", 252, "hh", None),
                  ("dims 32767^3 (an image of 70 TB)", 42, "hhh", (32767, 32767, 32767)),
                  ("srow all zero", 280, "12f", (0.0,) * 12)]
        for label, offset, fmt, value in fields:
            if label.startswith("qform"):
                damaged_nii = nii[:252] + struct.pack("<hh", 99, 99) + nii[256:]
            elif isinstance(value, tuple):
                damaged_nii = nii[:offset] + struct.pack("<" + fmt, *value) + \
                    nii[offset + struct.calcsize("<" + fmt):]
            else:
                damaged_nii = _nifti_field(nii, offset, fmt, value)
            yield "nii", f"header {label}", damaged_nii, ".nii", True

    dcm = pathlib.Path(src["dcm"][0]).read_bytes()
    yield "dcm", "1 MiB of zero bytes appended", dcm + bytes(2**20), ".dcm", True
    if long:
        yield "dcm", "8 MiB of zero bytes appended", dcm + bytes(8 * 2**20), ".dcm", True
    try:
        import pydicom

        for label, change in (("Rows 65535", {"Rows": 65535}), ("Columns 0", {"Columns": 0}),
                              ("BitsAllocated 7", {"BitsAllocated": 7}),
                              ("NumberOfFrames 10**9", {"NumberOfFrames": 10**9}),
                              ("SamplesPerPixel 0", {"SamplesPerPixel": 0}),
                              ("PixelSpacing nan", {"PixelSpacing": ["nan", "nan"]}),
                              ("RescaleSlope inf", {"RescaleSlope": "inf"})):
            ds = pydicom.dcmread(src["dcm"][0])
            for key, value in change.items():
                setattr(ds, key, value)
            path = work / f"crafted_dcm_{label.split()[0]}.dcm"
            ds.save_as(path)
            yield "dcm", label, path, ".dcm", True
    except ImportError:  # pragma: no cover
        pass


def generate(shared_data, out_dir, *, level="quick", seed=0):
    """Write the corpus into ``out_dir``; return the cases (dicts) with the originals first."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    src = sources(shared_data, out_dir / "sources")
    cases = []
    for name, (path, ext, options) in src.items():
        cases.append({"source": name, "damage": "original", "label": "undamaged",
                      "path": str(path), "options": options, "strict": True})

    def add(name, damage, label, content, ext, strict):
        if isinstance(content, (str, os.PathLike)):
            path = pathlib.Path(content)
        else:
            path = out_dir / f"case{len(cases):05d}{ext}"
            path.write_bytes(content)
        cases.append({"source": name, "damage": damage, "label": label, "path": str(path),
                      "options": src[name][2], "strict": strict})

    for name, (path, ext, _) in src.items():
        data = pathlib.Path(path).read_bytes()
        if level != "long" and name in ("mp4", "wav24", "jpg", "png-rgb", "nii.gz"):
            picks = list(damaged(name, data, ext, rng, level))
            picks = picks[1::2] if name != "mp4" else picks[2::4]   # fewer: slow to load
        else:
            picks = damaged(name, data, ext, rng, level)
        for damage, label, content, new_ext, strict in picks:
            add(name, damage, label, content, new_ext, strict)
    for name, label, content, ext, strict in crafted(src, out_dir, level):
        add(name, "crafted", label, content, ext, strict)
    return cases


# -- running ----------------------------------------------------------------------
def _child(cases_file):
    """Load every case of ``cases_file`` (JSON), one JSON line of outcome per case."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):  # pragma: no cover
        pass
    import warnings

    warnings.simplefilter("ignore")
    import sigconv.io as sio

    out = sys.stdout
    for case in json.loads(pathlib.Path(cases_file).read_text()):
        options = dict(case["options"])
        if "size" in options:
            options["size"] = tuple(options["size"])
        start = time.perf_counter()
        try:
            signal_ = sio.load(case["path"], **options)
            data = np.ascontiguousarray(signal_.data)
            finite = bool(np.isfinite(data).all()) if data.dtype.kind == "f" else True
            result = {"outcome": "loaded", "kind": signal_.kind, "finite": finite,
                      "fingerprint": [hashlib.sha1(data.tobytes()).hexdigest(),
                                      list(data.shape), str(data.dtype)]}
        except sio.LoadError as exc:
            result = {"outcome": "LoadError", "cause": exc.cause, "message": str(exc)[:500],
                      "names_path": case["path"] in str(exc)}
        except BaseException as exc:  # noqa: B902 - everything else is what we look for
            result = {"outcome": "foreign exception",
                      "message": f"{type(exc).__module__}.{type(exc).__name__}: {exc}"[:500]}
        result["seconds"] = round(time.perf_counter() - start, 3)
        out.write(json.dumps(result) + "\n")
        out.flush()
    return 0


def run(cases, *, timeout=30.0, batch=None):
    """Load ``cases`` in watched children; return one result dict per case, in order."""
    results = [None] * len(cases)
    todo = list(range(len(cases)))
    while todo:
        chunk = todo if batch is None else todo[:batch]
        with tempfile.TemporaryDirectory() as tmp:
            listing = pathlib.Path(tmp) / "cases.json"
            listing.write_text(json.dumps([cases[i] for i in chunk]))
            errors = open(pathlib.Path(tmp) / "stderr", "w+b")
            proc = subprocess.Popen([sys.executable, str(HERE), "--child", str(listing)],
                                    stdout=subprocess.PIPE, stderr=errors, env=clean_env(),
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            done, buffer = 0, b""
            fd = proc.stdout.fileno()
            deadline = time.monotonic() + timeout
            while done < len(chunk):
                wait = deadline - time.monotonic()
                ready = select.select([fd], [], [], max(0.0, wait))[0] if wait > 0 else []
                if not ready:
                    _kill(proc)
                    results[chunk[done]] = {"outcome": "hang",
                                            "message": f"no result within {timeout:g} s"}
                    done += 1
                    break
                data = os.read(fd, 65536)
                if not data:
                    code = proc.wait()
                    errors.seek(0)
                    tail = errors.read().decode("utf-8", "replace").strip().splitlines()[-3:]
                    how = (signal.Signals(-code).name if code < 0 else f"exit code {code}")
                    results[chunk[done]] = {"outcome": "crash",
                                            "message": f"the child died: {how}; " + " | ".join(tail)}
                    done += 1
                    break
                buffer += data
                while b"\n" in buffer and done < len(chunk):
                    line, buffer = buffer.split(b"\n", 1)
                    results[chunk[done]] = json.loads(line)
                    done += 1
                    deadline = time.monotonic() + timeout
            _kill(proc)
            errors.close()
            proc.stdout.close()
        todo = todo[done:] if batch is None else todo[done:]
    return results


def _kill(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)   # the child and its video worker
        except ProcessLookupError:  # pragma: no cover
            pass
    proc.wait()


def classify(cases, results):
    """The outcome name of every case (see the module docstring)."""
    reference = {c["source"]: r for c, r in zip(cases, results) if c["damage"] == "original"}
    names = []
    for case, result in zip(cases, results):
        outcome = result["outcome"]
        if outcome == "LoadError":
            outcome = "LoadError" if result["names_path"] else "LoadError without path"
        elif outcome == "loaded":
            ref = reference.get(case["source"], {})
            if result["kind"] in ("waveform", "skeleton") and not result["finite"]:
                outcome = "non-finite data"
            elif ref.get("outcome") == "loaded" and result["fingerprint"] == ref["fingerprint"]:
                outcome = "identical"
            else:
                outcome = "different" if case["damage"] != "original" else "identical"
        names.append(outcome)
    return names


def failures(cases, results, names):
    """Cases whose outcome breaks the contract: a bad outcome, or "different" where strict."""
    bad = []
    for case, result, name in zip(cases, results, names):
        strict = case["strict"]
        if name in BAD or (name == "different" and strict is True) or (
                strict == "loads" and name not in ("different", "identical")) or (
                case["damage"] == "original" and name != "identical"):
            bad.append((case, result, name))
    return bad


def summary(cases, results, names):
    """Printable table: cases by damage and outcome, then every failure."""
    import collections

    table = collections.Counter((c["damage"], n) for c, n in zip(cases, names))
    totals = collections.Counter(names)
    lines = [f"{len(cases)} cases: " + ", ".join(f"{k} {v}" for k, v in totals.most_common())]
    damages = sorted({c["damage"] for c in cases})
    outcomes = sorted(totals)
    width = max(len(o) for o in outcomes) + 2
    lines.append("damage".ljust(10) + "".join(o.rjust(width) for o in outcomes))
    for d in damages:
        lines.append(d.ljust(10) + "".join(str(table[(d, o)]).rjust(width) for o in outcomes))
    bad = failures(cases, results, names)
    lines.append(f"{len(bad)} cases break the contract"
                 + (" (strict cases must give LoadError or identical data):" if bad else ""))
    for case, result, name in bad:
        lines.append(f"  [{name}] {case['source']} {case['damage']}: {case['label']}: "
                     f"{result.get('message', '')[:300]}")
    slow = sorted(((r.get("seconds", 0), c) for c, r in zip(cases, results)), key=lambda x: -x[0])
    lines.append("slowest: " + ", ".join(f"{c['source']} {c['label']} {s:.2f} s"
                                         for s, c in slow[:3]))
    return "\n".join(lines)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--child":
    sys.exit(_child(sys.argv[2]))
