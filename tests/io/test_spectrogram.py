"""spectrogram against librosa's own functions on a spoken digit."""
import numpy as np
import pytest

import sigconv.io as sio
from sigconv.errors import ArgumentError

librosa = pytest.importorskip("librosa")


@pytest.fixture(scope="module")
def digit(fsdd):
    return sio.load(fsdd / "5_nicolas_9.wav")


def test_power_and_magnitude(digit):
    y = digit.data[0]
    s = sio.spectrogram(digit, n_fft=256, hop_length=64, kind="power")
    expected = np.abs(librosa.stft(y, n_fft=256, hop_length=64)) ** 2
    assert s.kind == "spectrogram" and s.axes == ("channel", "freq", "time")
    assert s.shape == (1,) + expected.shape
    np.testing.assert_allclose(s.data[0], expected, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(s.frequencies, librosa.fft_frequencies(sr=8000, n_fft=256))
    m = sio.spectrogram(digit, n_fft=256, hop_length=64, kind="magnitude")
    np.testing.assert_allclose(m.data ** 2, s.data, rtol=1e-4, atol=1e-9)


def test_columns_map_back_to_seconds(digit):
    s = sio.spectrogram(digit, n_fft=256, hop_length=80)
    np.testing.assert_allclose(s.times(), librosa.frames_to_time(np.arange(s.shape[2]), sr=8000,
                                                                 hop_length=80))
    assert s.hop_length == 80 and s.n_fft == 256 and s.sample_rate == 8000


def test_mel_logmel_mfcc(digit):
    y = digit.data[0]
    mel = librosa.feature.melspectrogram(y=y, sr=8000, n_fft=512, hop_length=128, n_mels=40)
    s = sio.spectrogram(digit, kind="mel", n_mels=40)
    np.testing.assert_allclose(s.data[0], mel, rtol=1e-4, atol=1e-9)
    db = librosa.power_to_db(mel, ref=np.max, top_db=80.0)
    np.testing.assert_allclose(sio.spectrogram(digit, kind="log-mel", n_mels=40).data[0], db,
                               atol=1e-3)
    mfcc = sio.spectrogram(digit, kind="mfcc", n_mels=40, n_mfcc=13)
    np.testing.assert_allclose(mfcc.data[0], librosa.feature.mfcc(S=db, n_mfcc=13), atol=1e-2)
    assert mfcc.shape[1] == 13 and mfcc.frequencies is None


def test_multichannel_equals_per_channel(digit, rng):
    two = np.stack([digit.data[0], rng.normal(size=digit.shape[1]).astype(np.float32)])
    both = sio.spectrogram(two, sample_rate=8000, kind="log-mel")
    for c in range(2):
        alone = sio.spectrogram(two[c], sample_rate=8000, kind="mel")
        ref = librosa.power_to_db(alone.data[0], ref=np.max, top_db=80.0)
        np.testing.assert_allclose(both.data[c], ref, atol=1e-3)


def test_bad_arguments(digit):
    with pytest.raises(ArgumentError, match="kind must be one of 'power', 'magnitude'"):
        sio.spectrogram(digit, kind="cqt")
    with pytest.raises(ArgumentError, match=r"sample_rate must be a .*number > 0.*, got None$"):
        sio.spectrogram(np.zeros(1000))
    with pytest.raises(ArgumentError, match="needs a waveform signal, got a image"):
        sio.spectrogram(sio.Signal(np.zeros((1, 4, 4)), "image"))
    with pytest.raises(ArgumentError, match=r"hop_length must be a positive int\b.*, got 0$"):
        sio.spectrogram(digit, hop_length=0)


def test_load_with_kind_spectrogram(fsdd):
    s = sio.load(fsdd / "5_nicolas_9.wav", kind="spectrogram", n_fft=256)
    assert s.kind == "spectrogram" and s.shape[1] == 129
