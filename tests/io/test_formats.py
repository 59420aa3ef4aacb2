"""The format registry: one sniffer signature, the kinds once, readers that resolve, the order."""
import importlib
import inspect
import pathlib

import numpy as np
import pytest

import sigconv.io as sio
from sigconv.io import formats, loaders


def test_every_sniffer_takes_head_and_path():
    for fmt in formats.FORMATS:
        assert list(inspect.signature(fmt.sniff).parameters) == ["head", "path"], fmt.name


def test_the_kinds_are_listed_once():
    assert sio.KINDS is formats.KINDS
    assert sio.AXES is formats.AXES
    assert sio.KINDS == ("waveform", "spectrogram", "skeleton", "image", "volume", "video")
    assert {fmt.kind for fmt in formats.FORMATS} <= set(sio.KINDS)
    assert [k.name for k in formats.KIND_TABLE] == list(sio.KINDS)


def test_readers_are_public_functions():
    for entry in formats.FORMATS + formats.KIND_TABLE:
        module, _, function = entry.reader.partition(".")
        assert function in sio.__all__, entry
        assert getattr(importlib.import_module(f"sigconv.io.{module}"), function) is getattr(
            sio, function)


def test_extensions_belong_to_one_format():
    seen = [ext for fmt in formats.FORMATS for ext in fmt.extensions]
    assert len(seen) == len(set(seen))
    assert sio.volume.EXTENSIONS == formats.extensions("volume")
    assert sio.audio.EXTENSIONS == formats.BY_NAME["audio"].extensions


@pytest.mark.parametrize("head, name, expected", [
    (b"\0" * 128 + b"DICM" + b"\0" * 8, "x.png", "DICOM"),
    (b"II*\x00" + b"\0" * 124 + b"DICM", "x.tif", "DICOM"),  # DICOM-TIFF: the volume wins
    (b"\x93NUMPY\x01\x00", "x.bin", "NumPy"),
    (b"HIERARCHY\nROOT", "x.txt", "BVH"),
    (b"\x89PNG\r\n\x1a\n", "x.nii", "image"),
    (b"OggS" + b"\0" * 24 + b"\x80theora" + b"\0" * 40 + b"\x01vorbis", "x.ogg", "video"),
    (b"RIFF\0\0\0\0WAVE", "x.mp4", "audio"),
    (b"no magic here", "x.nii.gz", "NIfTI"),  # the extension, second
    (b"no magic here", "x.WAV", "audio"),
])
def test_content_first_then_extension_in_registry_order(head, name, expected):
    assert formats.recognise(pathlib.Path(name), head).name == expected


def test_nothing_recognised():
    assert formats.recognise(pathlib.Path("x.bin"), b"no magic") is None


def test_unknown_file_message(tmp_path):
    path = tmp_path / "notes.xyz"
    path.write_bytes(b"nothing anyone reads")
    with pytest.raises(sio.LoadError, match="cannot work out file type") as info:
        sio.load(path)
    assert info.value.cause == "unsupported"
    assert "waveform, skeleton, image, volume or video" in str(info.value)


def test_load_hands_the_reader_the_inspected_file(tmp_path, monkeypatch):
    """load() stats and reads a file once; the reader's own checks reuse that."""
    path = tmp_path / "a.npy"
    np.save(path, np.zeros((2, 3, 4), np.float32))
    seen = []
    real = loaders._FORMAT_READERS["NumPy"]
    monkeypatch.setitem(loaders._FORMAT_READERS, "NumPy",
                        lambda p, **kw: seen.append(p) or real(p, **kw))
    signal = sio.load(path)
    assert signal.shape == (1, 2, 3, 4) and signal.path == str(path)
    assert isinstance(seen[0], sio._common.Inspected) and pathlib.Path(seen[0]) == path


def test_an_inspected_directory_is_still_refused_by_a_file_reader(tmp_path):
    with pytest.raises(sio.LoadError, match="is a directory"):
        sio.load(tmp_path, kind="image")
