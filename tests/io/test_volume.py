"""Volumes: NIfTI via nibabel (RAS+), DICOM file and series via pydicom (HU), .npy/.npz."""
import os
import shutil

import numpy as np
import pytest

import sigconv.io as sio

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")


def expected_nifti(path):
    """nibabel's own RAS+ image, its axes reversed to (depth, height, width)."""
    canonical = nib.as_closest_canonical(nib.load(path))
    data = canonical.get_fdata(dtype=np.float32)
    if data.ndim == 3:
        data = data[..., None]
    return data.transpose(3, 2, 1, 0), canonical.affine


@pytest.mark.parametrize("name,shape", [("anatomical.nii", (1, 25, 41, 33)),
                                        ("example4d.nii.gz", (2, 24, 96, 128))])
def test_nifti_equals_nibabel_canonical(nibabel_data, name, shape):
    path = os.path.join(nibabel_data, name)
    signal = sio.load(path)
    data, affine = expected_nifti(path)
    assert signal.kind == "volume" and signal.shape == shape
    assert signal.axes == ("channel", "depth", "height", "width")
    np.testing.assert_array_equal(signal.data, data)
    assert signal.meta["orientation"] == "RAS"
    assert signal.meta["original_orientation"] == "".join(nib.aff2axcodes(nib.load(path).affine))
    # our affine takes (depth, height, width); nibabel's canonical one takes (i, j, k) = (w, h, d)
    for index in [(0, 0, 0), (3, 5, 7)]:
        np.testing.assert_allclose(signal.affine @ [*index, 1], affine @ [*index[::-1], 1])
    np.testing.assert_allclose(signal.spacing, nib.load(path).header.get_zooms()[:3][::-1])


def test_ct_small_in_hounsfield_units(ct_small):
    signal = sio.load(ct_small)
    ds = pydicom.dcmread(ct_small)
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert signal.shape == (1, 1, 128, 128) and signal.meta["units"] == "HU"
    # LPS rows/columns to RAS+: both in-plane axes are flipped for an axial slice
    np.testing.assert_array_equal(signal.data[0, 0], hu[::-1, ::-1].astype(np.float32))
    # the world position of each returned voxel is DICOM's position, LPS -> RAS
    row, col = np.array(ds.ImageOrientationPatient[:3]), np.array(ds.ImageOrientationPatient[3:])
    dr, dc = map(float, ds.PixelSpacing)
    for r, c in [(0, 0), (10, 100), (127, 3)]:
        lps = np.array(ds.ImagePositionPatient, float) + c * dc * row + r * dr * col
        h, w = 127 - r, 127 - c
        np.testing.assert_allclose(signal.affine @ [0, h, w, 1], [-lps[0], -lps[1], lps[2], 1],
                                   atol=1e-6)
    np.testing.assert_allclose(signal.spacing[1:], (dr, dc))


def test_shared_ct_slice(shared_data):
    signal = sio.load(shared_data / "volumes" / "ct_slice.dcm")
    ds = pydicom.dcmread(shared_data / "volumes" / "ct_slice.dcm")
    assert signal.shape == (1, 1, 512, 512)
    np.testing.assert_allclose(signal.spacing, (3.0, 0.580078, 0.580078), rtol=1e-5)
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(np.sort(signal.data.ravel()), np.sort(hu.ravel()))


def test_dicom_series_sorted_by_position(tmp_path, ct_small):
    ds = pydicom.dcmread(ct_small)
    base = np.array(ds.ImagePositionPatient, float)
    order = [3, 0, 4, 1, 2]                     # written in shuffled file order
    for file_index, z in enumerate(order):
        slice_ = pydicom.dcmread(ct_small)
        slice_.ImagePositionPatient = [float(base[0]), float(base[1]), float(base[2] + 2.5 * z)]
        pixels = slice_.pixel_array.copy()
        pixels[0, 0] = z                         # mark the slice
        slice_.PixelData = pixels.tobytes()
        slice_.InstanceNumber = file_index
        slice_.save_as(tmp_path / f"im{file_index}.dcm")
    (tmp_path / "notes.txt").write_text("not a slice")
    signal = sio.load(tmp_path)
    assert signal.shape == (1, 5, 128, 128)
    assert signal.spacing[0] == pytest.approx(2.5)
    # depth runs inferior to superior: marked values 0..4 in order (pixel (0,0) -> (h, w) = (127, 127))
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    np.testing.assert_allclose(signal.data[0, :, 127, 127], np.arange(5) * slope + intercept)


def test_npz_and_npy(shared_data, tmp_path):
    signal = sio.load(shared_data / "volumes" / "stent.npz")
    raw = np.load(shared_data / "volumes" / "stent.npz")["arr_0"]
    assert signal.shape == (1,) + raw.shape and signal.meta["source_dtype"] == "int16"
    np.testing.assert_array_equal(signal.data[0], raw.astype(np.float32))
    np.save(tmp_path / "v.npy", raw[:10])
    v = sio.load(tmp_path / "v.npy", spacing=(2.0, 1.0, 1.0))
    assert v.spacing == (2.0, 1.0, 1.0) and v.shape == (1, 10, 128, 128)
    np.savez(tmp_path / "two.npz", a=raw[:2], b=raw[:3])
    assert sio.load(tmp_path / "two.npz", key="b").shape == (1, 3, 128, 128)
    with pytest.raises(sio.LoadError, match=r"holds arrays \['a', 'b'\]; pick one with key="):
        sio.load(tmp_path / "two.npz")
    np.save(tmp_path / "flat.npy", raw[0])
    with pytest.raises(sio.LoadError, match="needs a 3-D .* or 4-D"):
        sio.load(tmp_path / "flat.npy")


def test_ct_window_of_loaded_volume(ct_small):
    lung = sio.load(ct_small).window("lung")
    assert lung.data.min() >= 0 and lung.data.max() <= 1
