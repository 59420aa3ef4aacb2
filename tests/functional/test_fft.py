"""Tests of sigconv.functional.fft_conv and its gradients.

Oracles: the numpy reference written from the chapter's formula
(conv_reference.py), scipy.signal.fftconvolve/correlate, and finite
differences in float64.  float64 results must match tightly; float32 results
are compared relative to the output's scale (the transforms round each
output to about 1e-6 of the largest values of the signal).
"""
import os

import numpy as np
import pytest
import scipy.signal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sigconv.functional as F
from sigconv.errors import ArgumentError, DTypeError, ShapeError

from . import conv_reference as R

SCALE = float(os.environ.get("SIGCONV_HYPOTHESIS_SCALE", "1"))
HYPOTHESIS = settings(max_examples=max(1, int(60 * SCALE)), deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])


def assert_close(got, ref, dtype, what=""):
    got = np.asarray(got)
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    assert got.dtype == np.dtype(dtype), what
    scale = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
    if np.dtype(dtype) == np.float64:
        tol = dict(rtol=1e-10, atol=1e-10 * scale)
    else:
        tol = dict(rtol=1e-4, atol=2e-5 * scale)
    np.testing.assert_allclose(got.astype(np.float64), ref, err_msg=what, **tol)


@st.composite
def problems(draw, dims=(1, 2, 3)):
    nd = draw(st.sampled_from(dims))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, 2))
    cout = groups * draw(st.integers(1, 2))
    n = draw(st.integers(1, 2))
    limit = {1: 30, 2: 10, 3: 7}[nd]
    spatial = tuple(draw(st.integers(1, limit)) for _ in range(nd))
    kernel = tuple(draw(st.integers(1, 5)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = draw(st.one_of(
        st.sampled_from(["valid", "same", "full"]),
        st.integers(0, 4),
        st.tuples(*[st.tuples(st.integers(0, 6), st.integers(0, 6)) for _ in range(nd)])))
    flip = draw(st.booleans())
    bias = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**32 - 1))
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    # skip problems whose kernel does not fit in the padded input
    out = R.output_size(spatial, kernel, stride, R.padding_pairs(padding, spatial, kernel, stride,
                                                                 dilation, flip), dilation)
    if any(m < 1 for m in out):
        spatial = tuple(s + (k - 1) * d + 1 for s, k, d in zip(spatial, kernel, dilation))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cin) + spatial).astype(dtype)
    w = rng.standard_normal((cout, cin // groups) + kernel).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype) if bias else None
    return x, w, b, options, dtype


@HYPOTHESIS
@given(problems())
def test_fft_conv_equals_the_reference(problem):
    x, w, b, options, dtype = problem
    ref = R.conv(x, w, b, **options)
    assert_close(F.fft_conv(x, w, b, **options), ref, dtype, "fft_conv")
    assert_close(F.conv(x, w, b, method="fft", **options), ref, dtype, "conv(method='fft')")


@HYPOTHESIS
@given(problems())
def test_fft_gradients_equal_the_reference(problem):
    x, w, _, options, dtype = problem
    y = R.conv(x, w, **options)
    gy = np.random.default_rng(0).standard_normal(y.shape).astype(dtype)
    assert_close(F.fft_conv_grad_input(gy, w, x.shape, **options),
                 R.conv_grad_input(gy, w, x.shape, **options), dtype, "grad_input")
    assert_close(F.conv_grad_input(gy, w, x.shape, method="fft", **options),
                 R.conv_grad_input(gy, w, x.shape, **options), dtype, "conv_grad_input fft")
    assert_close(F.fft_conv_grad_weight(x, gy, w.shape, **options),
                 R.conv_grad_weight(x, gy, w.shape, **options), dtype, "grad_weight")
    assert_close(F.conv_grad_weight(x, gy, w.shape, method="fft", **options),
                 R.conv_grad_weight(x, gy, w.shape, **options), dtype, "conv_grad_weight fft")


@pytest.mark.parametrize("shape,kernel", [((1, 1, 64, 80), (31, 31)), ((2, 1, 9, 40, 33),
                                                                       (5, 7, 3))])
@pytest.mark.parametrize("mode", ["valid", "same", "full"])
def test_matches_scipy_fftconvolve(shape, kernel, mode):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((1, 1) + kernel)
    got = F.fft_conv(x, w, padding=mode, flip=True)
    for i in range(shape[0]):
        ref = scipy.signal.fftconvolve(x[i, 0], w[0, 0], mode=mode)
        np.testing.assert_allclose(got[i, 0], ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [
    dict(padding="same"),
    dict(padding="full", flip=True),
    dict(padding=(700,), stride=3),        # windows reaching far into the padding
    dict(padding="valid", dilation=3, stride=2),
    dict(padding=((5, 900),), groups=2),
])
def test_overlap_add_long_signals(options, dtype):
    """Long 1-D signals with a long kernel take the overlap-add path; same result."""
    rng = np.random.default_rng(2)
    groups = options.get("groups", 1)
    x = rng.standard_normal((2, 2, 20000)).astype(dtype)
    w = rng.standard_normal((2, 2 // groups, 301)).astype(dtype)
    assert_close(F.fft_conv(x, w, **options), R.conv(x, w, **options), dtype, str(options))


def test_overlap_add_memory_is_bounded(monkeypatch):
    """With a tiny working-memory budget the result is unchanged (many small chunks)."""
    from sigconv.functional import fft as fft_module
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 1, 30000))
    w = rng.standard_normal((1, 1, 129))
    expected = R.conv(x, w, padding="same")
    monkeypatch.setattr(fft_module, "OVERLAP_ADD_BYTES", 1 << 14)
    assert fft_module._overlap_add_plan(30000, 129, 1, 1, 1, 8) is not None
    np.testing.assert_allclose(F.fft_conv(x, w, padding="same"), expected, rtol=1e-10,
                               atol=1e-10)


def test_many_channels_take_the_matrix_product_path():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 24, 12, 13))
    w = rng.standard_normal((20, 12, 5, 4))
    options = dict(groups=2, padding="same", stride=2)
    y = R.conv(x, w, **options)
    np.testing.assert_allclose(F.fft_conv(x, w, **options), y, rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(F.fft_conv_grad_input(gy, w, x.shape, **options),
                               R.conv_grad_input(gy, w, x.shape, **options), rtol=1e-10,
                               atol=1e-10)
    x = rng.standard_normal((30, 24, 12, 13))
    gy = rng.standard_normal((30, 20, 6, 7))
    np.testing.assert_allclose(F.fft_conv_grad_weight(x, gy, w.shape, **options),
                               R.conv_grad_weight(x, gy, w.shape, **options), rtol=1e-9,
                               atol=1e-9)


@pytest.mark.parametrize("options", [dict(padding="same", stride=2, dilation=(1, 2)),
                                     dict(padding=((2, 0), (1, 3)), flip=True, groups=2)])
def test_finite_difference_gradients(options):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 7, 8))
    w = rng.standard_normal((2, 2 // options.get("groups", 1), 3, 4))
    gy = rng.standard_normal(F.fft_conv(x, w, **options).shape)

    def loss(x_, w_):
        return float(np.sum(F.fft_conv(x_, w_, **options) * gy))

    gx = F.fft_conv_grad_input(gy, w, x.shape, **options)
    gw = F.fft_conv_grad_weight(x, gy, w.shape, **options)
    eps = 1e-6
    for array, grad, which in ((x, gx, 0), (w, gw, 1)):
        for flat in rng.choice(array.size, 8, replace=False):
            idx = np.unravel_index(flat, array.shape)
            plus, minus = array.copy(), array.copy()
            plus[idx] += eps
            minus[idx] -= eps
            args_p = (plus, w) if which == 0 else (x, plus)
            args_m = (minus, w) if which == 0 else (x, minus)
            numeric = (loss(*args_p) - loss(*args_m)) / (2 * eps)
            assert abs(numeric - grad[idx]) < 1e-6 * max(1.0, abs(numeric))


def test_dtypes_and_layouts():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 2, 20, 21))
    w = rng.standard_normal((3, 2, 4, 4))
    ref = R.conv(x, w, padding="same")
    assert F.fft_conv(x.astype(np.float16), w.astype(np.float32)).dtype == np.float32
    assert F.fft_conv(x.astype(np.int64), w, padding="same").dtype == np.float64
    np.testing.assert_allclose(F.fft_conv(np.asfortranarray(x), w[..., ::-1, :][..., ::-1, :],
                                          padding="same"), ref, rtol=1e-10, atol=1e-10)
    big = np.zeros((2, 4, 40, 42))
    big[::2, ::2, ::2, ::2] = x
    np.testing.assert_allclose(F.fft_conv(big[::2, ::2, ::2, ::2], w, padding="same"), ref,
                               rtol=1e-10, atol=1e-10)


