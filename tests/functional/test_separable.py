"""Tests of separable_conv, its gradients and separable_factors.

Oracles: the numpy reference of conv_reference.py applied with the outer
product of the factors (the chapter's definition of a separable kernel),
numpy's own outer products and SVD-free constructions for detection, and
finite differences in float64.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sigconv.functional as F
from sigconv.errors import ArgumentError, DTypeError, ShapeError

from . import conv_reference as R

SCALE = float(os.environ.get("SIGCONV_HYPOTHESIS_SCALE", "1"))
HYPOTHESIS = settings(max_examples=max(1, int(50 * SCALE)), deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])


def outer(vectors):
    result = np.asarray(vectors[0], dtype=np.float64)
    for v in vectors[1:]:
        result = np.multiply.outer(result, np.asarray(v, dtype=np.float64))
    return result


def depthwise_weight(factors, channels):
    """``(C, 1, *kernel)``: each channel's outer product of the factors."""
    rows = [np.broadcast_to(np.asarray(f, dtype=np.float64), (channels, np.shape(f)[-1]))
            for f in factors]
    return np.stack([outer([r[c] for r in rows]) for c in range(channels)])[:, None]


def gaussian(k, sigma):
    t = np.arange(k) - (k - 1) / 2
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    return g / g.sum()


@st.composite
def problems(draw):
    nd = draw(st.sampled_from([1, 2, 3]))
    channels = draw(st.integers(1, 3))
    n = draw(st.integers(1, 2))
    limit = {1: 25, 2: 10, 3: 7}[nd]
    spatial = tuple(draw(st.integers(4, limit)) for _ in range(nd))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    per_channel = tuple(draw(st.booleans()) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = draw(st.one_of(st.sampled_from(["valid", "same", "full"]), st.integers(0, 3)))
    flip = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    spatial = tuple(s + (k - 1) * d for s, k, d in zip(spatial, kernel, dilation))
    x = rng.standard_normal((n, channels) + spatial).astype(dtype)
    factors = [rng.standard_normal((channels, k) if pc else (k,)).astype(dtype)
               for k, pc in zip(kernel, per_channel)]
    bias = rng.standard_normal(channels).astype(dtype) if draw(st.booleans()) else None
    return x, factors, bias, dict(stride=stride, padding=padding, dilation=dilation, flip=flip)


def tolerance(dtype, ref):
    scale = max(1.0, float(np.abs(ref).max()))
    return (dict(rtol=1e-10, atol=1e-10 * scale) if np.dtype(dtype) == np.float64
            else dict(rtol=1e-4, atol=1e-5 * scale))


@HYPOTHESIS
@given(problems())
def test_separable_equals_conv_with_the_outer_product(problem):
    x, factors, bias, options = problem
    channels = x.shape[1]
    w = depthwise_weight(factors, channels)
    ref = R.conv(x, w, bias, groups=channels, **options)
    got = F.separable_conv(x, factors, bias, **options)
    assert got.dtype == x.dtype and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, **tolerance(x.dtype, ref))
    gy = np.random.default_rng(1).standard_normal(ref.shape).astype(x.dtype)
    gx = F.separable_conv_grad_input(gy, factors, x.shape, **options)
    gx_ref = R.conv_grad_input(gy, w, x.shape, groups=channels, **options)
    np.testing.assert_allclose(gx, gx_ref, **tolerance(x.dtype, gx_ref))


@pytest.mark.parametrize("options", [
    dict(padding="same"),
    dict(padding="full", stride=(2, 1, 3), flip=True),
    dict(padding=1, dilation=(2, 1, 1)),
])
def test_factor_gradients_by_finite_differences(options):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 7, 6, 8))
    factors = [rng.standard_normal(3), rng.standard_normal((2, 2)), rng.standard_normal(4)]
    gy = rng.standard_normal(F.separable_conv(x, factors, **options).shape)
    grads = F.separable_conv_grad_factors(x, gy, factors, **options)
    gx = F.separable_conv_grad_input(gy, factors, x.shape, **options)

    def loss(x_, factors_):
        return float(np.sum(F.separable_conv(x_, factors_, **options) * gy))

    eps = 1e-6
    for a, f in enumerate(factors):
        assert grads[a].shape == f.shape
        for flat in range(f.size):
            idx = np.unravel_index(flat, f.shape)
            plus = [g.copy() for g in factors]
            minus = [g.copy() for g in factors]
            plus[a][idx] += eps
            minus[a][idx] -= eps
            numeric = (loss(x, plus) - loss(x, minus)) / (2 * eps)
            assert abs(numeric - grads[a][idx]) < 1e-6 * max(1.0, abs(numeric)), (a, idx)
    for flat in rng.choice(x.size, 10, replace=False):
        idx = np.unravel_index(flat, x.shape)
        plus, minus = x.copy(), x.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric = (loss(plus, factors) - loss(minus, factors)) / (2 * eps)
        assert abs(numeric - gx[idx]) < 1e-6 * max(1.0, abs(numeric))


