"""Crafted damage that once escaped as another exception, loaded silently, or was slow.

Each case asserts LoadError, its cause, and a message naming the file, what was
found and what was expected (issue 14, item 6).  Memory-hungry cases run where
the size limit stops them before anything large is allocated.
"""
import gzip
import re
import sys
import time
import warnings
import zipfile

import numpy as np
import pytest

import sigconv.io as sio
from sigconv.errors import ArgumentError

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "fuzz"))
import _damage  # noqa: E402


def _expect(path, cause, detail, **options):
    with pytest.raises(sio.LoadError) as info:
        sio.load(path, **options)
    err = info.value
    assert err.cause == cause, str(err)
    assert str(path) in str(err) and err.path == str(path)
    assert re.search(detail, str(err)), str(err)
    return err


@pytest.fixture(scope="module")
def wav(shared_data):
    return (shared_data / "fsdd" / "recordings" / "0_george_0.wav").read_bytes()


@pytest.fixture(scope="module")
def bvh(shared_data):
    return (shared_data / "mocap" / "freebvh.bvh").read_bytes()


@pytest.fixture(scope="module")
def nii(tmp_path_factory):
    nib = pytest.importorskip("nibabel")
    path = tmp_path_factory.mktemp("nii") / "volume.nii"
    affine = np.diag([0.7, 0.8, 2.0, 1.0])
    nib.save(nib.Nifti1Image(np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4), affine), path)
    return path


# -- WAV ------------------------------------------------------------------------------
def test_wav_with_7_bits_per_sample_is_refused(tmp_path, wav):
    """It loaded as twice the samples (libsndfile read 1-byte frames of a 2-byte layout)."""
    path = tmp_path / "seven.wav"
    path.write_bytes(_damage._wav_fields(wav, bits=7))
    _expect(path, "corrupt", r"7 bits per sample and 1 channel\(s\), so 1-byte frames, but its "
            r"block align is 2 bytes")


@pytest.mark.parametrize("fields,detail", [
    ({"rate": 0, "byte_rate": 0}, "sample rate of 0 Hz, expected a positive rate"),
    ({"channels": 0}, "0 channels, expected at least 1"),
    ({"bits": 0}, "0 bits per sample, expected 1 to 64"),
])
def test_wav_header_fields_no_writer_means(tmp_path, wav, fields, detail):
    path = tmp_path / "bad.wav"
    path.write_bytes(_damage._wav_fields(wav, **fields))
    _expect(path, "corrupt", detail)


def test_wav_of_unknown_codec_is_a_loaderror(tmp_path, wav):
    """PyAV's fallback raised AttributeError on a stream without a sample rate."""
    path = tmp_path / "codec.wav"
    path.write_bytes(_damage._wav_fields(wav, tag=0x1234))
    with pytest.raises(sio.LoadError, match=re.escape(str(path))):
        sio.load(path)


# -- BVH ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_bvh_non_finite_motion_values_are_refused(tmp_path, bvh, value):
    header, motion = bvh.split(b"MOTION", 1)
    lines = motion.split(b"\n")
    lines[3] = lines[3].replace(lines[3].split()[0], value.encode(), 1)
    path = tmp_path / "values.bvh"
    path.write_bytes(header + b"MOTION" + b"\n".join(lines))
    _expect(path, "corrupt", r"motion value -?(nan|inf) in frame 0, channel \S+Hips.Xposition: "
            "expected finite numbers")


def test_bvh_infinite_frame_time_is_refused(tmp_path, bvh):
    path = tmp_path / "time.bvh"
    path.write_bytes(re.sub(rb"Frame Time: *\S+", b"Frame Time: inf", bvh, count=1))
    _expect(path, "corrupt", "Frame Time: inf: expected a count >= 0 and a finite time > 0")


def test_bvh_nested_5000_deep_parses_iteratively(tmp_path):
    """A recursive parser raised RecursionError."""
    path = tmp_path / "deep.bvh"
    path.write_bytes(_damage._nested_bvh(5000))
    signal = sio.load(path)
    assert signal.shape == (3 + 4999, 1) and len(signal.joints) == 5001
    assert signal.joints[4999].parent == 4998 and signal.joints[-1].end_site


def test_bvh_with_2_gib_appended_is_refused_before_reading(tmp_path, bvh):
    """It read 2 GiB into memory (MemoryError or a swapping machine); the limit stops it."""
    path = tmp_path / "huge.bvh"
    with open(path, "wb") as f:
        f.write(bvh)
        f.truncate(len(bvh) + 2 * 2**30)      # sparse: costs no disk
    start = time.perf_counter()
    err = _expect(path, "too large", rf"the BVH text needs {len(bvh) + 2 * 2**30} bytes .*more "
                  r"than max_bytes=2147483648 \(2 GiB\); pass a larger max_bytes=")
    assert time.perf_counter() - start < 1.0, err


