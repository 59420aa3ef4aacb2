"""Prepare a folder of CT volumes (NIfTI files, DICOM series, .npy/.npz) into a sigconv store.

    python datasets/ct_volumes.py --source hospital_export/ --out prepared/ct --spacing 1.0

Each NIfTI file, each DICOM file or folder holding one series, and each
``.npy``/``.npz`` volume becomes one item ``(1, D, H, W)``: Hounsfield units
for CT (DICOM rescale slope and intercept applied by :func:`sigconv.io.load_volume`),
in the RAS+ orientation sigconv.io returns, resampled to ``--spacing`` mm
(one value, or three for depth, height and width), with its spacing and
affine recorded.  A class per sub-folder or ``--labels file.csv`` gives labels.
``--patch D H W`` (and ``--patch-stride``) stores patches instead, item ids
``<volume>__<z>_<y>_<x>`` with their ``patch_origin``; without it each volume
is stored whole and training can sample its own patches.
"""
import argparse
import functools
import os
import sys

from sigconv.data import Source, prepare
from sigconv.data.sources import EXTENSIONS, folder_sources, hashed_split, item_id, signal_metadata


def convert_volume(path, *, spacing=None, window=None, patch=None, stride=None):
    """Load one volume, resample it to ``spacing`` mm; return ``(data, metadata)``.

    With ``patch`` (D, H, W voxels), return the volume's patches instead, a
    list of ``(suffix, data, metadata)``: windows every ``stride`` voxels
    (default: the patch size), the last one flush with the end of each axis,
    each recording its ``patch_origin``.
    """
    import itertools

    import numpy as np

    from sigconv import io
    from sigconv.data import window_starts

    signal = io.load_volume(path)
    if spacing is not None:
        signal = signal.resample(spacing=spacing)
    if window is not None:
        signal = signal.window(window)
    data, metadata = np.asarray(signal.data, dtype=np.float32), signal_metadata(signal)
    if patch is None:
        return data, metadata
    stride = patch if stride is None else stride
    starts = [window_starts(n, p, s) for n, p, s in zip(data.shape[1:], patch, stride)]
    patches = []
    for origin in itertools.product(*starts):
        region = tuple(slice(o, o + p) for o, p in zip(origin, patch))
        patches.append(("_".join(map(str, origin)), data[(slice(None),) + region],
                        dict(metadata, patch_origin=list(origin))))
    return patches


def ct_sources(source, labels=None):
    """Volume files, plus one source per folder of DICOM files (a series)."""
    sources = [s for s in folder_sources(source, labels=labels, extensions=EXTENSIONS["volume"])
               if not s.path.lower().endswith(".dcm")]
    series = {}
    for folder, _, files in os.walk(source):
        if any(f.lower().endswith(".dcm") for f in files):
            series[folder] = [f for f in files if f.lower().endswith(".dcm")]
    for folder, files in sorted(series.items()):
        relative = os.path.relpath(folder, source)
        if len(files) == 1:  # a single-file volume or slice
            path = os.path.join(folder, files[0])
            item = os.path.normpath(os.path.join(relative, files[0]))
        else:
            path, item = folder, relative
        label = None if relative == "." else relative.split(os.sep)[0]
        sources.append(Source(item_id(item), path, {"label": label, "split": hashed_split(item),
                                                    "relative_path": item}))
    return sorted(sources, key=lambda s: s.id)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--spacing", type=float, nargs="+", default=None,
                        help="resample to this voxel size in mm (1 or 3 values)")
    parser.add_argument("--window", default=None, help="a Hounsfield window name, e.g. abdomen")
    parser.add_argument("--patch", type=int, nargs=3, default=None, metavar=("D", "H", "W"),
                        help="store patches of this many voxels instead of whole volumes")
    parser.add_argument("--patch-stride", type=int, nargs=3, default=None, metavar=("D", "H", "W"),
                        help="voxels between patches (default: the patch size)")
    parser.add_argument("--labels", default=None)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    spacing = None if args.spacing is None else (
        args.spacing[0] if len(args.spacing) == 1 else tuple(args.spacing))
    patch = None if args.patch is None else tuple(args.patch)
    stride = None if args.patch_stride is None else tuple(args.patch_stride)
    convert = functools.partial(convert_volume, spacing=spacing, window=args.window,
                                patch=patch, stride=stride)
    summary = prepare(ct_sources(args.source, args.labels), args.out, convert,
                      workers=args.workers)
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