# ---------------------------------------------------------------------------
# detection
# ---------------------------------------------------------------------------

SOBEL = outer([[1, 2, 1], [1, 0, -1]])
POSITIVES = [
    ("gaussian_2d", outer([gaussian(15, 2.5), gaussian(15, 2.5)])),
    ("gaussian_2d_anisotropic", outer([gaussian(9, 1.0), gaussian(21, 4.0)])),
    ("gaussian_3d", outer([gaussian(15, 3.0)] * 3)),
    ("box_2d", np.full((5, 7), 1 / 35)),
    ("box_3d", np.ones((3, 4, 5))),
    ("sobel", SOBEL),
    ("sobel_3d", outer([[1, 2, 1], [1, 2, 1], [1, 0, -1]])),
    ("negative_3d", outer([[1.0, -2.0], [3.0, 0.5, -1.0], [-1.0, 4.0]])),
    ("one_tap_axis", outer([[1.0], [2.0, 3.0, -1.0]])),
    ("kernel_1d", np.array([1.0, -3.0, 2.0])),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kernel", POSITIVES, ids=[p[0] for p in POSITIVES])
def test_detects_separable_kernels(name, kernel, dtype):
    kernel = kernel.astype(dtype)
    factors = F.separable_factors(kernel)
    assert factors is not None, name
    assert len(factors) == kernel.ndim
    assert all(f.dtype == np.dtype(dtype) and f.shape == (k,) for f, k in zip(factors, kernel.shape))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(outer(factors), kernel, atol=tol * np.abs(kernel).max())


NEGATIVES = [
    ("random_2d", np.random.default_rng(1).standard_normal((5, 5))),
    ("random_3d", np.random.default_rng(2).standard_normal((4, 4, 4))),
    ("rank_2", outer([[1, 2, 1], [1, 0, -1]]) + outer([[1, 0, -1], [1, 2, 1]])),
    ("laplacian", np.array([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])),
    ("disc", (np.add.outer(np.arange(-3, 4) ** 2, np.arange(-3, 4) ** 2) <= 9).astype(float)),
    ("rank_2_3d", outer([[1, 2], [1, 1], [3, 1]]) + outer([[1, -1], [2, 1], [1, 1]])),
    ("slightly_perturbed", outer([gaussian(9, 2)] * 2) + 1e-6 * np.eye(9)),
    ("nan", np.full((3, 3), np.nan)),
]


@pytest.mark.parametrize("name,kernel", NEGATIVES, ids=[n[0] for n in NEGATIVES])
def test_rejects_non_separable_kernels(name, kernel):
    assert F.separable_factors(kernel) is None


def test_tolerance_is_relative():
    kernel = outer([gaussian(9, 2)] * 2) + 1e-6 * np.eye(9)
    assert F.separable_factors(kernel) is None
    assert F.separable_factors(kernel, rtol=1e-3) is not None
    assert F.separable_factors(1e6 * outer([gaussian(9, 2)] * 2)) is not None


def test_per_channel_factors_and_zero_kernel():
    g, b = gaussian(7, 1.5), np.ones(7)
    kernels = np.stack([outer([g, g]), outer([b, g]), np.zeros((7, 7))])
    factors = F.separable_factors(kernels, per_channel=True)
    assert [f.shape for f in factors] == [(3, 7), (3, 7)]
    for c in range(3):
        np.testing.assert_allclose(outer([factors[0][c], factors[1][c]]), kernels[c], atol=1e-14)
    kernels[1, 0, 0] += 1
    assert F.separable_factors(kernels, per_channel=True) is None


def test_conv_uses_the_separable_path(monkeypatch):
    """conv(method="auto") with a separable depthwise kernel equals the reference."""
    from sigconv.functional import separable as sep_module
    calls = []
    original = sep_module._passes
    monkeypatch.setattr(sep_module, "_passes", lambda *a: calls.append(1) or original(*a))
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 2, 20, 22, 24))
    w = np.stack([outer([gaussian(9, 2.0)] * 3), outer([np.ones(9)] * 3)])[:, None]
    assert F.choose_conv_method(x, w, padding="same", groups=2) == "separable"
    got = F.conv(x, w, padding="same", groups=2)
    assert calls
    np.testing.assert_allclose(got, R.conv(x, w, padding="same", groups=2), rtol=1e-10,
                               atol=1e-12)
    y = F.conv(x, w, padding="same", groups=2, method="separable")
    np.testing.assert_allclose(y, got, rtol=1e-12, atol=1e-14)
    gy = rng.standard_normal(y.shape)
    for method in ("separable", "auto"):
        np.testing.assert_allclose(
            F.conv_grad_input(gy, w, x.shape, padding="same", groups=2, method=method),
            R.conv_grad_input(gy, w, x.shape, padding="same", groups=2), rtol=1e-10, atol=1e-10)