# -- NumPy ----------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [True, False])
def test_npz_member_claiming_1e15_elements(tmp_path, compress):
    """np.load raised MemoryError allocating 909 TiB."""
    path = tmp_path / "claim.npz"
    path.write_bytes(_damage._npz_with(_damage._npy_bytes((10**15,)), compress=compress))
    _expect(path, "too large", r"array 'arr_0' of shape \(1000000000000000,\) and dtype uint8 "
            r"needs 4000000000000000 bytes")


def test_npz_bit_flip_in_deflate_stream_is_a_loaderror(tmp_path, shared_data):
    """zlib.error escaped from a flipped bit in the compressed member."""
    data = bytearray((shared_data / "volumes" / "stent.npz").read_bytes())
    path = tmp_path / "flipped.npz"
    for offset in (400, 1163, 5000, 100000):
        damaged = bytearray(data)
        damaged[offset:offset + 256] = bytes(256)
        path.write_bytes(bytes(damaged))
        with pytest.raises(sio.LoadError, match=r"corrupt: cannot read array 'arr_0' from the "
                           r"archive: (error|BadZipFile)"):
            sio.load(path)


def test_npz_bomb_is_refused_before_inflating(tmp_path):
    """A 1.2 MB archive inflating to 256 MiB loaded without a word; the limit refuses it."""
    path = tmp_path / "bomb.npz"
    _damage._zip_bomb(path, 256)
    assert path.stat().st_size < 2 * 2**20
    _expect(path, "too large", r"array 'arr_0' of shape \(256, 1024, 1024\) and dtype uint8 "
            r"needs 1073741824 bytes \(1 GiB\), more than max_bytes=67108864 \(64 MiB\)",
            max_bytes=64 * 2**20)
    signal = sio.load(path, max_bytes=None, dtype=np.uint8)   # no limit: it is only zeros
    assert signal.shape == (1, 256, 1024, 1024) and not signal.data.any()


def test_default_limit_refuses_a_member_of_3e9_bytes(tmp_path):
    path = tmp_path / "big.npz"
    path.write_bytes(_damage._npz_with(_damage._npy_bytes((3 * 10**9,))))
    _expect(path, "too large", r"more than max_bytes=2147483648 \(2 GiB\)")
    assert sio.MAX_BYTES == 2 * 2**30


def test_npz_member_shorter_than_its_header(tmp_path):
    path = tmp_path / "short.npz"
    path.write_bytes(_damage._npz_with(_damage._npy_bytes((4, 4, 4), payload=b"\0" * 10)))
    _expect(path, "corrupt", r"needs 64 bytes, the archive member holds 10")


def test_npy_object_dtype_is_unsupported(tmp_path):
    path = tmp_path / "objects.npy"
    path.write_bytes(_damage._npy_bytes((4,), "|O"))
    _expect(path, "unsupported", r"has dtype object, expected numbers")


@pytest.mark.parametrize("max_bytes", [0, -1, "1GB", True])
def test_max_bytes_is_validated(shared_data, max_bytes):
    with pytest.raises(ArgumentError, match="max_bytes must be a positive number of bytes or None"):
        sio.load(shared_data / "volumes" / "stent.npz", max_bytes=max_bytes)


def test_max_bytes_reaches_every_reader(shared_data):
    for relative in ("fsdd/recordings/0_george_0.wav", "mocap/freebvh.bvh", "images/camera.png",
                     "volumes/stent.npz", "volumes/ct_slice.dcm"):
        path = shared_data / relative
        with pytest.raises(sio.LoadError, match=r"too large: .*more than max_bytes=1000 "):
            sio.load(path, max_bytes=1000)
        assert sio.load(path).data.size
    video = shared_data / "video" / "cockatoo.mp4"
    with pytest.raises(sio.LoadError, match=r"too large: 4 frames of 3 x 36 x 64 \(float32\)"):
        sio.load(video, stop=4, size=(36, 64), max_bytes=1000)


# -- NIfTI ----------------------------------------------------------------------------
@pytest.mark.parametrize("label,offset,fmt,value,detail", [
    ("datatype 9999", 70, "h", 9999, "HeaderDataError: data code 9999 not recognized"),
    ("datatype 0", 70, "h", 0, "HeaderDataError: data code 0 not supported"),
    ("vox_offset -1e9", 108, "f", -1e9, "HeaderDataError: vox offset -1000000000 too low"),
    ("dim[0] = 9", 40, "h", 9, "HeaderDataError"),
    ("dim[0] = 0", 40, "h", 0, r"image shape \(0,\) \(dim = \[0, 6, 5, 4"),
    ("dim[1] = 0", 42, "h", 0, r"image shape \(0, 5, 4\) .*expected 1 to 7 sizes >= 1"),
    ("qform_code 99", 252, "h", 99, "qform_code is 99, expected 0 to 5"),
])
def test_nifti_damaged_headers(tmp_path, nii, label, offset, fmt, value, detail):
    """nibabel's HeaderDataError / OrientationError escaped, or a bad code was reset silently."""
    path = tmp_path / "damaged.nii"
    path.write_bytes(_damage._nifti_field(nii.read_bytes(), offset, fmt, value))
    _expect(path, "corrupt", detail)


