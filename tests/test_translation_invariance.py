"""The chapter's claim (Deep Learning, 9.3): pooling makes the representation
approximately invariant to small translations of the input.

On real signals (spoken digits, a CT slice and a CT sub-volume) we build the
first two stages of a convolutional layer, a convolution and a ReLU
"detector", shift the input by one sample, and measure how much the
detector outputs change at fixed positions, and how much the max-pooled
outputs (stride 1, as in the chapter's figure 9.8) change.  Pooling must
change less: the total change relative to the outputs' size drops (by a
fifth or more with a window of 3) and wider windows change less.  (The share
of outputs that change at all is reported in failure messages but not
asserted: on images the ReLU's exact zeros make the detector's share small,
and pooling spreads non-zero maxima over them.)
"""
import numpy as np
import pytest
import scipy.io.wavfile
import scipy.signal

import sigconv.functional as F

DIGITS = [f"{d}_jackson_0.wav" for d in range(10)]


def _changes(before, after):
    """(share of outputs that changed, total change / total size) at fixed positions."""
    tol = 1e-9 * np.abs(before).max()
    differ = np.abs(before - after) > tol
    return differ.mean(), np.abs(before - after).sum() / np.abs(before).sum()


def _compare(signal, detector, axis, widths):
    """Detector and max-pooled changes under a one-sample shift along ``axis``."""
    n = signal.shape[axis]
    a = np.take(signal, np.arange(1, n), axis=axis)       # x[i + 1]
    b = np.take(signal, np.arange(0, n - 1), axis=axis)   # x[i]: shifted by one sample
    da, db = detector(a), detector(b)
    results = {"detector": _changes(da, db)}
    for k in widths:
        pa = F.max_pool(da[None, None], k, stride=1)[0, 0]
        pb = F.max_pool(db[None, None], k, stride=1)[0, 0]
        results[k] = _changes(pa, pb)
    return results


def _check(results, widths):
    total = results["detector"][1]
    for k in widths:
        assert results[k][1] < total, (k, results)
    # wider windows are more invariant
    totals = [results[k][1] for k in widths]
    assert all(x > y for x, y in zip(totals, totals[1:])), results
    # a window of 3 (the chapter's figure) already removes a fifth of the change
    assert results[3][1] < 0.8 * total, results


@pytest.mark.parametrize("name", DIGITS)
def test_max_pooling_of_spoken_digits_is_nearly_shift_invariant(shared_data, name):
    rate, audio = scipy.io.wavfile.read(shared_data / "fsdd" / "recordings" / name)
    audio = audio.astype(np.float64) / np.abs(audio).max()
    t = np.arange(-16, 17)
    gabor = np.exp(-t ** 2 / 32.0) * np.cos(2 * np.pi * 500 * t / rate)  # a 500 Hz detector

    def detector(x):
        return np.maximum(scipy.signal.convolve(x, gabor, mode="same", method="direct"), 0)

    widths = (2, 3, 5, 9)
    _check(_compare(audio, detector, 0, widths), widths)


def _stent(shared_data):
    path = shared_data / "volumes" / "stent.npz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    volume = np.load(path)["arr_0"].astype(np.float64)
    return (volume - volume.mean()) / volume.std()


@pytest.mark.parametrize("axis", [0, 1])
def test_max_pooling_of_a_ct_slice_is_nearly_shift_invariant(shared_data, axis):
    image = _stent(shared_data)[128]
    yy, xx = np.mgrid[-3:4, -3:4]
    edge = np.exp(-(xx ** 2 + yy ** 2) / 4.5) * np.cos(2 * np.pi * xx / 6)

    def detector(x):
        return np.maximum(scipy.signal.convolve2d(x, edge, mode="same"), 0)

    widths = (2, 3, 5)
    _check(_compare(image, detector, axis, widths), widths)


def test_max_pooling_of_a_ct_volume_is_nearly_shift_invariant(shared_data):
    volume = _stent(shared_data)[100:132, 40:72, 40:72]
    blob = np.exp(-(np.mgrid[-2:3, -2:3, -2:3] ** 2).sum(0) / 2.0)
    blob -= blob.mean()

    def detector(x):
        return np.maximum(scipy.signal.convolve(x, blob, mode="same", method="direct"), 0)

    widths = (2, 3)
    _check(_compare(volume, detector, 0, widths), widths)
