"""Prepare a folder of video clips into a sigconv store.

    python datasets/video_clips.py --source clips/ --out prepared/clips --size 112 112 --step 2

One item per clip: ``(3, T, H, W)`` RGB floats in [0, 1] at the clip's frame
rate divided by ``--step``, frames resized to ``--size`` and cut at
``--max-frames`` so that a long video never has to fit in memory.  Decoding
runs in an isolated process with a time limit (:func:`sigconv.io.load_video`),
so a corrupt clip is recorded as a failure instead of hanging the run.
"""
import argparse
import sys

from sigconv.data.sources import prepare_folder
from sigconv.errors import SigconvError


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"))
    parser.add_argument("--step", type=int, default=1, help="keep every step-th frame")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--labels", default=None)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    stop = None if args.max_frames is None else args.max_frames * args.step
    try:
        summary = prepare_folder(args.source, args.out, kind="video", labels=args.labels,
                                 workers=args.workers,
                                 size=None if args.size is None else tuple(args.size),
                                 step=args.step, stop=stop)
    except SigconvError as exc:  # a bad labels file, a store in use by another run, ...
        print(f"video_clips: {exc}", file=sys.stderr)
        return 2
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
