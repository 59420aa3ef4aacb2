"""Prepare a folder of BVH motion-capture files into a sigconv store.

    python datasets/mocap.py --source mocap/ --out prepared/mocap [--radians]

One item per file: ``(channels, frames)``, every joint's rotation channel
(and the root's position) in file order, at the file's frame rate (recorded
with the channel names and joint hierarchy).  A class per sub-folder (e.g. one
per action) or ``--labels file.csv`` gives labels.
"""
import argparse
import sys

from sigconv.data.sources import prepare_folder
from sigconv.errors import SigconvError


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--radians", action="store_true", help="angles in radians, not degrees")
    parser.add_argument("--labels", default=None)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        summary = prepare_folder(args.source, args.out, kind="skeleton", labels=args.labels,
                                 workers=args.workers, radians=args.radians)
    except SigconvError as exc:  # a bad labels file, a store in use by another run, ...
        print(f"mocap: {exc}", file=sys.stderr)
        return 2
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
