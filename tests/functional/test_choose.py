"""Tests of choose_conv_method and conv(method="auto")'s use of it.

The cost model is checked for sensible choices on the benchmark shapes
(FFT for long kernels, separable for a separable Gaussian, direct/gemm for the
small kernels of the layer benchmark, as before the model existed); timing
with measure=True must return a time for every applicable candidate.  Results
of the automatic choice are checked against the numpy reference.
"""
import time

import numpy as np
import pytest

import sigconv.functional as F
from sigconv.errors import ArgumentError, ShapeError
from sigconv.functional import choose

from . import conv_reference as R


def gaussian(k, sigma):
    t = np.arange(k) - (k - 1) / 2
    return np.exp(-t ** 2 / (2 * sigma ** 2))


def lazy(shape, dtype=np.float32):
    """A read-only broadcast array of ones: shape and dtype without the memory."""
    return np.broadcast_to(np.ones((), dtype=dtype), shape)


RNG = np.random.default_rng(0)
G15 = gaussian(15, 3.0).astype(np.float32)

# (name, x shape, weight, options, expected choice)
CHOICES = [
    ("a_2d_31x31", (1, 1, 512, 512), RNG.standard_normal((1, 1, 31, 31)).astype(np.float32),
     dict(padding="same"), "fft"),
    ("b_1d_1025_taps", (16, 1, 160000), RNG.standard_normal((1, 1, 1025)).astype(np.float32),
     dict(padding="same"), "fft"),
    ("d_gaussian_3d", (1, 1, 128, 128, 128),
     np.multiply.outer(np.multiply.outer(G15, G15), G15)[None, None], dict(padding="same"),
     "separable"),
    ("gaussian_2d_31", (1, 1, 512, 512), np.multiply.outer(gaussian(31, 5), gaussian(31, 5))
     [None, None].astype(np.float32), dict(padding="same"), "separable"),
    # issue 2's layer benchmark: small kernels keep the direct path
    ("1d_1_32_k9", (16, 1, 16000), RNG.standard_normal((32, 1, 9)).astype(np.float32),
     dict(padding="same"), "direct"),
    ("1d_32_64_k9", (16, 32, 4000), RNG.standard_normal((64, 32, 9)).astype(np.float32),
     dict(padding="same"), "direct"),
    ("2d_16_32_k3", (32, 16, 64, 64), RNG.standard_normal((32, 16, 3, 3)).astype(np.float32),
     dict(padding="same"), "direct"),
    ("2d_3_32_k3", (8, 3, 224, 224), RNG.standard_normal((32, 3, 3, 3)).astype(np.float32),
     dict(padding="same"), "direct"),
    ("3d_8_16_k3", (2, 8, 48, 48, 48), RNG.standard_normal((16, 8, 3, 3, 3)).astype(np.float32),
     dict(padding="same"), "direct"),
    ("3d_3_16_k3", (2, 3, 16, 112, 112), RNG.standard_normal((16, 3, 3, 3, 3))
     .astype(np.float32), dict(padding="same"), "direct"),
    ("strided_small", (8, 3, 224, 224), RNG.standard_normal((32, 3, 7, 7)).astype(np.float32),
     dict(padding="same", stride=2), "gemm"),
    ("box_3x3_stays_direct", (1, 1, 512, 512), np.ones((1, 1, 3, 3), np.float32),
     dict(padding="same"), "direct"),
]


@pytest.mark.parametrize("name,shape,weight,options,expected", CHOICES,
                         ids=[c[0] for c in CHOICES])
def test_sensible_choices(name, shape, weight, options, expected):
    assert F.choose_conv_method(lazy(shape), weight, **options) == expected


def test_estimates_are_cheap_and_cover_every_method():
    x, w = lazy((1, 1, 64, 64)), np.ones((1, 1, 5, 5), np.float32)
    times = F.estimate_conv_times(x, w)
    assert set(times) == {"direct", "gemm", "fft", "separable"}
    assert all(t > 0 for t in times.values())
    assert set(F.estimate_conv_times(x, np.ones((2, 1, 5, 5), np.float32), stride=(1, 2))) == {"gemm", "fft"}
    from sigconv.functional._core import _geometry
    geometry = _geometry(
        (16, 32, 4000), (64, 32, 9), stride=1, padding="same", dilation=1, groups=1, flip=False)
    start = time.perf_counter()
    for _ in range(200):
        choose._estimate(geometry, np.float32)
    assert (time.perf_counter() - start) / 200 < 1e-3   # microseconds, with a wide margin