@pytest.mark.parametrize("name", ["scan.bin", "scan", "scan.img.bak", "scan.npz"])
def test_nifti_under_another_name_loads_by_content(tmp_path, nii, name):
    """The content said NIfTI but nibabel picked the class by extension: "corrupt"."""
    path = tmp_path / name
    path.write_bytes(nii.read_bytes())
    expected = sio.load(nii)
    got = sio.load(path)
    np.testing.assert_array_equal(got.data, expected.data)
    np.testing.assert_array_equal(got.affine, expected.affine)
    gz = tmp_path / (name + ".gzipped")
    gz.write_bytes(gzip.compress(nii.read_bytes()))
    np.testing.assert_array_equal(sio.load(gz).data, expected.data)


def test_nii_gz_bit_flip_is_caught_by_the_gzip_crc(tmp_path, nii):
    """nibabel stops reading before the gzip trailer, so a flipped byte gave other data."""
    data = bytearray(gzip.compress(nii.read_bytes(), compresslevel=0))   # stored blocks
    data[len(data) - 20] ^= 0x10                                         # inside the pixels
    path = tmp_path / "flipped.nii.gz"
    path.write_bytes(bytes(data))
    _expect(path, "corrupt", "BadGzipFile: CRC check failed")


# -- images ---------------------------------------------------------------------------
def test_png_decompression_bomb_is_a_loaderror(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_damage._png(100000, 100000))
    _expect(path, "too large", r"Pillow refuses it as a decompression bomb: Image size "
            r"\(10000000000 pixels\)")


def test_png_over_max_bytes_is_refused_from_its_header(tmp_path):
    path = tmp_path / "large.png"
    path.write_bytes(_damage._png(4000, 4000))
    _expect(path, "too large", r"a 4000 x 4000 image of 1 channel\(s\) at 4 bytes per value needs "
            r"64000000 bytes", max_bytes=2**20)


@pytest.mark.parametrize("name", ["photo.nii", "photo.mp4"])
def test_image_under_another_name_is_read_by_its_content(tmp_path, shared_data, name):
    """imageio chose its plugin by extension (itk for .nii: ImportError; pyav for .mp4)."""
    source = shared_data / "images" / "camera.png"
    path = tmp_path / name
    path.write_bytes(source.read_bytes())
    np.testing.assert_array_equal(sio.load(path).data, sio.load(source).data)


# -- DICOM ----------------------------------------------------------------------------
def test_dicom_followed_by_zero_bytes_loads_fast(tmp_path, shared_data):
    """pydicom parsed every 8 zero bytes as an element: about 0.5-2 s per MiB."""
    source = shared_data / "volumes" / "ct_slice.dcm"
    path = tmp_path / "padded.dcm"
    path.write_bytes(source.read_bytes() + bytes(8 * 2**20))
    expected = sio.load(source)
    start = time.perf_counter()
    got = sio.load(path)
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(got.data, expected.data)
    assert elapsed < 1.0, f"{elapsed:.2f} s for a slice followed by 8 MiB of zero bytes"


def test_dicom_infinite_rescale_slope_is_refused(tmp_path, shared_data):
    pydicom = pytest.importorskip("pydicom")
    ds = pydicom.dcmread(shared_data / "volumes" / "ct_slice.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns that "inf" is not a valid DS
        ds.RescaleSlope = "inf"
    path = tmp_path / "slope.dcm"
    ds.save_as(path)
    _expect(path, "corrupt", r"RescaleSlope inf and RescaleIntercept \S+: expected finite numbers")


def test_dicom_frame_count_over_the_limit(tmp_path, shared_data):
    pydicom = pytest.importorskip("pydicom")
    ds = pydicom.dcmread(shared_data / "volumes" / "ct_slice.dcm")
    ds.NumberOfFrames = 10**9
    path = tmp_path / "frames.dcm"
    ds.save_as(path)
    _expect(path, "too large", r"1000000000 frame\(s\) of 512 x 512 pixels \(float64\)")


def test_zip_member_header_is_read_without_loading(tmp_path):
    """The header check reads a few bytes of the member, not the member."""
    path = tmp_path / "two.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.npy", _damage._npy_bytes((2, 2, 2), payload=b"\1" * 8))
        z.writestr("b.npy", _damage._npy_bytes((10**12,)))
    assert sio.load(path, key="a").shape == (1, 2, 2, 2)
    _expect(path, "too large", r"array 'b' of shape \(1000000000000,\)", key="b")
    _expect(path, "unsupported", r"the archive holds arrays \['a', 'b'\]; pick one with key=")

