"""3-D volumes: NIfTI (nibabel), DICOM files and series (pydicom), NumPy .npy/.npz.

Orientation returned
--------------------
NIfTI and DICOM volumes are reoriented to the closest canonical RAS+
orientation (the first voxel axis points to the patient's Right, the second
to Anterior, the third to Superior, as ``nibabel.as_closest_canonical``
does), then the three spatial axes are *reversed* so that the array is
``(C, depth, height, width)`` with

- depth  = the S axis (index 0 is the most inferior slice),
- height = the A axis (index 0 is the most posterior row),
- width  = the R axis (index 0 is the patient's left-most column).

So ``volume.data[c, k]`` is an axial slice.  ``affine`` maps a
``(depth, height, width, 1)`` index of the returned array to RAS+
millimetres, and ``spacing`` is in the same axis order.  The file's own
orientation (e.g. ``"LPS"``, DICOM's) is kept in ``meta["original_orientation"]``
and the returned one in ``meta["orientation"]`` (always ``"RAS"``).
NumPy arrays carry no orientation and are returned as stored (a 3-D array
``(D, H, W)`` becomes ``(1, D, H, W)``; a 4-D array is taken as
``(C, D, H, W)``) with ``spacing`` from the option (default 1 mm).
A 4-D NIfTI (time series, echoes) puts its fourth axis on channels.
"""
import pathlib
import warnings
import zipfile

import numpy as np

from ..errors import ArgumentError
from ._common import LoadError, check_file, extension, read_head, wrong_extension_or
from .signal import Signal

__all__ = ["load_volume", "load_nifti", "load_dicom", "load_numpy_volume", "EXTENSIONS"]

EXTENSIONS = (".nii", ".nii.gz", ".hdr", ".img", ".dcm", ".dicom", ".ima", ".npy", ".npz")

#: LPS (DICOM) to RAS (NIfTI) patient coordinates.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def sniff_format(head, path):
    """"nifti", "dicom", "npy", "npz" or None from the first bytes (and name for gzip/zip)."""
    name = path.name.lower()
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if len(head) >= 348 and head[344:348] in (b"n+1\x00", b"ni1\x00"):
        return "nifti"
    if len(head) >= 8 and head[4:8] in (b"n+2\x00", b"ni2\x00"):
        return "nifti"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[:2] == b"\x1f\x8b" and (name.endswith(".nii.gz") or name.endswith(".hdr.gz")):
        return "nifti"
    if head[:4] == b"PK\x03\x04":  # a zip archive whose first member is an .npy array
        first = head[30:30 + int.from_bytes(head[26:28], "little")]
        if name.endswith(".npz") or first.endswith(b".npy"):
            return "npz"
    return None


def format_from_extension(path):
    return {".nii": "nifti", ".nii.gz": "nifti", ".hdr": "nifti", ".img": "nifti",
            ".dcm": "dicom", ".dicom": "dicom", ".ima": "dicom",
            ".npy": "npy", ".npz": "npz"}.get(extension(path))