def test_measure_times_every_candidate():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 1, 40, 40))
    w = np.multiply.outer(gaussian(7, 1.5), gaussian(7, 1.5))[None, None]
    best, timings = F.choose_conv_method(x, w, padding="same", measure=True, repeat=1)
    assert set(timings) == {"direct", "gemm", "fft", "separable"}
    assert best == min(timings, key=timings.get)
    assert all(t > 0 for t in timings.values())
    # no direct at stride 2 along the last axis, no separable for a random kernel
    best, timings = F.choose_conv_method(x, rng.standard_normal((2, 1, 5, 5)), stride=2,
                                         measure=True)
    assert set(timings) == {"gemm", "fft"} and best in timings


def test_methods_can_be_overridden(monkeypatch):
    x = lazy((1, 1, 256, 256), np.float64)
    w = np.ones((1, 1, 31, 31)) + np.eye(31)         # not separable
    assert F.choose_conv_method(x, w, padding="same") == "fft"
    monkeypatch.setitem(choose.COST_CONSTANTS, "fft_rate", 1e3)
    assert F.choose_conv_method(x, w, padding="same") == "direct"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kernel,options", [
    ((2, 3, 4000), (4, 3, 401), dict(padding="same", stride=2)),
    ((1, 2, 120, 100), (2, 2, 31, 27), dict(padding="full", flip=True)),
    ((1, 1, 40, 40, 40), (2, 1, 15, 15, 15), dict(padding=((3, 4), 2, 0))),
])
def test_auto_results_equal_the_reference(shape, kernel, options, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(kernel).astype(dtype)
    assert F.choose_conv_method(x, w, **options) == "fft"
    ref = R.conv(x, w, **options)
    got = F.conv(x, w, **options)
    scale = np.abs(ref).max()
    tol = 1e-10 if dtype == np.float64 else 2e-5
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * scale)
    gy = rng.standard_normal(ref.shape).astype(dtype)
    gx_ref = R.conv_grad_input(gy, w, x.shape, **options)
    np.testing.assert_allclose(F.conv_grad_input(gy, w, x.shape, **options), gx_ref, rtol=tol,
                               atol=tol * np.abs(gx_ref).max())
    gw_ref = R.conv_grad_weight(x, gy, w.shape, **options)
    np.testing.assert_allclose(F.conv_grad_weight(x, gy, w.shape, **options), gw_ref, rtol=tol,
                               atol=tol * np.abs(gw_ref).max())


def test_non_finite_inputs_keep_the_direct_path():
    x = np.ones((1, 1, 200, 200))
    w = np.ones((1, 1, 31, 31)) + np.eye(31)
    assert F.choose_conv_method(x, w) == "fft"
    x[0, 0, 0, 0] = np.inf
    assert F.choose_conv_method(x, w) == "direct"


BAD = [
    ("unknown_method", lambda: F.conv(np.ones((1, 1, 8)), np.ones((1, 1, 3)), method="winograd"),
     ArgumentError, r"(?=.*method)(?=.*'auto')(?=.*'gemm')(?=.*'direct')(?=.*'fft')"
                    r"(?=.*'separable')(?=.*winograd)"),
    ("unknown_method_grad", lambda: F.conv_grad_input(np.ones((1, 1, 6)), np.ones((1, 1, 3)),
                                                      (1, 1, 8), method="FFT"),
     ArgumentError, r"method must be one of.*'fft'.*got 'FFT'"),
    ("measure_not_bool", lambda: F.choose_conv_method(np.ones((1, 1, 8)), np.ones((1, 1, 3)),
                                                      measure="yes"),
     ArgumentError, r"measure must be True or False, got 'yes'"),
    ("repeat_zero", lambda: F.choose_conv_method(np.ones((1, 1, 8)), np.ones((1, 1, 3)),
                                                 measure=True, repeat=0),
     ArgumentError, r"repeat must be a positive int\b.*, got 0$"),
    ("measure_bad_shapes", lambda: F.choose_conv_method(np.ones((1, 2, 8)), np.ones((1, 3, 3)),
                                                        measure=True),
     ShapeError, r"channel mismatch"),
    ("measure_bad_padding", lambda: F.choose_conv_method(np.ones((1, 1, 8)), np.ones((1, 1, 3)),
                                                         padding="sane", measure=True),
     ArgumentError, r"padding"),
    ("estimate_bad_rank", lambda: F.estimate_conv_times(np.ones((8,)), np.ones((1, 1, 3))),
     ShapeError, r"x must have shape"),
]


@pytest.mark.parametrize("name,call,error,match", BAD, ids=[b[0] for b in BAD])
def test_bad_input(name, call, error, match):
    with pytest.raises(error, match=match):
        call()
