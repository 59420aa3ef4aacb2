"""A catalogue of bad files per format: each raises LoadError naming the file and the cause."""
import os
import re

import numpy as np
import pytest

import sigconv.io as sio

# (name, source): source is a function of (shared_data, nibabel_data, ct_small) giving a path
SOURCES = {
    "wav": lambda d, n, c: d / "fsdd" / "recordings" / "0_george_0.wav",
    "bvh": lambda d, n, c: d / "mocap" / "freebvh.bvh",
    "png": lambda d, n, c: d / "images" / "camera.png",
    "nii": lambda d, n, c: os.path.join(n, "anatomical.nii"),
    "nii.gz": lambda d, n, c: os.path.join(n, "example4d.nii.gz"),
    "dcm": lambda d, n, c: c,
    "npz": lambda d, n, c: d / "volumes" / "stent.npz",
    "mp4": lambda d, n, c: d / "video" / "cockatoo.mp4",
}

#: where cutting a file in half is detected, the cause we report
TRUNCATED = {"wav": "truncated", "bvh": "truncated", "png": "truncated", "nii": "truncated",
             "nii.gz": "truncated", "dcm": "truncated", "npz": "truncated",
             "mp4": "corrupt|truncated"}


@pytest.fixture
def source(request, shared_data, nibabel_data, ct_small):
    return SOURCES[request.param](shared_data, nibabel_data, ct_small)


def _expect(path, cause, **options):
    with pytest.raises(sio.LoadError, match=re.escape(repr(str(path)))) as info:
        sio.load(path, **options)
    assert re.fullmatch(cause, info.value.cause), (info.value.cause, str(info.value))
    assert isinstance(info.value, OSError) and info.value.path == str(path)
    return info.value


def test_missing_file(tmp_path):
    err = _expect(tmp_path / "nothing.wav", "missing")
    assert "no such file" in str(err)


@pytest.mark.parametrize("ext", list(SOURCES))
def test_empty_file(tmp_path, ext):
    path = tmp_path / f"empty.{ext}"
    path.write_bytes(b"")
    assert "0 bytes" in str(_expect(path, "empty"))


@pytest.mark.parametrize("source", list(SOURCES), indirect=True)
def test_truncated_file(tmp_path, source):
    name = os.path.basename(str(source))
    ext = "nii.gz" if name.endswith(".nii.gz") else name.rsplit(".", 1)[1]
    data = open(source, "rb").read()
    path = tmp_path / f"cut.{ext}"
    path.write_bytes(data[: len(data) // 2])
    _expect(path, TRUNCATED[ext], **({"timeout": 10.0} if ext == "mp4" else {}))


@pytest.mark.parametrize("ext", list(SOURCES))
def test_random_bytes(tmp_path, ext):
    path = tmp_path / f"noise.{ext}"
    path.write_bytes(np.random.default_rng(7).bytes(4096))
    _expect(path, "corrupt|unsupported|truncated")


def test_unknown_type(tmp_path):
    path = tmp_path / "notes.xyz"
    path.write_bytes(b"hello world, not a signal")
    err = _expect(path, "unsupported")
    assert "cannot work out file type" in str(err)


@pytest.mark.parametrize("source,wrong", [("wav", "png"), ("png", "wav"), ("bvh", "nii"),
                                          ("npz", "mp4"), ("dcm", "bvh")], indirect=["source"])
def test_wrong_extension(tmp_path, source, wrong):
    """load() goes by content; the reader named by the extension says "wrong extension"."""
    path = tmp_path / f"misnamed.{wrong}"
    path.write_bytes(open(source, "rb").read())
    signal = sio.load(path)                         # content first: loads fine
    assert signal.kind in ("waveform", "image", "skeleton", "volume")
    reader = {"png": sio.load_image, "wav": sio.load_audio, "nii": sio.load_nifti,
              "mp4": sio.load_video, "bvh": sio.load_skeleton}[wrong]
    with pytest.raises(sio.LoadError) as info:
        reader(path)
    assert info.value.cause in ("wrong extension", "unsupported"), str(info.value)
    assert str(path) in str(info.value)


def test_wrong_extension_cause_names_content(tmp_path, shared_data):
    path = tmp_path / "photo.wav"
    path.write_bytes((shared_data / "images" / "camera.png").read_bytes())
    with pytest.raises(sio.LoadError, match="wrong extension: .*looks like a image file"):
        sio.load_audio(path)


def test_bvh_damage(tmp_path, shared_data):
    text = (shared_data / "mocap" / "freebvh.bvh").read_text()
    cases = {
        "letters in motion": (text.replace("98.2948", "9x.2948", 1), "corrupt", "non-number"),
        "extra numbers": (text + "1 2 3\n", "corrupt", "need .* numbers"),
        "no motion": (text.split("MOTION")[0], "truncated", "no MOTION"),
        "bad channel": (text.replace("Zrotation", "Wrotation", 1), "corrupt", "unknown channel"),
    }
    for name, (content, cause, detail) in cases.items():
        path = tmp_path / "damaged.bvh"
        path.write_text(content)
        with pytest.raises(sio.LoadError, match=f"{cause}: .*{detail}"):
            sio.load(path)


def test_dicom_without_pixels(tmp_path, ct_small):
    pydicom = pytest.importorskip("pydicom")
    ds = pydicom.dcmread(ct_small)
    del ds.PixelData
    ds.save_as(tmp_path / "header.dcm")
    # a CT image without pixels reads like one cut short: pydicom stops silently at the cut
    assert "ends before its pixel data" in str(_expect(tmp_path / "header.dcm", "truncated"))
    del ds.Rows, ds.Columns
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"      # Basic Text SR: not an image
    ds.save_as(tmp_path / "report.dcm")
    assert "holds no image" in str(_expect(tmp_path / "report.dcm", "unsupported"))


@pytest.mark.parametrize("source", ["wav", "bvh", "png", "nii", "nii.gz", "dcm", "npz"],
                         indirect=True)
def test_cuts_and_flipped_bytes_raise_only_loaderror(tmp_path, source):
    """Nothing a damaged file holds may escape as another exception."""
    rng = np.random.default_rng(3)
    data = open(source, "rb").read()
    name = os.path.basename(str(source))
    ext = "nii.gz" if name.endswith(".nii.gz") else name.rsplit(".", 1)[1]
    variants = [data[: int(len(data) * f)] for f in (0.01, 0.05, 0.2, 0.7, 0.99)]
    for _ in range(6):
        damaged = bytearray(data)
        for i in rng.integers(0, len(data), 12):
            damaged[i] = rng.integers(0, 256)
        variants.append(bytes(damaged))
    for i, variant in enumerate(variants):
        path = tmp_path / f"v{i}.{ext}"
        path.write_bytes(variant)
        try:
            sio.load(path)
        except sio.LoadError as err:
            assert str(path) in str(err)


def test_directory_without_dicom(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    _expect(tmp_path, "unsupported")