def test_nan_spreads_over_the_channel():
    """Documented difference from the direct path: a NaN reaches every output of its channel."""
    x = np.ones((1, 1, 32))
    x[0, 0, 3] = np.nan
    y = F.fft_conv(x, np.ones((1, 1, 3)))
    assert np.isnan(y).all()
    # conv(method="auto") does not take the FFT path for non-finite inputs
    xl = np.ones((2, 1, 20000))
    xl[0, 0, 100] = np.nan
    assert F.choose_conv_method(np.ones((2, 1, 20000)), np.ones((1, 1, 2001))) == "fft"
    y = F.conv(xl, np.ones((1, 1, 2001)))
    assert np.isnan(y[0, 0, :101]).all() and np.isfinite(y[0, 0, 101:]).all()
    assert np.isfinite(y[1]).all()


BAD = [
    ("x_too_few_axes", lambda: F.fft_conv(np.ones((2, 3)), np.ones((1, 3, 2))), ShapeError,
     r"x must have shape"),
    ("channel_mismatch", lambda: F.fft_conv(np.ones((1, 3, 8)), np.ones((1, 2, 2))), ShapeError,
     r"channel mismatch"),
    ("kernel_too_large", lambda: F.fft_conv(np.ones((1, 1, 4)), np.ones((1, 1, 6))), ShapeError,
     r"kernel is larger"),
    ("bad_padding", lambda: F.fft_conv(np.ones((1, 1, 8)), np.ones((1, 1, 2)), padding="sane"),
     ArgumentError, r"(?=.*'valid')(?=.*'same')(?=.*sane)"),
    ("bad_stride", lambda: F.fft_conv(np.ones((1, 1, 8)), np.ones((1, 1, 2)), stride=0),
     ArgumentError, r"stride"),
    ("bias_shape", lambda: F.fft_conv(np.ones((1, 1, 8)), np.ones((2, 1, 2)), np.ones(3)),
     ShapeError, r"bias must have shape \(2,\)"),
    ("complex", lambda: F.fft_conv(np.ones((1, 1, 8), complex), np.ones((1, 1, 2))), DTypeError,
     r"complex"),
    ("mixed_precision", lambda: F.fft_conv(np.ones((1, 1, 8), np.float32), np.ones((1, 1, 2))),
     DTypeError, r"dtypes do not match"),
    ("grad_output_shape", lambda: F.fft_conv_grad_input(np.ones((1, 1, 5)), np.ones((1, 1, 2)),
                                                        (1, 1, 8)), ShapeError,
     r"grad_output must have the forward output's shape \(1, 1, 7\)"),
    ("input_shape_not_ints", lambda: F.fft_conv_grad_input(np.ones((1, 1, 7)),
                                                           np.ones((1, 1, 2)), (1, 1, 8.5)),
     ArgumentError, r"input_shape"),
    ("weight_shape_grad", lambda: F.fft_conv_grad_weight(np.ones((1, 1, 8)), np.ones((1, 1, 6)),
                                                         (1, 1, 2)), ShapeError,
     r"grad_output must have the forward output's shape \(1, 1, 7\)"),
]


@pytest.mark.parametrize("name,call,error,match", BAD, ids=[b[0] for b in BAD])
def test_bad_input(name, call, error, match):
    with pytest.raises(error, match=match):
        call()
