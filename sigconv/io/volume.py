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
from __future__ import annotations

import gzip
import math
import pathlib
import struct
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from ..errors import ArgumentError
from ._common import (MAX_BYTES, LoadError, check_file, check_max_bytes, extension,
                      library_error, limit, read_head)
from .formats import BY_NAME, extensions, gunzip_head, nifti_class, recognise, wrong_extension_or
from .signal import Signal
from ..typing import PathLike

__all__ = ["load_volume", "load_nifti", "load_dicom", "load_numpy_volume", "EXTENSIONS"]

#: The extensions of volume files (:data:`sigconv.io.formats.FORMATS`).
EXTENSIONS = extensions("volume")

#: DICOM files of a series directory without the DICM magic go by these.
_DICOM_EXTENSIONS = BY_NAME["DICOM"].extensions

#: LPS (DICOM) to RAS (NIfTI) patient coordinates.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


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
def load_nifti(path: PathLike, *, dtype: DTypeLike = np.float32,
               max_bytes: float | None = MAX_BYTES) -> Signal:
    """NIfTI-1/2 (``.nii``, ``.nii.gz``) or Analyze pair through nibabel, reoriented to RAS+.

    A single-file NIfTI is recognised by its content (its magic, inside gzip
    or not), whatever its name, and handed to the nibabel image class its
    magic names; a ``.hdr``/``.img`` pair goes by name.  ``max_bytes``
    refuses (LoadError, cause "too large") an image whose header claims more
    bytes (as stored, or as ``dtype``).
    """
    import nibabel as nib

    path = check_file(path)
    max_bytes = check_max_bytes(max_bytes)
    head = read_head(path, 4096)
    compressed = head[:2] == b"\x1f\x8b"
    raw = gunzip_head(head) if compressed else head
    klass = nifti_class(raw)
    opened = None
    image: Any  # a Nifti1Image, Nifti2Image or pair: FileBasedImage declares none of their parts
    try:
        if klass in ("Nifti1Image", "Nifti2Image"):
            # content first: the class from the magic, not from the file name
            opened = gzip.open(path, "rb") if compressed else open(path, "rb")
            holder = nib.fileholders.FileHolder(filename=str(path), fileobj=opened)
            image = getattr(nib, klass).from_file_map({"image": holder}, mmap=False)
        else:
            image = nib.load(str(path), mmap=False)
        header = image.header
        shape = tuple(int(n) for n in header.get_data_shape())
        stored = header.get_data_dtype()
    except LoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - HeaderDataError, ImageFileError, zlib.error, ...
        _close(opened)
        if isinstance(exc, nib.filebasedimages.ImageFileError) or klass is None:
            raise wrong_extension_or(path, "volume", "NIfTI", f"nibabel cannot read it: "
                                     f"{type(exc).__name__}: {exc}") from None
        raise _nibabel_error(path, exc, "header") from None
    try:
        if not shape or min(shape) < 1:
            raise LoadError(path, "corrupt", f"the header gives the image shape {shape} (dim = "
                            f"{[int(n) for n in header['dim']] if 'dim' in header.keys() else '?'}), expected 1 to 7 sizes >= 1")
        count = math.prod(shape)
        out_itemsize = 8 if dtype == np.float64 else 4
        limit(path, count * max(stored.itemsize, out_itemsize), max_bytes,
              f"an image of shape {shape} ({stored} in the file)")
        _check_xform_codes(path, raw, klass)
        for name in ("scl_slope", "scl_inter"):
            value = float(np.asarray(header[name])) if name in header.keys() else 0.0
            if np.isinf(value):
                raise LoadError(path, "corrupt", f"the header's {name} is {value}, expected a "
                                "finite number (or NaN / 0 for no scaling)")
        if klass is not None and not compressed:
            expected = int(header.get_data_offset()) + count * stored.itemsize
            size = path.stat().st_size
            if size < expected:
                raise LoadError(path, "truncated", f"the header promises {expected} bytes of "
                                f"image, the file has {size}")
        try:
            # nibabel reads lazily; force the read here so a damaged file fails now
            data = np.asarray(image.dataobj, dtype=np.float64 if dtype == np.float64 else np.float32)
            if compressed and opened is not None:
                while opened.read(2**20):  # to the end: gzip checks its CRC and length there
                    pass
        except LoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - EOFError, zlib.error, BadGzipFile, ...
            raise _nibabel_error(path, exc, "image data") from None
        zooms = header.get_zooms()
        affine = image.affine
    finally:
        _close(opened)
    if data.ndim < 3:  # a single slice or line: spatial axes of size 1
        data = data.reshape(data.shape + (1,) * (3 - data.ndim))
    meta: dict[str, Any] = {"format": type(image).__name__}
    if len(zooms) > 3 and data.ndim > 3:
        meta["channel_step"] = float(zooms[3])
    return _canonical(path, data, affine, dtype, **meta)


