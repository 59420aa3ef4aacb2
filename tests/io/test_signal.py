"""Signal: construction, repr, metadata and the helpers, checked by hand-computed values."""
import numpy as np
import pytest

from sigconv.errors import ArgumentError, ShapeError
from sigconv.io import HU_WINDOWS, Signal


def test_axes_default_and_shape_check():
    s = Signal(np.zeros((3, 4, 5), np.float32), "image")
    assert s.axes == ("channel", "height", "width")
    with pytest.raises(ShapeError, match="needs a 4-d array, got shape"):
        Signal(np.zeros((3, 4)), "volume")
    with pytest.raises(ArgumentError, match="kind must be one of 'waveform'"):
        Signal(np.zeros((1, 4)), "sound")


def test_repr_is_readable():
    s = Signal(np.zeros((1, 8000), np.float32), "waveform", sample_rate=8000, path="a.wav")
    text = repr(s)
    assert text.startswith("Signal(kind='waveform', shape=(1, 8000), dtype=float32")
    assert "sample_rate=8000" in text and "duration=1.000s" in text and "a.wav" in text


def test_standardize_per_channel(rng):
    data = np.stack([rng.normal(5, 3, 1000), np.full(1000, 2.0)]).astype(np.float32)
    out = Signal(data, "waveform", sample_rate=100).standardize().data
    assert abs(out[0].mean()) < 1e-5 and abs(out[0].std() - 1) < 1e-4
    np.testing.assert_allclose(out[1], 0.0)          # constant channel only centred


def test_hounsfield_window():
    hu = np.array([[[[-1000.0, -160.0, 40.0, 240.0, 3000.0]]]], np.float32)
    s = Signal(hu, "volume", spacing=(1, 1, 1))
    np.testing.assert_allclose(s.window("abdomen").data.ravel(), [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(s.window(level=0, width=2000).data.ravel(),
                               [0, 0.42, 0.52, 0.62, 1], atol=1e-6)
    assert HU_WINDOWS["lung"] == (-600.0, 1500.0)
    with pytest.raises(ArgumentError, match="window must be one of"):
        s.window("kidney")
    with pytest.raises(ArgumentError, match="width must be > 0"):
        s.window(level=0, width=0)


def test_resize_updates_rates_and_spacing():
    video = Signal(np.zeros((3, 10, 8, 8), np.float32), "video", frame_rate=20.0)
    out = video.resize(time=5, height=4, width=16)
    assert out.shape == (3, 5, 4, 16) and out.frame_rate == 10.0
    vol = Signal(np.zeros((1, 4, 4, 4), np.float32), "volume", spacing=(2.0, 1.0, 1.0),
                 affine=np.diag([2.0, 1.0, 1.0, 1.0]))
    out = vol.resize(depth=8)
    assert out.spacing == (1.0, 1.0, 1.0)
    # the new voxel centres cover the same extent: first centre at -0.25 voxels of the old grid
    np.testing.assert_allclose(out.affine @ [0, 0, 0, 1], [-0.5, 0, 0, 1])
    with pytest.raises(ArgumentError, match="no axis 'time'"):
        vol.resize(time=3)


def test_resize_is_linear_interpolation():
    ramp = Signal(np.arange(4, dtype=np.float32)[None, None], "image")
    np.testing.assert_allclose(ramp.resize(width=8).data.ravel(),
                               [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3], atol=1e-6)


def test_resample_waveform_with_soxr():
    soxr = pytest.importorskip("soxr")
    t = np.arange(8000) / 8000
    wave = Signal(np.sin(2 * np.pi * 440 * t).astype(np.float32)[None], "waveform",
                  sample_rate=8000)
    out = wave.resample(16000)
    assert out.sample_rate == 16000 and out.shape == (1, 16000)
    np.testing.assert_allclose(out.data[0], soxr.resample(wave.data[0], 8000, 16000), atol=1e-6)


def test_resample_volume_spacing():
    vol = Signal(np.zeros((1, 10, 20, 20), np.float32), "volume", spacing=(3.0, 0.5, 0.5))
    out = vol.resample(spacing=1.0)
    assert out.shape == (1, 30, 10, 10)
    np.testing.assert_allclose(out.spacing, (1.0, 1.0, 1.0))
    with pytest.raises(ArgumentError, match="exactly one of rate= or spacing="):
        vol.resample()


def test_crop_and_pad_move_time_and_origin():
    wave = Signal(np.arange(100, dtype=np.float32)[None], "waveform", sample_rate=10.0)
    part = wave.crop(time=(20, 30))
    np.testing.assert_array_equal(part.data[0], np.arange(20, 30))
    assert part.start_time == 2.0 and part.times()[0] == 2.0
    padded = part.pad(time=(5, 0))
    assert padded.shape == (1, 15) and padded.start_time == 1.5 and padded.data[0, 0] == 0
    vol = Signal(np.zeros((1, 4, 4, 4)), "volume", spacing=(2, 1, 1),
                 affine=np.diag([2.0, 1.0, 1.0, 1.0]))
    np.testing.assert_allclose(vol.crop(depth=(1, 3)).affine[:3, 3], [2, 0, 0])
    np.testing.assert_allclose(vol.pad(height=2).affine[:3, 3], [0, -2, 0])
    with pytest.raises(ArgumentError, match="is empty"):
        wave.crop(time=(50, 50))
    with pytest.raises(ArgumentError, match="pad widths must be >= 0"):
        wave.pad(time=(-1, 0))


def test_astype_and_array_protocol():
    s = Signal(np.ones((1, 3), np.float32), "waveform", sample_rate=1)
    assert s.astype(np.float64).dtype == np.float64
    assert np.asarray(s) is s.data
