"""Loader speed: sigconv.io against the field's own readers, in one process.

Run from the project root (under the benchmark lock, so that other benchmarks
do not share the two cores)::

    flock /tmp/sigconv-bench.lock python benchmarks/bench_io.py [--repeat 5]

1. Audio: load all 3,000 clips of ``../shared/data/fsdd`` with
   ``sigconv.io.load`` (format detection, file checks, Signal) against a
   ``librosa.load(path, sr=None)`` loop and a bare ``soundfile.read`` loop.
2. Video: frames per second decoding ``../shared/data/video/cockatoo.mp4``
   (280 frames, 1280x720) with ``sigconv.io.load_video`` (decoding isolated
   in a child process, the default; and in-process) against
   ``imageio.v3.imread(path)`` (PyAV plugin).  imageio returns uint8 frames,
   so the like-for-like figure is ``dtype=uint8``; the float32 figure also
   pays for writing four times the bytes ([0, 1] floats, 3.1 GB, so it runs
   with ``max_bytes=None``: the default limit is 2 GiB).

Each peer is warmed once, then timed ``--repeat`` times in alternation; the
table gives medians and the ratio of sigconv's speed to the peer's
(``> 1``: sigconv is faster).
"""
import argparse
import pathlib
import sys

import numpy as np

from _common import time_interleaved

try:
    import sigconv.io as sio
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import sigconv.io as sio

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def bench_audio(repeat):
    import soundfile as sf

    paths = sorted((DATA / "fsdd" / "recordings").glob("*.wav"))
    peers = {
        "sigconv.io.load": lambda: [sio.load(p) for p in paths],
        "soundfile.read": lambda: [sf.read(p, dtype="float32") for p in paths],
    }
    try:
        import librosa

        peers["librosa.load(sr=None)"] = lambda: [librosa.load(p, sr=None) for p in paths]
    except ImportError:
        print("librosa is not installed: skipping its loop")
    medians = time_interleaved(peers, repeat=repeat, warmup=1)
    ours = medians["sigconv.io.load"]
    print(f"\naudio: {len(paths)} FSDD clips (8 kHz mono WAV), median of {repeat}")
    print(f"{'reader':<24}{'total s':>10}{'ms/clip':>10}{'sigconv speed-up':>18}")
    for name, t in medians.items():
        print(f"{name:<24}{t:>10.3f}{1000 * t / len(paths):>10.3f}{t / ours:>17.2f}x")


def bench_video(repeat):
    import imageio.v3 as iio

    path = DATA / "video" / "cockatoo.mp4"
    frames = 280
    peers = {
        "imageio.v3.imread": lambda: iio.imread(path, plugin="pyav"),
        "load_video uint8": lambda: sio.load_video(path, dtype=np.uint8),
        "load_video uint8 in-process": lambda: sio.load_video(path, dtype=np.uint8, isolate=False),
        "load_video float32": lambda: sio.load_video(path, max_bytes=None),  # 3.1 GB > MAX_BYTES
        "iter_video uint8 chunk=32": lambda: [c.shape for c in sio.iter_video(path, dtype=np.uint8)],
    }
    medians = time_interleaved(peers, repeat=repeat, warmup=1)
    peer = medians["imageio.v3.imread"]
    print(f"\nvideo: {path.name}, {frames} frames 1280x720 H.264, median of {repeat}")
    print(f"{'reader':<30}{'s':>8}{'frames/s':>10}{'vs imageio':>12}")
    for name, t in medians.items():
        print(f"{name:<30}{t:>8.3f}{frames / t:>10.1f}{peer / t:>11.2f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=("audio", "video"))
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}; nothing to measure")
        return 0
    if args.only in (None, "audio"):
        bench_audio(args.repeat)
    if args.only in (None, "video"):
        bench_video(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