def _check_xform_codes(path, raw, klass):
    """Refuse qform/sform codes outside 0-5, which nibabel would silently reset to 0
    (dropping the file's orientation) - read from the raw header bytes."""
    if klass == "Nifti1Image":
        order = "<" if raw[:4] == (348).to_bytes(4, "little") else ">"
        codes = struct.unpack(order + "hh", raw[252:256])
    elif klass == "Nifti2Image":
        order = "<" if raw[:4] == (540).to_bytes(4, "little") else ">"
        codes = struct.unpack(order + "ii", raw[344:352])
    else:
        return
    for name, code in zip(("qform_code", "sform_code"), codes):
        if not 0 <= code <= 5:
            raise LoadError(path, "corrupt", f"the header's {name} is {code}, expected 0 to 5 "
                            "(NIFTI_XFORM_UNKNOWN ... NIFTI_XFORM_TEMPLATE_OTHER)")


def _close(fileobj):
    if fileobj is not None:
        try:
            fileobj.close()
        except Exception:  # noqa: BLE001 - a damaged gzip stream may fail again here
            pass


def _nibabel_error(path, exc, part):
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, EOFError) or "end" in str(exc).lower() and "data code" not in str(exc):
        return LoadError(path, "truncated", f"nibabel could not read the {part}: {text}")
    if isinstance(exc, MemoryError):
        return library_error(path, "nibabel", exc)
    return LoadError(path, "corrupt", f"nibabel could not read the {part}: {text}")


