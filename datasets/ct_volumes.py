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

``--slabs TRAIN VALIDATION TEST`` cuts each volume along its first axis into
three slabs of those fractions, items ``<volume>__train`` and so on with
that split and their ``slab_origin``: held-out slabs for denoising and
labelling one volume (``sigconv train --task denoise``).
``--label-thresholds T1 T2 ...`` appends a channel holding each voxel's class,
``np.digitize(value, thresholds)`` on the (resampled, windowed) intensities,
and records ``target_channels: 1``: a dense-labelling store (``--task label``).

The stent workflow of the README::

    python datasets/ct_volumes.py --source ../shared/data/volumes/stent.npz \
        --out prepared/stent --slabs 0.7 0.1 0.2 --label-thresholds 250 800
"""
import argparse
import functools
import os
import sys

from sigconv.data import prepare
from sigconv.data.sources import EXTENSIONS, folder_sources, relative_source, signal_metadata
from sigconv.errors import SigconvError


def convert_volume(path, *, spacing=None, window=None, patch=None, stride=None, slabs=None,
                   thresholds=None):
    """Load one volume, resample it to ``spacing`` mm; return ``(data, metadata)``.

    With ``thresholds`` a last channel holds each voxel's class.  With
    ``slabs`` (train, validation, test fractions) or ``patch`` (D, H, W
    voxels), return the volume's pieces instead, a list of ``(suffix, data,
    metadata)``: the slabs along the first axis, each with its ``split``;
    and/or windows every ``stride`` voxels (default: the patch size), the
    last one flush with the end of each axis, each with its ``patch_origin``.
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
    if thresholds is not None:
        labels = np.digitize(data[:1], thresholds).astype(np.float32)
        data = np.concatenate([data, labels])
        metadata.update(target_channels=1, label_thresholds=list(thresholds))
    pieces = [("", data, metadata)]
    if slabs is not None:
        depth = data.shape[1]
        ends = np.round(np.cumsum(slabs) / np.sum(slabs) * depth).astype(int)
        starts = np.concatenate([[0], ends[:-1]])
        pieces = [(split, data[:, a:b], dict(metadata, split=split, slab_origin=int(a)))
                  for split, a, b in zip(("train", "validation", "test"), starts, ends)
                  if b > a]
    if patch is None:
        return (data, metadata) if slabs is None else pieces
    stride = patch if stride is None else stride
    patches = []
    for suffix, piece, info in pieces:
        starts = [window_starts(n, p, s) for n, p, s in zip(piece.shape[1:], patch, stride)]
        for origin in itertools.product(*starts):
            region = tuple(slice(o, o + p) for o, p in zip(origin, patch))
            name = "_".join(map(str, origin))
            patches.append((f"{suffix}_{name}" if suffix else name,
                            piece[(slice(None),) + region],
                            dict(info, patch_origin=list(origin))))
    return patches


def ct_sources(source, labels=None):
    """Volume files, plus one source per folder of DICOM files (a series); or one file."""
    if os.path.isfile(source):
        return [relative_source(os.path.basename(source), source)]
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
        sources.append(relative_source(item, path, label))
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
    parser.add_argument("--slabs", type=float, nargs=3, default=None,
                        metavar=("TRAIN", "VALIDATION", "TEST"),
                        help="cut each volume along its first axis into held-out slabs of "
                             "these fractions")
    parser.add_argument("--label-thresholds", type=float, nargs="+", default=None,
                        help="append a channel of voxel classes np.digitize(value, thresholds)")
    parser.add_argument("--labels", default=None)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    spacing = None if args.spacing is None else (
        args.spacing[0] if len(args.spacing) == 1 else tuple(args.spacing))
    patch = None if args.patch is None else tuple(args.patch)
    stride = None if args.patch_stride is None else tuple(args.patch_stride)
    if args.slabs is not None and (min(args.slabs) < 0 or sum(args.slabs) <= 0):
        parser.error(f"--slabs takes three fractions >= 0 with a positive sum, got {args.slabs}")
    if args.label_thresholds is not None and \
            sorted(args.label_thresholds) != args.label_thresholds:
        parser.error(f"--label-thresholds must increase, got {args.label_thresholds}")
    convert = functools.partial(convert_volume, spacing=spacing, window=args.window,
                                patch=patch, stride=stride, slabs=args.slabs,
                                thresholds=args.label_thresholds)
    try:
        summary = prepare(ct_sources(args.source, args.labels), args.out, convert,
                          workers=args.workers)
    except SigconvError as exc:  # a bad labels file, a store in use by another run, ...
        print(f"ct_volumes: {exc}", file=sys.stderr)
        return 2
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
