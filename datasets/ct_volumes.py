"""Prepare a folder of CT volumes (NIfTI files, DICOM series, .npy/.npz) into a sigconv store.

    python datasets/ct_volumes.py --source hospital_export/ --out prepared/ct --spacing 1.0

Each NIfTI file, each DICOM file or folder holding one series, and each
``.npy``/``.npz`` volume becomes one item ``(1, D, H, W)``: Hounsfield units
for CT (DICOM rescale slope and intercept applied by :func:`sigconv.io.load_volume`),
in the RAS+ orientation sigconv.io returns, resampled to ``--spacing`` mm
(one value, or three for depth, height and width), with its spacing and
affine recorded.  A class per sub-folder or ``--labels file.csv`` gives labels.
Training samples patches from the stored volumes (the store keeps each volume
whole so patch size can change without preparing again).
"""
import argparse
import functools
import os
import sys

from sigconv.data import Source, prepare
from sigconv.data.sources import EXTENSIONS, folder_sources, hashed_split, item_id, signal_metadata


def convert_volume(path, *, spacing=None, window=None):
    """Load one volume, resample it to ``spacing`` mm; return ``(data, metadata)``."""
    import numpy as np

    from sigconv import io

    signal = io.load_volume(path)
    if spacing is not None:
        signal = signal.resample(spacing=spacing)
    if window is not None:
        signal = signal.window(window)
    return np.asarray(signal.data, dtype=np.float32), signal_metadata(signal)


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
    parser.add_argument("--labels", default=None)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    spacing = None if args.spacing is None else (
        args.spacing[0] if len(args.spacing) == 1 else tuple(args.spacing))
    convert = functools.partial(convert_volume, spacing=spacing, window=args.window)
    summary = prepare(ct_sources(args.source, args.labels), args.out, convert,
                      workers=args.workers)
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
