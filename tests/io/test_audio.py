"""load_audio against soundfile's and librosa's own reads, on the spoken digits and formats made here."""
import numpy as np
import pytest

import sigconv.io as sio
from sigconv.errors import ArgumentError

sf = pytest.importorskip("soundfile")


def test_fsdd_clip_equals_soundfile(fsdd):
    path = fsdd / "7_theo_12.wav"
    signal = sio.load(path)
    expected, rate = sf.read(path, dtype="float32")
    assert signal.kind == "waveform" and signal.axes == ("channel", "time")
    assert signal.sample_rate == rate == 8000
    assert signal.data.dtype == np.float32 and signal.shape == (1, len(expected))
    np.testing.assert_array_equal(signal.data[0], expected)


def test_fsdd_clips_equal_librosa(fsdd):
    librosa = pytest.importorskip("librosa")
    for path in sorted(fsdd.glob("*_jackson_3.wav")):
        y, sr = librosa.load(path, sr=None)
        signal = sio.load_audio(path)
        assert signal.sample_rate == sr
        np.testing.assert_allclose(signal.data[0], y, atol=1e-7)


def test_offset_duration_and_resampling(fsdd):
    soxr = pytest.importorskip("soxr")
    path = fsdd / "0_george_0.wav"
    full, _ = sf.read(path, dtype="float32")
    part = sio.load_audio(path, offset=0.1, duration=0.05)
    np.testing.assert_array_equal(part.data[0], full[800:1200])
    assert part.start_time == 0.1
    up = sio.load_audio(path, sample_rate=16000)
    assert up.sample_rate == 16000
    np.testing.assert_allclose(up.data[0], soxr.resample(full, 8000, 16000, quality="HQ"),
                               atol=1e-6)


@pytest.fixture(scope="module")
def stereo(tmp_path_factory):
    rate = 11025
    t = np.arange(rate // 2) / rate
    data = np.stack([0.5 * np.sin(2 * np.pi * 300 * t), 0.25 * np.sin(2 * np.pi * 500 * t)], 1)
    folder = tmp_path_factory.mktemp("audio")
    paths = {}
    for fmt in ("wav", "flac", "ogg", "mp3"):
        path = folder / f"tone.{fmt}"
        try:
            sf.write(path, data, rate)
        except (sf.LibsndfileError, TypeError, RuntimeError):
            continue
        paths[fmt] = path
    return data.astype(np.float32), rate, paths


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_formats_equal_soundfile(stereo, fmt):
    data, rate, paths = stereo
    if fmt not in paths:
        pytest.skip(f"this libsndfile cannot write {fmt}")
    signal = sio.load(paths[fmt], mono=False)
    expected, _ = sf.read(paths[fmt], dtype="float32", always_2d=True)
    assert signal.shape == (2, expected.shape[0]) and signal.sample_rate == rate
    # lossy decoders may differ in the last float bit between a seek-free and a plain read
    np.testing.assert_allclose(signal.data, expected.T, atol=0 if fmt in ("wav", "flac") else 1e-6)
    mono = sio.load(paths[fmt])
    np.testing.assert_allclose(mono.data[0], expected.mean(axis=1), atol=1e-7)
    if fmt in ("wav", "flac"):  # lossless: the tone itself
        np.testing.assert_allclose(signal.data, data.T, atol=1e-4)


def test_pyav_fallback_for_m4a(stereo, tmp_path):
    av = pytest.importorskip("av")
    data, rate, _ = stereo
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data.T), format="fltp",
                                           layout="stereo")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    signal = sio.load(path, mono=False)
    assert signal.kind == "waveform" and signal.sample_rate == rate and signal.shape[0] == 2
    assert signal.meta["codec"] == "aac"
    # lossy, with encoder delay: compare the energy of each channel
    np.testing.assert_allclose(np.sqrt((signal.data ** 2).mean(axis=1)),
                               np.sqrt((data ** 2).mean(axis=0)), rtol=0.2)


def test_bad_options(fsdd):
    path = fsdd / "0_george_0.wav"
    with pytest.raises(ArgumentError, match="offset must be a number of seconds >= 0"):
        sio.load_audio(path, offset=-1)
    with pytest.raises(ArgumentError, match=r"sample_rate must be a .*number > 0.*, got 0$"):
        sio.load_audio(path, sample_rate=0)
    with pytest.raises(sio.LoadError, match="offset 10 s is past the end"):
        sio.load_audio(path, offset=10)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
@pytest.mark.parametrize("channels", [1, 3])
def test_wav_encodings_equal_libsndfile_bit_for_bit(tmp_path, rng, subtype, channels):
    """Small 16/32-bit PCM and float WAVs are decoded with numpy: same values as libsndfile."""
    data = np.clip(rng.normal(0, 0.3, (700, channels)), -1, 1)
    path = tmp_path / f"x_{subtype}.wav"
    sf.write(path, data, 16000, subtype=subtype)
    expected, _ = sf.read(path, dtype="float32", always_2d=True)
    signal = sio.load(path, mono=False)
    np.testing.assert_array_equal(signal.data, expected.T)
    part = sio.load(path, mono=False, offset=0.01, duration=0.02)
    np.testing.assert_array_equal(part.data, expected[160:480].T)
    assert signal.meta["frames_in_file"] == 700
