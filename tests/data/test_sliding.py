"""Sliding-window inference equals the whole-volume output when the receptive field fits."""
import numpy as np
import pytest

import sigconv.functional as F
from sigconv import ArgumentError, ShapeError
from sigconv.data import sliding_window_inference, window_starts


def _model(rng, nd, channels=2):
    """Two 3-tap 'same' convolutions with a ReLU: receptive-field radius 2."""
    w1 = rng.standard_normal((4, channels) + (3,) * nd)
    w2 = rng.standard_normal((3, 4) + (3,) * nd)
    return lambda x: F.conv(np.maximum(F.conv(x, w1, padding="same"), 0), w2, padding="same")


@pytest.mark.parametrize("nd, spatial, window, overlap", [
    (1, (101,), 24, 0.5),
    (2, (37, 50), (16, 20), 0.5),
    (3, (21, 26, 30), 12, 0.5),
    (3, (21, 26, 30), (12, 16, 10), 0.6),
])
def test_equals_whole_input_output(rng, nd, spatial, window, overlap):
    x = rng.standard_normal((2, 2) + spatial)
    model = _model(rng, nd)
    whole = model(x)
    windowed = sliding_window_inference(x, model, window, overlap=overlap, batch_size=3)
    assert windowed.shape == whole.shape
    np.testing.assert_allclose(windowed, whole, rtol=1e-10, atol=1e-10)


def test_real_ct_volume(rng, shared_data):
    volume = np.load(shared_data / "volumes" / "stent.npz")["arr_0"][40:80, 20:84, 30:94]
    x = ((volume - volume.mean()) / volume.std())[None, None].astype(np.float64)
    model = _model(rng, 3, channels=1)
    np.testing.assert_allclose(sliding_window_inference(x, model, 24, overlap=0.5), model(x),
                               rtol=1e-9, atol=1e-9)


def test_too_small_margin_shows_the_seams(rng):
    x = rng.standard_normal((1, 2, 80))
    model = _model(rng, 1)
    seams = sliding_window_inference(x, model, 20, overlap=0.5, margin=0)
    assert np.abs(seams - model(x)).max() > 1e-3


def test_window_starts_cover_the_axis():
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(10, 10, 3) == [0]
    assert window_starts(5, 8, 2) == [0]


def test_bad_arguments(rng):
    x = rng.standard_normal((1, 1, 30))
    with pytest.raises(ShapeError, match="inputs must have shape"):
        sliding_window_inference(x[0, 0], lambda b: b, 8)
    with pytest.raises(ArgumentError, match="overlap"):
        sliding_window_inference(x, lambda b: b, 8, overlap=1.0)
    with pytest.raises(ArgumentError, match="margin 3 on axis 0 leaves gaps"):
        sliding_window_inference(x, lambda b: b, 8, overlap=0.5, margin=3)
    with pytest.raises(ShapeError, match="predict must map"):
        sliding_window_inference(x, lambda b: b[..., :-1], 8)


def test_no_item_and_an_empty_axis_are_refused_naming_the_shape():
    # a batch of no items once returned None / 1 (a bare TypeError); an empty axis blamed kernel_size
    with pytest.raises(ShapeError, match=r"no item: shape \(0, 1, 20\)"):
        sliding_window_inference(np.zeros((0, 1, 20)), lambda b: b, 8)
    with pytest.raises(ShapeError, match=r"zero-length spatial axis: shape \(2, 1, 0\)"):
        sliding_window_inference(np.zeros((2, 1, 0)), lambda b: b, 8)