def test_random_kernels_do_not_take_the_separable_path():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 1, 20, 22, 24))
    w = rng.standard_normal((1, 1, 9, 9, 9))
    assert F.choose_conv_method(x, w) != "separable"
    with pytest.raises(ArgumentError, match=r"method='separable' needs .*separable"):
        F.conv(x, w, method="separable")


BAD = [
    ("wrong_number_of_factors",
     lambda: F.separable_conv(np.ones((1, 1, 8, 8)), [np.ones(3)]), ShapeError,
     r"one kernel per spatial axis.*2 spatial axes.*1 factors"),
    ("factor_not_1d",
     lambda: F.separable_conv(np.ones((1, 1, 8, 8)), [np.ones(3), np.ones((1, 2, 3))]),
     ShapeError, r"factors\[1\] must be one-dimensional"),
    ("per_channel_rows",
     lambda: F.separable_conv(np.ones((1, 2, 8, 8)), [np.ones((3, 3)), np.ones(3)]),
     ShapeError, r"factors\[0\].*one row per channel of x \(2\)"),
    ("empty_factor", lambda: F.separable_conv(np.ones((1, 1, 8)), [np.ones(0)]), ShapeError,
     r"factors\[0\] is empty"),
    ("factors_not_a_list", lambda: F.separable_conv(np.ones((1, 1, 8)), np.ones(3)),
     ArgumentError, r"factors must be a list or tuple"),
    ("zero_d_factor", lambda: F.separable_conv(np.ones((1, 1, 8)), [1.0]), ShapeError,
     r"factors\[0\]"),
    ("x_rank", lambda: F.separable_conv(np.ones((8, 8)), [np.ones(3)]), ShapeError,
     r"x must have shape \(N, C, \*spatial\)"),
    ("kernel_too_large", lambda: F.separable_conv(np.ones((1, 1, 4)), [np.ones(6)]), ShapeError,
     r"kernel is larger"),
    ("bias_shape", lambda: F.separable_conv(np.ones((1, 2, 8)), [np.ones(3)], np.ones(3)),
     ShapeError, r"bias must have shape \(2,\)"),
    ("mixed_dtypes", lambda: F.separable_conv(np.ones((1, 1, 8), np.float32),
                                              [np.ones(3, np.float64)]), DTypeError,
     r"dtypes do not match"),
    ("grad_output_shape",
     lambda: F.separable_conv_grad_input(np.ones((1, 1, 5)), [np.ones(3)], (1, 1, 8)),
     ShapeError, r"grad_output must have the forward output's shape \(1, 1, 6\)"),
    ("detect_rank", lambda: F.separable_factors(np.ones((2, 2, 2, 2))), ShapeError,
     r"1 to 3 kernel axes"),
    ("detect_rtol", lambda: F.separable_factors(np.ones((3, 3)), rtol=-1), ArgumentError,
     r"rtol must be a finite number"),
    ("detect_complex", lambda: F.separable_factors(np.ones((3, 3), complex)), DTypeError,
     r"complex"),
    ("conv_separable_not_depthwise",
     lambda: F.conv(np.ones((1, 2, 8, 8)), np.ones((3, 2, 3, 3)), method="separable"),
     ArgumentError, r"depthwise"),
]


@pytest.mark.parametrize("name,call,error,match", BAD, ids=[b[0] for b in BAD])
def test_bad_input(name, call, error, match):
    with pytest.raises(error, match=match):
        call()
