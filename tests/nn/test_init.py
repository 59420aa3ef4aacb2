"""Initialisation strategies of chapter 9.9: random, hand-designed, unsupervised (k-means)."""
import math

import numpy as np
import pytest

from sigconv import ArgumentError, ShapeError, nn
from sigconv.nn import init

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)


@pytest.mark.parametrize("fn, variance", [
    (init.he_normal_, lambda fi, fo: 2 / fi),
    (init.he_uniform_, lambda fi, fo: 2 / fi),
    (init.glorot_normal_, lambda fi, fo: 2 / (fi + fo)),
    (init.glorot_uniform_, lambda fi, fo: 2 / (fi + fo)),
])
def test_random_variances(fn, variance):
    layer = nn.Conv(16, 32, (3, 5), ndim=2, rng=0)
    layer.bias.data[:] = 1
    fn(layer, rng=1)
    fan_in, fan_out = 16 * 15, 32 * 15
    assert layer.weight.data.var() == pytest.approx(variance(fan_in, fan_out), rel=0.05)
    assert np.all(layer.bias.data == 0)
    assert layer.weight.dtype == np.float32
    linear = fn(nn.Linear(300, 100), rng=2)
    assert linear.weight.data.var() == pytest.approx(variance(300, 100), rel=0.05)


def test_he_keeps_relu_activations_at_scale(rng):
    x = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)
    layers = [nn.Conv(16, 16, 3, ndim=2, rng=i) for i in range(6)]
    h = x
    for layer in layers:
        h = nn.functional.relu(layer(h))
    ratio = np.mean(h.data ** 2) / np.mean(x ** 2)
    assert 0.2 < ratio < 5  # not vanished or exploded after 6 layers


def test_edge_kernels_are_sobel():
    bank = init.edge_kernels(3, 2)
    assert bank.shape == (4, 3, 3)
    np.testing.assert_allclose(bank[0], SOBEL_X.T / np.linalg.norm(SOBEL_X))  # d/d(row)
    np.testing.assert_allclose(bank[2], SOBEL_X / np.linalg.norm(SOBEL_X))  # d/d(column)
    np.testing.assert_allclose(bank[1], -bank[0])
    np.testing.assert_allclose(init.edge_kernels(3, 1)[0], np.array([-1, 0, 1]) / math.sqrt(2))
    assert init.edge_kernels((3, 5, 4), 3).shape == (6, 3, 5, 4)
    steered = init.edge_kernels(5, 2, orientations=8)
    assert steered.shape == (16, 5, 5)
    np.testing.assert_allclose(steered.reshape(16, -1).sum(1), 0, atol=1e-12)


def test_edge_layer_detects_a_step(rng):
    layer = init.edge_(nn.Conv(1, 4, 3, ndim=2, padding="valid"))
    image = np.zeros((1, 1, 8, 8), np.float32)
    image[..., 4:] = 1  # vertical edge: intensity rises along columns
    out = layer(image).data[0]
    strongest = np.abs(out).reshape(4, -1).max(1)
    assert np.argmax(strongest) in (2, 3)  # the column-derivative filters respond
    assert strongest[0] == pytest.approx(0, abs=1e-6)  # the row-derivative filters do not
    np.testing.assert_allclose(np.linalg.norm(layer.weight.data.reshape(4, -1), axis=1),
                               math.sqrt(2), rtol=1e-6)


def test_gabor_bank_orientation_selectivity():
    bank = init.gabor_kernels(9, 2, orientations=4, scales=2)
    assert bank.shape == (16, 9, 9)
    np.testing.assert_allclose(np.linalg.norm(bank.reshape(16, -1), axis=1), 1)
    np.testing.assert_allclose(bank.reshape(16, -1).sum(1), 0, atol=1e-9)
    # a grating along direction k responds most to the filters of orientation k
    r, c = np.meshgrid(np.arange(9) - 4, np.arange(9) - 4, indexing="ij")
    for k in range(4):
        theta = np.pi * k / 4
        grating = np.cos(2 * np.pi * (r * np.sin(theta) + c * np.cos(theta)) / 9)
        responses = np.abs((bank[:8] * grating).sum(axis=(1, 2)))  # first scale
        assert np.argmax(responses) // 2 == k
    assert init.gabor_kernels(7, 1, scales=3).shape == (6, 7)
    assert init.gabor_kernels(5, 3, orientations=5, scales=1).shape == (10, 5, 5, 5)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_gabor_fills_conv_of_any_rank(ndim):
    layer = init.gabor_(nn.Conv(3, 10, 5, ndim=ndim), orientations=2, scales=1)
    w = layer.weight.data
    assert np.all(np.isfinite(w)) and w.dtype == np.float32
    # filter o repeats the bank entry o % len(bank) on every input channel
    np.testing.assert_allclose(w[0, 0], w[0, 1])
    np.testing.assert_allclose(w[4 if ndim > 1 else 2], w[0])