# -- DICOM --------------------------------------------------------------------
def _dcmread(path, *, stop_before_pixels=False):
    """pydicom.dcmread turning its truncation warnings into LoadError."""
    import pydicom

    from pydicom.filereader import read_partial

    last = [-1]

    def stop_when(tag, vr, length):
        # the top-level data set ends where its tags stop ascending: what follows is
        # padding (zero bytes parse as one empty element per 8 bytes: seconds per MiB)
        if tag <= last[0] or (stop_before_pixels and tag == 0x7FE00010):
            return True
        last[0] = tag
        return False

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with open(path, "rb") as f:
                ds = read_partial(f, stop_when=stop_when)
        except pydicom.errors.InvalidDicomError as exc:
            raise LoadError(path, "corrupt", f"not a DICOM file: {exc}") from None
        except (EOFError, OSError, ValueError, KeyError, TypeError, struct.error) as exc:
            raise LoadError(path, "truncated" if isinstance(exc, EOFError) else "corrupt",
                            f"pydicom cannot parse it: {type(exc).__name__}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - whatever else a damaged header makes pydicom raise
            raise library_error(path, "pydicom", exc) from None
    for w in caught:
        text = str(w.message)
        if any(key in text.lower() for key in ("truncat", "end of file", "unexpected end",
                                                 "expected explicit vr", "delimiter")):
            raise LoadError(path, "truncated", f"pydicom: {text}")
    return ds


def _pixels(path, ds, max_bytes=None):
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
        rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    except (TypeError, ValueError, OverflowError) as exc:
        raise LoadError(path, "corrupt", f"the image header is not numbers: {exc}") from None
    if rows < 1 or columns < 1 or frames < 1 or samples < 1:
        raise LoadError(path, "corrupt", f"the header gives {frames} frame(s) of {rows} x "
                        f"{columns} pixels of {samples} sample(s), expected sizes >= 1")
    limit(path, frames * rows * columns * samples * 8, max_bytes,
          f"{frames} frame(s) of {rows} x {columns} pixels (float64)")
    if not (np.isfinite(slope) and np.isfinite(intercept)):
        raise LoadError(path, "corrupt", f"RescaleSlope {slope} and RescaleIntercept {intercept}: "
                        "expected finite numbers")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = ds.pixel_array
    except MemoryError as exc:
        raise library_error(path, "pydicom", exc) from None
    except Exception as exc:  # noqa: BLE001 - ValueError, RuntimeError, NotImplementedError, ...
        text = f"{type(exc).__name__}: {exc}"
        cause = "truncated" if "less than expected" in text or "truncat" in text else "corrupt"
        if "no available" in text.lower() or "handler" in text.lower():
            cause = "unsupported"
        raise LoadError(path, cause, f"pydicom could not decode the pixel data: {text}") from None
    if samples != 1:
        raise LoadError(path, "unsupported", f"{samples} samples per pixel: colour DICOM is not a "
                        "CT/MR volume (use load_image after export)")
    if array.size != frames * rows * columns:
        raise LoadError(path, "corrupt", f"pydicom decoded {array.size} pixels, the header "
                        f"promises {frames} x {rows} x {columns}")
    array = array.reshape(frames, rows, columns).astype(np.float64)
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


def load_dicom(path: PathLike, *, series: str | None = None, dtype: DTypeLike = np.float32,
               max_bytes: float | None = MAX_BYTES) -> Signal:
    """A DICOM file, or a directory holding one series, as a volume in RAS+.

    Slices of a directory are sorted by their position along the slice
    normal (``ImagePositionPatient`` projected on the cross product of
    ``ImageOrientationPatient``); the slice spacing is the median distance
    between neighbouring positions.  ``RescaleSlope`` and
    ``RescaleIntercept`` are applied (Hounsfield units for CT).  A directory
    with several series needs ``series=`` (a SeriesInstanceUID).  ``max_bytes``
    refuses (LoadError, cause "too large") pixel data that need more bytes
    (as float64, before the conversion to ``dtype``).
    """
    path = check_file(path, directory_ok=True)
    max_bytes = check_max_bytes(max_bytes)
    if not path.is_dir():
        ds = _dcmread(path)
        array = _pixels(path, ds, max_bytes)
        return _dicom_signal(path, [ds] * len(array), list(array), dtype, _slice_thickness(ds))
    groups: dict[Any, list[Any]] = {}
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        head = read_head(file, 132)
        if len(head) < 132 or head[128:132] != b"DICM":
            if file.suffix.lower() not in _DICOM_EXTENSIONS:
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
    datasets, pixels, held = [], [], 0
    for file, _ in members:
        ds = _dcmread(file)
        datasets.append(ds)
        pixels.append(_pixels(file, ds, max_bytes)[0])
        held += pixels[-1].nbytes
        limit(path, held, max_bytes, f"the series' {len(members)} slices (float64)")
    shapes = {p.shape for p in pixels}
    if len(shapes) > 1:
        raise LoadError(path, "corrupt", f"slices of one series differ in size: {sorted(shapes)}")
    signal = _dicom_signal(path, datasets, pixels, dtype, spacing)
    if len(gaps) and np.ptp(gaps) > 0.01 * spacing:
        signal.meta["irregular_slice_spacing"] = gaps.tolist()
    signal.meta["series"] = series
    return signal


# -- NumPy --------------------------------------------------------------------
def load_numpy_volume(path: PathLike, *, key: str | None = None,
                      spacing: float | Sequence[float] = 1.0, dtype: DTypeLike = np.float32,
                      max_bytes: float | None = MAX_BYTES) -> Signal:
    """A 3-D ``(D, H, W)`` or 4-D ``(C, D, H, W)`` array from ``.npy`` or ``.npz`` (``key=``).

    The array's header is read first: an array that needs more than
    ``max_bytes`` (as stored or as ``dtype``) is refused with LoadError
    (cause "too large") before anything is inflated or allocated, and an
    ``.npz`` member must hold exactly the bytes its header promises (its
    CRC is checked).
    """
    path = check_file(path)
    max_bytes = check_max_bytes(max_bytes)
    out_itemsize = np.dtype(dtype).itemsize
    head = read_head(path)
    if head[:6] == b"\x93NUMPY":
        array = _load_npy(path, max_bytes, out_itemsize)
    elif head[:4] == b"PK\x03\x04" or extension(path) == ".npz":
        array = _load_npz(path, head, key, max_bytes, out_itemsize)
    else:
        raise wrong_extension_or(path, "volume", "NumPy", "not a .npy file (no \\x93NUMPY magic) "
                                 "or an .npz archive (no zip signature)")
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise LoadError(path, "unsupported", f"a volume needs a 3-D (D, H, W) or 4-D (C, D, H, W) "
                        f"array, found shape {array.shape}")
    if np.ndim(spacing) == 0:  # one number for every axis (np.ndim, not isinstance: numpy scalars)
        spacing = (float(spacing),) * 3  # type: ignore[arg-type]
    spacing = tuple(float(s) for s in spacing)  # type: ignore[union-attr]
    if len(spacing) != 3 or not all(s > 0 for s in spacing):
        raise ArgumentError(f"spacing must be one positive number or three, got {spacing}")
    affine = np.diag(list(spacing) + [1.0])
    return Signal(np.ascontiguousarray(array, dtype=dtype), "volume", spacing=spacing,
                  affine=affine, path=str(path), orientation=None, original_orientation=None,
                  source_dtype=str(array.dtype))


def _npy_header(path, f, what):
    """(shape, fortran_order, dtype) from the .npy header at ``f``'s position, or LoadError."""
    try:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
    except LoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - ValueError, SyntaxError, TokenError, zlib.error, ...
        if isinstance(exc, (EOFError, zipfile.BadZipFile, zlib.error)) or "EOF" in str(exc):
            raise LoadError(path, "truncated" if isinstance(exc, EOFError) or "EOF" in str(exc)
                            else "corrupt", f"cannot read the .npy header of {what}: "
                            f"{type(exc).__name__}: {exc}") from None
        raise LoadError(path, "corrupt", f"bad .npy header of {what}: {type(exc).__name__}: "
                        f"{exc}") from None
    if dtype.kind not in "biuf" or dtype.hasobject:
        raise LoadError(path, "unsupported", f"{what} has dtype {dtype}, expected numbers "
                        "(bool, int, uint or float)")
    if any(n < 0 for n in shape):
        raise LoadError(path, "corrupt", f"{what} has the shape {shape}, expected sizes >= 0")
    return shape, fortran, dtype


def _check_array_size(path, shape, dtype, out_itemsize, max_bytes, what):
    count = math.prod(shape)
    limit(path, count * max(dtype.itemsize, out_itemsize), max_bytes,
          f"{what} of shape {shape} and dtype {dtype}")
    return count


def _load_npy(path, max_bytes=None, out_itemsize=4):
    with open(path, "rb") as f:
        shape, fortran, dtype = _npy_header(path, f, "the array")
        count = _check_array_size(path, shape, dtype, out_itemsize, max_bytes, "the array")
        expected = count * dtype.itemsize
        available = path.stat().st_size - f.tell()
        if available < expected:
            raise LoadError(path, "truncated", f"the header promises {expected} bytes of array, "
                            f"{available} follow")
        array = np.fromfile(f, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def _load_npz(path, head, key, max_bytes, out_itemsize):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as exc:
        cause = "truncated" if head[:4] == b"PK\x03\x04" else "corrupt"
        if cause == "corrupt":
            raise wrong_extension_or(path, "volume", "NumPy .npz",
                                     f"not a readable .npz archive: {exc}") from None
        raise LoadError(path, cause, f"not a readable .npz archive ({type(exc).__name__}: "
                        f"{exc}); an archive cut short loses its directory at the end") from None
    with archive:
        members = {(i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i
                   for i in archive.infolist()}
        keys = list(members)
        if key is None:
            if len(keys) != 1:
                raise LoadError(path, "unsupported", f"the archive holds arrays {keys}; "
                                "pick one with key=")
            key = keys[0]
        if key not in members:
            raise LoadError(path, "unsupported", f"no array {key!r}; the archive holds {keys}")
        info = members[key]
        what = f"array {key!r}"
        try:
            with archive.open(info) as f:
                shape, fortran, dtype = _npy_header(path, f, what)
                count = _check_array_size(path, shape, dtype, out_itemsize, max_bytes, what)
                expected = count * dtype.itemsize
                declared = info.file_size - f.tell()
                if declared != expected:
                    raise LoadError(path, "corrupt", f"{what} of shape {shape} and dtype {dtype} "
                                    f"needs {expected} bytes, the archive member holds {declared}")
                array = np.empty(count, dtype)
                view = array.view(np.uint8).data
                done = 0
                while done < expected:
                    # f is a ZipExtFile (it has readinto), typed as IO[bytes]
                    n = f.readinto(view[done:])  # type: ignore[attr-defined]
                    if not n:
                        raise LoadError(path, "truncated", f"{what} ends after {done} of "
                                        f"{expected} bytes")
                    done += n
                f.read()  # the end of the member: zipfile checks its CRC-32 there
        except LoadError:
            raise
        except MemoryError as exc:
            raise library_error(path, "zipfile", exc) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
                NotImplementedError) as exc:
            cause = "truncated" if isinstance(exc, EOFError) else "corrupt"
            raise LoadError(path, cause, f"cannot read {what} from the archive: "
                            f"{type(exc).__name__}: {exc}") from None
    return array.reshape(shape, order="F" if fortran else "C")


# -- any volume format -----------------------------------------------------------------
def load_volume(path: PathLike, *, dtype: DTypeLike = np.float32,
                max_bytes: float | None = MAX_BYTES, **options: Any) -> Signal:
    """Load a CT/MR volume: NIfTI, DICOM (file or series directory) or .npy/.npz.

    The format is recognised by content first, then by extension.  Options go
    to :func:`load_nifti`, :func:`load_dicom` (``series=``) or
    :func:`load_numpy_volume` (``key=``, ``spacing=``); ``max_bytes`` to each
    (see :data:`sigconv.io.MAX_BYTES`).

    Returns
    -------
    Signal
        ``data`` shape (C, D, H, W), axes ("channel", "depth", "height",
        "width"), ``spacing`` (mm, per axis), ``affine`` (index -> RAS+ mm);
        see the module docstring for the orientation.
    """
    path = check_file(path, directory_ok=True)
    fmt = recognise(path, read_head(path), kind="volume")
    if fmt is None:
        raise LoadError(path, "unsupported", "not a NIfTI, DICOM, .npy or .npz file")
    # the registry names this module's readers ("volume.load_nifti", ...)
    reader = globals()[fmt.reader.partition(".")[2]]
    return reader(path, dtype=dtype, max_bytes=max_bytes, **options)
