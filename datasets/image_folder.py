"""Prepare a folder of images (a class per sub-folder, or a labels file) into a sigconv store.

    python datasets/image_folder.py --source photos/ --out prepared/photos [--mode RGB]

One item per image: ``(C, H, W)`` floats in [0, 1] (uint8 and uint16 scaled),
greyscale, RGB or RGBA as stored unless ``--mode`` converts (see
:func:`sigconv.io.load_image`).  Images keep their own sizes: sigconv batches
them as Ragged, or with a bucketing sampler.
"""
import argparse
import sys

from sigconv.data.sources import prepare_folder
from sigconv.errors import SigconvError


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--mode", default=None, help="convert to L, RGB or RGBA")
    parser.add_argument("--labels", default=None)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        summary = prepare_folder(args.source, args.out, kind="image", labels=args.labels,
                                 workers=args.workers, mode=args.mode)
    except SigconvError as exc:  # a bad labels file, a store in use by another run, ...
        print(f"image_folder: {exc}", file=sys.stderr)
        return 2
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