def _canonical(path, data, affine, dtype, **meta):
    """Reorient (i, j, k[, c]) data with a RAS affine to RAS+, return the (C, D, H, W) Signal."""
    import nibabel as nib

    affine = np.asarray(affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise LoadError(path, "corrupt", f"the voxel-to-world affine is not invertible:\n{affine}")
    original = "".join(nib.aff2axcodes(affine))
    ornt = nib.orientations.io_orientation(affine)
    shape = data.shape[:3]
    data = nib.orientations.apply_orientation(data, ornt)
    affine = affine @ nib.orientations.inv_ornt_aff(ornt, shape)
    if data.ndim == 3:
        data = data[..., None]
    elif data.ndim > 4:
        data = data.reshape(data.shape[:3] + (-1,))
    data = np.ascontiguousarray(data.transpose(3, 2, 1, 0), dtype=dtype)  # (C, k, j, i)
    reverse = np.zeros((4, 4))
    reverse[0, 2] = reverse[1, 1] = reverse[2, 0] = reverse[3, 3] = 1.0  # (d, h, w) -> (i, j, k)
    affine = affine @ reverse
    spacing = tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
    return Signal(data, "volume", spacing=spacing, affine=affine, path=str(path),
                  orientation="RAS", original_orientation=original, **meta)


# -- NIfTI --------------------------------------------------------------------
def load_nifti(path, *, dtype=np.float32):
    """NIfTI-1/2 (``.nii``, ``.nii.gz``) or Analyze pair through nibabel, reoriented to RAS+."""
    import nibabel as nib

    path = check_file(path)
    try:
        image = nib.load(str(path), mmap=False)
    except (nib.filebasedimages.ImageFileError, OSError, ValueError, EOFError) as exc:
        raise wrong_extension_or(path, "volume", "NIfTI", f"nibabel cannot read it: {exc}") from None
    header = image.header
    if extension(path) == ".nii" and hasattr(header, "get_data_offset"):
        expected = int(header.get_data_offset()) + int(
            np.prod(header.get_data_shape(), dtype=np.int64)) * header.get_data_dtype().itemsize
        size = path.stat().st_size
        if size < expected:
            raise LoadError(path, "truncated", f"the header promises {expected} bytes of image, "
                            f"the file has {size}")
    try:
        # nibabel reads lazily; force the read here so a damaged file fails now
        data = np.asarray(image.dataobj, dtype=np.float64 if dtype == np.float64 else np.float32)
    except (EOFError, ValueError, OSError, zlib_error()) as exc:
        raise LoadError(path, "truncated" if isinstance(exc, EOFError) or "end" in str(exc).lower()
                        else "corrupt", f"nibabel could not read the image data: {exc}") from None
    zooms = header.get_zooms()
    meta = {"format": type(image).__name__}
    if len(zooms) > 3 and data.ndim > 3:
        meta["channel_step"] = float(zooms[3])
    return _canonical(path, data, image.affine, dtype, **meta)


def zlib_error():
    import zlib

    return zlib.error


# -- DICOM --------------------------------------------------------------------
def _dcmread(path, *, stop_before_pixels=False):
    """pydicom.dcmread turning its truncation warnings into LoadError."""
    import pydicom

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(str(path), stop_before_pixels=stop_before_pixels)
        except pydicom.errors.InvalidDicomError as exc:
            raise LoadError(path, "corrupt", f"not a DICOM file: {exc}") from None
        except (EOFError, OSError, ValueError, KeyError, TypeError, struct_error()) as exc:
            raise LoadError(path, "truncated" if isinstance(exc, EOFError) else "corrupt",
                            f"pydicom cannot parse it: {exc}") from None
    for w in caught:
        text = str(w.message)
        if any(key in text.lower() for key in ("truncat", "end of file", "unexpected end",
                                                 "expected explicit vr", "delimiter")):
            raise LoadError(path, "truncated", f"pydicom: {text}")
    return ds


def struct_error():
    import struct

    return struct.error


def _pixels(path, ds):
    """Rescaled float64 pixel array (frames, rows, cols) of one dataset."""
    if "PixelData" not in ds:
        # pydicom stops silently where a file is cut: tell a cut image from a non-image
        sop = ds.get("SOPClassUID")
        sop_name = getattr(sop, "name", "") if sop is not None else ""
        if "Image Storage" in sop_name or "Rows" in ds:
            raise LoadError(path, "truncated", f"the file ends before its pixel data ({sop_name})")
        if sop is None:
            raise LoadError(path, "truncated", "the file ends inside its header (no SOP class, "
                            "no pixel data)")
        raise LoadError(path, "unsupported", f"the DICOM file holds no image ({sop_name}, "
                        "no PixelData)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = ds.pixel_array
    except (ValueError, RuntimeError, NotImplementedError, AttributeError) as exc:
        text = str(exc)
        cause = "truncated" if "less than expected" in text or "truncat" in text else "corrupt"
        if "no available" in text.lower() or "handler" in text.lower():
            cause = "unsupported"
        raise LoadError(path, cause, f"pydicom could not decode the pixel data: {text}") from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples != 1:
        raise LoadError(path, "unsupported", f"{samples} samples per pixel: colour DICOM is not a "
                        "CT/MR volume (use load_image after export)")
    array = array.reshape(frames, array.shape[-2], array.shape[-1]).astype(np.float64)
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    return array * slope + intercept


def _geometry(ds):
    """(row direction, column direction, pixel spacing (row, col), position) in LPS."""
    orientation = ds.get("ImageOrientationPatient")
    if orientation is not None and len(orientation) == 6:
        row_dir = np.array(orientation[:3], dtype=np.float64)
        col_dir = np.array(orientation[3:], dtype=np.float64)
    else:
        row_dir, col_dir = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing") or (1.0, 1.0)
    position = ds.get("ImagePositionPatient")
    position = np.array(position, dtype=np.float64) if position is not None else np.zeros(3)
    return row_dir, col_dir, (float(spacing[0]), float(spacing[1])), position


def _dicom_signal(path, datasets, pixels, dtype, slice_spacing):
    row_dir, col_dir, (row_sp, col_sp), first = _geometry(datasets[0])
    normal = np.cross(row_dir, col_dir)
    affine = np.eye(4)
    affine[:3, 0] = row_dir * col_sp      # i: along a row (column index)
    affine[:3, 1] = col_dir * row_sp      # j: down the rows
    affine[:3, 2] = normal * slice_spacing
    affine[:3, 3] = first
    volume = np.stack(pixels, axis=0)     # (k, j, i)
    ds = datasets[0]
    meta = {"modality": str(ds.get("Modality", "")),
            "units": "HU" if str(ds.get("Modality", "")) == "CT" else str(ds.get("RescaleType", "")),
            "slices": len(pixels)}
    return _canonical(path, volume.transpose(2, 1, 0), _LPS_TO_RAS @ affine, dtype, **meta)


def _slice_thickness(ds):
    for key in ("SpacingBetweenSlices", "SliceThickness"):
        value = ds.get(key)
        if value not in (None, "") and float(value) > 0:
            return float(value)
    return 1.0


def load_dicom(path, *, series=None, dtype=np.float32):
    """A DICOM file, or a directory holding one series, as a volume in RAS+.

    Slices of a directory are sorted by their position along the slice
    normal (``ImagePositionPatient`` projected on the cross product of
    ``ImageOrientationPatient``); the slice spacing is the median distance
    between neighbouring positions.  ``RescaleSlope`` and
    ``RescaleIntercept`` are applied (Hounsfield units for CT).  A directory
    with several series needs ``series=`` (a SeriesInstanceUID).
    """
    path = check_file(path, directory_ok=True)
    if not path.is_dir():
        ds = _dcmread(path)
        array = _pixels(path, ds)
        return _dicom_signal(path, [ds] * len(array), list(array), dtype, _slice_thickness(ds))
    groups = {}
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        head = read_head(file, 132)
        if len(head) < 132 or head[128:132] != b"DICM":
            if file.suffix.lower() not in (".dcm", ".dicom", ".ima"):
                continue  # DICOMDIR listings, notes, thumbnails
        ds = _dcmread(file, stop_before_pixels=True)
        if "ImagePositionPatient" not in ds:
            continue
        groups.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((file, ds))
    if not groups:
        raise LoadError(path, "unsupported", "the directory holds no DICOM image slices")
    if series is None:
        if len(groups) > 1:
            raise LoadError(path, "unsupported", f"the directory holds {len(groups)} series; pick "
                            f"one with series=: {', '.join(sorted(groups))}")
        series = next(iter(groups))
    if series not in groups:
        raise ArgumentError(f"series {series!r} is not in {path}; it holds {', '.join(sorted(groups))}")
    members = groups[series]
    row_dir, col_dir, _, _ = _geometry(members[0][1])
    normal = np.cross(row_dir, col_dir)
    members.sort(key=lambda item: float(np.dot(_geometry(item[1])[3], normal)))
    positions = np.array([np.dot(_geometry(ds)[3], normal) for _, ds in members])
    gaps = np.diff(positions)
    if len(gaps) and np.min(gaps) <= 1e-6:
        raise LoadError(path, "corrupt", "two slices of the series share one position")
    spacing = float(np.median(gaps)) if len(gaps) else _slice_thickness(members[0][1])
    datasets, pixels = [], []
    for file, _ in members:
        ds = _dcmread(file)
        datasets.append(ds)
        pixels.append(_pixels(file, ds)[0])
    shapes = {p.shape for p in pixels}
    if len(shapes) > 1:
        raise LoadError(path, "corrupt", f"slices of one series differ in size: {sorted(shapes)}")
    signal = _dicom_signal(path, datasets, pixels, dtype, spacing)
    if len(gaps) and np.ptp(gaps) > 0.01 * spacing:
        signal.meta["irregular_slice_spacing"] = gaps.tolist()
    signal.meta["series"] = series
    return signal


# -- NumPy --------------------------------------------------------------------
def load_numpy_volume(path, *, key=None, spacing=1.0, dtype=np.float32):
    """A 3-D ``(D, H, W)`` or 4-D ``(C, D, H, W)`` array from ``.npy`` or ``.npz`` (``key=``)."""
    path = check_file(path)
    head = read_head(path)
    try:
        if head[:6] == b"\x93NUMPY":
            array = _load_npy(path)
        else:
            with np.load(str(path), allow_pickle=False) as loaded:
                if not isinstance(loaded, np.lib.npyio.NpzFile):
                    raise LoadError(path, "corrupt", "not a .npy or .npz file")
                keys = list(loaded.keys())
                if key is None:
                    if len(keys) != 1:
                        raise LoadError(path, "unsupported", f"the archive holds arrays {keys}; "
                                        "pick one with key=")
                    key = keys[0]
                if key not in keys:
                    raise LoadError(path, "unsupported", f"no array {key!r}; the archive holds {keys}")
                array = loaded[key]
    except LoadError:
        raise
    except (zipfile.BadZipFile, EOFError) as exc:
        cause = "truncated" if head[:4] == b"PK\x03\x04" else "corrupt"
        raise LoadError(path, cause, f"not a readable .npz archive: {exc}") from None
    except (ValueError, OSError, TypeError) as exc:
        cause = "truncated" if "reshape" in str(exc) or "size" in str(exc) else "corrupt"
        raise wrong_extension_or(path, "volume", "NumPy", f"numpy cannot read it: {exc}") \
            if cause == "corrupt" else LoadError(path, cause, f"numpy cannot read it: {exc}") from None
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise LoadError(path, "unsupported", f"a volume needs a 3-D (D, H, W) or 4-D (C, D, H, W) "
                        f"array, found shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise LoadError(path, "unsupported", f"array dtype {array.dtype} is not numeric")
    if np.ndim(spacing) == 0:
        spacing = (float(spacing),) * 3
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != 3 or not all(s > 0 for s in spacing):
        raise ArgumentError(f"spacing must be one positive number or three, got {spacing}")
    affine = np.diag(list(spacing) + [1.0])
    return Signal(np.ascontiguousarray(array, dtype=dtype), "volume", spacing=spacing,
                  affine=affine, path=str(path), orientation=None, original_orientation=None,
                  source_dtype=str(array.dtype))


def _load_npy(path):
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
        except Exception as exc:  # numpy's header parser raises ValueError, SyntaxError, TokenError
            raise LoadError(path, "corrupt", f"bad .npy header: {exc}") from None
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        available = path.stat().st_size - f.tell()
    if available < expected:
        raise LoadError(path, "truncated", f"the header promises {expected} bytes of array, "
                        f"{available} follow")
    return np.load(str(path), allow_pickle=False)


# -- dispatch -----------------------------------------------------------------
def load_volume(path, *, dtype=np.float32, **options):
    """Load a CT/MR volume: NIfTI, DICOM (file or series directory) or .npy/.npz.

    The format is recognised by content first, then by extension.  Options go
    to :func:`load_nifti`, :func:`load_dicom` (``series=``) or
    :func:`load_numpy_volume` (``key=``, ``spacing=``).

    Returns
    -------
    Signal
        ``data`` shape (C, D, H, W), axes ("channel", "depth", "height",
        "width"), ``spacing`` (mm, per axis), ``affine`` (index -> RAS+ mm);
        see the module docstring for the orientation.
    """
    path = check_file(path, directory_ok=True)
    if path.is_dir():
        return load_dicom(path, dtype=dtype, **options)
    fmt = sniff_format(read_head(path), path) or format_from_extension(path)
    if fmt is None:
        raise LoadError(path, "unsupported", "not a NIfTI, DICOM, .npy or .npz file")
    loader = {"nifti": load_nifti, "dicom": load_dicom, "npy": load_numpy_volume,
              "npz": load_numpy_volume}[fmt]
    return loader(path, dtype=dtype, **options)