def test_kmeans_on_real_digits_finds_oriented_strokes():
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is not installed")
    images = datasets.load_digits().images[:, None] / 16.0  # real handwritten digits
    filters = init.kmeans_filters(images, 5, 8, n_patches=4000, iterations=10, rng=0)
    assert filters.shape == (8, 1, 5, 5)
    np.testing.assert_allclose(np.linalg.norm(filters.reshape(8, -1), axis=1), 1)
    np.testing.assert_allclose(filters.reshape(8, -1).sum(1), 0, atol=1e-9)
    # whitened k-means gives localised, structured filters: far from random noise,
    # each filter has much of its energy in few taps
    energy = np.sort(filters.reshape(8, -1) ** 2, axis=1)[:, ::-1]
    assert np.median(energy[:, :8].sum(1)) > 0.5
    layer = init.kmeans_(nn.Conv(1, 8, 5, ndim=2), images[:200], n_patches=2000, rng=0)
    assert layer(images[:4].astype(np.float32)).shape == (4, 8, 8, 8)


def test_kmeans_learns_the_patterns_in_the_data(rng):
    # signals built from two patterns: k-means finds them (up to sign)
    a, b = np.array([1.0, -1.0, 1.0, -1.0]), np.array([1.0, 1.0, -1.0, -1.0])
    signals = np.zeros((200, 1, 24))
    for s in signals:
        for start in range(0, 24, 4):
            s[0, start:start + 4] = (a if rng.random() < 0.5 else b) * rng.choice([-1, 1])
    found = init.kmeans_filters(signals, 4, 2, n_patches=3000, rng=0,
                                whiten_eps=1.0)[:, 0]
    targets = np.stack([a, b]) / 2
    similarity = np.abs(found @ targets.T)  # patches straddling two blocks blur them a little
    assert similarity.max(axis=0).min() > 0.8
    assert np.sort(similarity, axis=None)[:2].max() < 0.2  # one filter per pattern


def test_init_errors():
    with pytest.raises(ArgumentError, match="kernel_size must be >= 2"):
        init.edge_kernels(1, 2)
    with pytest.raises(ArgumentError, match="ndim must be 1, 2 or 3"):
        init.gabor_kernels(3, 4)
    with pytest.raises(ArgumentError, match="orientations must be a positive int"):
        init.gabor_kernels(3, 2, orientations=0)
    with pytest.raises(ArgumentError, match="expected a layer with a weight"):
        init.he_normal_("conv")
    with pytest.raises(ShapeError, match="takes 2 input channels per group, data has shape"):
        init.kmeans_(nn.Conv(2, 4, 3, ndim=1), np.zeros((5, 3, 10)))
    with pytest.raises(ShapeError, match="smaller than the kernel"):
        init.kmeans_filters(np.zeros((5, 1, 2, 2)), 3, 4)
    with pytest.raises(ShapeError, match="fills a convolution weight"):
        init.gabor_(nn.Linear(3, 4))


def test_kmeans_refuses_a_ragged_batch_with_shape_error():
    # numpy once raised a bare ValueError on the items of different sizes
    from sigconv import Ragged, Tensor
    layer = nn.Conv(1, 4, 3, ndim=1)
    batch = Ragged.from_list([np.ones((1, 50)), np.ones((1, 70))])
    for data in (batch, Tensor(batch)):
        with pytest.raises(ShapeError, match="kmeans_ learns from a dense"):
            init.kmeans_(layer, data, n_patches=20)
    with pytest.raises(ShapeError, match="kmeans_filters learns from a dense"):
        init.kmeans_filters(batch, 3, 4)
