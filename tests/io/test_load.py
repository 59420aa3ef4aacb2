"""load / detect: content first, extension second; every kind of the shared data."""
import numpy as np
import pytest

import sigconv.io as sio
from sigconv.errors import ArgumentError, SigconvError


@pytest.mark.parametrize("relative,kind,channels", [
    ("fsdd/recordings/9_yweweler_49.wav", "waveform", 1),
    ("mocap/freebvh.bvh", "skeleton", 168),
    ("images/coffee.png", "image", 3),
    ("volumes/stent.npz", "volume", 1),
    ("volumes/ct_slice.dcm", "volume", 1),
])
def test_every_kind_of_shared_data(shared_data, relative, kind, channels):
    signal = sio.load(shared_data / relative)
    assert signal.kind == kind and signal.shape[0] == channels
    assert signal.axes == sio.AXES[kind] and signal.dtype == np.float32
    assert sio.detect(shared_data / relative) == kind
    assert repr(signal).startswith(f"Signal(kind='{kind}'")


def test_content_beats_extension(tmp_path, shared_data):
    path = tmp_path / "digit.png"                   # a WAV named like an image
    path.write_bytes((shared_data / "fsdd/recordings/0_george_0.wav").read_bytes())
    assert sio.detect(path) == "waveform"
    assert sio.load(path).sample_rate == 8000


def test_extension_when_content_is_silent(tmp_path, rng):
    path = tmp_path / "raw.mp3"                     # MP3 without ID3 tag: found by extension too
    path.write_bytes(b"\x00" * 64)
    assert sio.detect(path) == "waveform"


def test_forced_kind(shared_data):
    assert sio.load(shared_data / "images/camera.png", kind="image").kind == "image"
    with pytest.raises(ArgumentError, match="kind must be one of"):
        sio.load(shared_data / "images/camera.png", kind="photo")


def test_errors_derive_from_sigconv_and_oserror():
    assert issubclass(sio.LoadError, SigconvError) and issubclass(sio.LoadError, OSError)
    err = sio.LoadError("/x.wav", "corrupt", "bad")
    assert str(err) == "cannot load '/x.wav': corrupt: bad"
    import pickle
    assert str(pickle.loads(pickle.dumps(err))) == str(err)


def test_missing_optional_dependency_names_the_extra(monkeypatch, fsdd):
    import sys

    monkeypatch.setitem(sys.modules, "librosa", None)      # as if not installed
    wave = sio.load(fsdd / "0_george_0.wav")                # loading audio never needs it
    with pytest.raises(sio.MissingDependencyError, match=r"pip install 'sigconv\[audio\]'"):
        sio.spectrogram(wave)
    assert issubclass(sio.MissingDependencyError, ImportError)


def test_importing_sigconv_io_stays_light():
    import subprocess
    import sys

    code = ("import sys, sigconv.io; heavy = [m for m in ('librosa', 'matplotlib', 'av', "
            "'nibabel', 'pydicom', 'soundfile') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
