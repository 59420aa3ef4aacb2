"""Unshared (local_conv) and tiled (tiled_conv) convolution and their gradients.

Oracles: literal loops written from the chapter's formulas (section 9.5,
0-based), conv's numpy reference for the tile-of-ones case, the equivalence
of a tile as large as the output with local_conv, and finite differences in
float64.
"""
import itertools

import numpy as np
import pytest

import sigconv.functional as F
from sigconv import shapes
from sigconv.errors import ArgumentError, DTypeError, ShapeError

from . import conv_reference as ref


def _pads(padding, spatial, kernel, stride):
    return ref.padding_pairs(padding, spatial, kernel, stride)


def local_reference(x, w, bias=None, *, stride=1, padding="valid"):
    """Z[n,i,j] = sum_{l,m} V[n, l, j s + m] w[i, j, l, m] on the zero-padded V (chapter 9.5)."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    nd = x.ndim - 2
    kernel, out = w.shape[2 + nd:], w.shape[1:1 + nd]
    s = ref.as_tuple(stride, nd)
    v = np.pad(x, ((0, 0), (0, 0)) + _pads(padding, x.shape[2:], kernel, s))
    z = np.zeros((x.shape[0], w.shape[0]) + out)
    for n, i in itertools.product(range(x.shape[0]), range(w.shape[0])):
        for j in itertools.product(*(range(o) for o in out)):
            total = 0.0
            if bias is not None:
                total = bias[i] if np.ndim(bias) == 1 else bias[(i,) + j]
            for l in range(x.shape[1]):
                for m in itertools.product(*(range(k) for k in kernel)):
                    total += v[(n, l) + tuple(a * b + c for a, b, c in zip(j, s, m))] \
                        * w[(i,) + j + (l,) + m]
            z[(n, i) + j] = total
    return z


def tiled_reference(x, k, bias=None, *, stride=1, padding="valid"):
    """Z[n,i,j] = sum_{l,m} V[n, l, j s + m] K[i, l, m, j % t] (chapter: K_{i,l,m,n,j%t,k%t})."""
    x, k = np.asarray(x, np.float64), np.asarray(k, np.float64)
    nd = x.ndim - 2
    kernel, tile = k.shape[2:2 + nd], k.shape[2 + nd:]
    s = ref.as_tuple(stride, nd)
    pads = _pads(padding, x.shape[2:], kernel, s)
    out = ref.output_size(x.shape[2:], kernel, s, pads)
    v = np.pad(x, ((0, 0), (0, 0)) + pads)
    z = np.zeros((x.shape[0], k.shape[0]) + out)
    for n, i in itertools.product(range(x.shape[0]), range(k.shape[0])):
        for j in itertools.product(*(range(o) for o in out)):
            r = tuple(a % t for a, t in zip(j, tile))
            total = 0.0
            if bias is not None:
                total = bias[i] if np.ndim(bias) == 1 else bias[(i,) + r]
            for l in range(x.shape[1]):
                for m in itertools.product(*(range(kk) for kk in kernel)):
                    total += v[(n, l) + tuple(a * b + c for a, b, c in zip(j, s, m))] \
                        * k[(i, l) + m + r]
            z[(n, i) + j] = total
    return z


def _out(spatial, kernel, stride, padding):
    return ref.output_size(spatial, kernel, ref.as_tuple(stride, len(spatial)),
                           _pads(padding, spatial, kernel, ref.as_tuple(stride, len(spatial))))


def _local_case(rng, nd, stride, padding, c_in=2, c_out=3, size=None, k=None,
                dtype=np.float64):
    size = size or ((6,), (5, 6), (4, 3, 5))[nd - 1]
    k = k or ((3,), (3, 2), (2, 2, 3))[nd - 1]
    x = rng.standard_normal((2, c_in) + size).astype(dtype)
    out = _out(size, k, stride, padding)
    w = rng.standard_normal((c_out,) + out + (c_in,) + k).astype(dtype)
    return x, w, out, k


def local_to_tiled_layout(w, nd):
    """(C_out, *out, C_in, *k) -> (C_out, C_in, *k, *out): a tile as large as the output."""
    order = (0, 1 + nd) + tuple(range(2 + nd, 2 + 2 * nd)) + tuple(range(1, 1 + nd))
    return w.transpose(order)


CASES = [(1, 1, "valid"), (1, 2, "same"), (1, 3, "full"), (1, 1, 2),
         (2, 1, "same"), (2, (2, 1), ((1, 0), (2, 1))), (2, 2, "full"),
         (3, 1, "valid"), (3, (1, 2, 2), "same")]


# ---------------------------------------------------------------------------
# local_conv
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("nd,stride,padding", CASES)
def test_local_conv_matches_chapter_formula(rng, nd, stride, padding):
    x, w, out, _ = _local_case(rng, nd, stride, padding)
    for bias in (None, rng.standard_normal(3), rng.standard_normal((3,) + out)):
        np.testing.assert_allclose(F.local_conv(x, w, bias, stride=stride, padding=padding),
                                   local_reference(x, w, bias, stride=stride, padding=padding),
                                   rtol=1e-12, atol=1e-12)


def test_local_conv_with_shared_weights_equals_conv(rng):
    x = rng.standard_normal((3, 4, 7, 6))
    k = rng.standard_normal((5, 4, 3, 3))
    out = (4, 3)
    w = np.broadcast_to(k[:, None, None], (5,) + out + (4, 3, 3))  # same bank everywhere
    np.testing.assert_allclose(F.local_conv(x, w, stride=2, padding=1),
                               ref.conv(x, k, stride=2, padding=1), rtol=1e-12, atol=1e-12)


def _finite_difference(f, a, direction, eps=1e-6):
    return (f(a + eps * direction) - f(a - eps * direction)) / (2 * eps)


@pytest.mark.parametrize("nd,stride,padding", CASES[::2])
def test_local_conv_gradients_by_finite_differences(rng, nd, stride, padding):
    x, w, out, _ = _local_case(rng, nd, stride, padding)
    gy = rng.standard_normal((2, 3) + out)
    gx = F.local_conv_grad_input(gy, w, x.shape, stride=stride, padding=padding)
    gw = F.local_conv_grad_weight(x, gy, w.shape, stride=stride, padding=padding)
    assert gx.shape == x.shape and gw.shape == w.shape
    dx, dw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    fx = lambda v: np.sum(F.local_conv(v, w, stride=stride, padding=padding) * gy)  # noqa: E731
    fw = lambda v: np.sum(F.local_conv(x, v, stride=stride, padding=padding) * gy)  # noqa: E731
    np.testing.assert_allclose(np.sum(gx * dx), _finite_difference(fx, x, dx), rtol=1e-6)
    np.testing.assert_allclose(np.sum(gw * dw), _finite_difference(fw, w, dw), rtol=1e-6)


def test_local_conv_gradients_elementwise_1d(rng):
    """Every entry of both gradients against a one-hot finite difference (tiny case)."""
    x, w, out, _ = _local_case(rng, 1, 2, "same", c_in=2, c_out=2, size=(5,), k=(3,))
    gy = rng.standard_normal((2, 2) + out)
    gx = F.local_conv_grad_input(gy, w, x.shape, stride=2, padding="same")
    gw = F.local_conv_grad_weight(x, gy, w.shape, stride=2, padding="same")
    for grad, arr, which in ((gx, x, 0), (gw, w, 1)):
        for idx in np.ndindex(arr.shape):
            e = np.zeros(arr.shape)
            e[idx] = 1
            args = (lambda v: (v, w)) if which == 0 else (lambda v: (x, v))
            f = lambda v: np.sum(F.local_conv(*args(v), stride=2, padding="same") * gy)  # noqa
            assert grad[idx] == pytest.approx(_finite_difference(f, arr, e), abs=1e-7)


# ---------------------------------------------------------------------------
# tiled_conv
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("nd,stride,padding", CASES)
@pytest.mark.parametrize("tile_kind", ["two", "mixed"])
def test_tiled_conv_matches_chapter_formula(rng, nd, stride, padding, tile_kind):
    x, _, out, k = _local_case(rng, nd, stride, padding)
    tile = (2,) * nd if tile_kind == "two" else tuple(1 + a % 3 for a in range(nd))
    kk = rng.standard_normal((3, 2) + k + tile)
    for bias in (None, rng.standard_normal(3), rng.standard_normal((3,) + tile)):
        np.testing.assert_allclose(F.tiled_conv(x, kk, bias, stride=stride, padding=padding),
                                   tiled_reference(x, kk, bias, stride=stride, padding=padding),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nd,stride,padding", CASES)
def test_tile_of_ones_equals_conv(rng, nd, stride, padding):
    x, _, _, k = _local_case(rng, nd, stride, padding)
    kernel = rng.standard_normal((3, 2) + k)
    bias = rng.standard_normal(3)
    got = F.tiled_conv(x, kernel.reshape(kernel.shape + (1,) * nd), bias, stride=stride,
                       padding=padding)
    np.testing.assert_allclose(got, ref.conv(x, kernel, bias, stride=stride, padding=padding),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, F.conv(x, kernel, bias, stride=stride, padding=padding),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nd,stride,padding", CASES)
def test_tile_as_large_as_the_output_equals_local_conv(rng, nd, stride, padding):
    x, w, out, _ = _local_case(rng, nd, stride, padding)
    tiled = local_to_tiled_layout(w, nd)                 # (C_out, C_in, *k, *out)
    bias = rng.standard_normal((3,) + out)
    np.testing.assert_allclose(F.tiled_conv(x, tiled, bias, stride=stride, padding=padding),
                               F.local_conv(x, w, bias, stride=stride, padding=padding),
                               rtol=1e-12, atol=1e-12)
    gy = rng.standard_normal((2, 3) + out)
    np.testing.assert_allclose(
        F.tiled_conv_grad_input(gy, tiled, x.shape, stride=stride, padding=padding),
        F.local_conv_grad_input(gy, w, x.shape, stride=stride, padding=padding),
        rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        F.tiled_conv_grad_weight(x, gy, tiled.shape, stride=stride, padding=padding),
        local_to_tiled_layout(F.local_conv_grad_weight(x, gy, w.shape, stride=stride,
                                                       padding=padding), nd),
        rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nd,stride,padding", CASES[1::2])
def test_tiled_conv_gradients_by_finite_differences(rng, nd, stride, padding):
    x, _, out, k = _local_case(rng, nd, stride, padding)
    tile = tuple(2 + a % 2 for a in range(nd))
    kk = rng.standard_normal((3, 2) + k + tile)
    gy = rng.standard_normal((2, 3) + out)
    gx = F.tiled_conv_grad_input(gy, kk, x.shape, stride=stride, padding=padding)
    gw = F.tiled_conv_grad_weight(x, gy, kk.shape, stride=stride, padding=padding)
    dx, dw = rng.standard_normal(x.shape), rng.standard_normal(kk.shape)
    fx = lambda v: np.sum(F.tiled_conv(v, kk, stride=stride, padding=padding) * gy)  # noqa
    fw = lambda v: np.sum(F.tiled_conv(x, v, stride=stride, padding=padding) * gy)  # noqa
    np.testing.assert_allclose(np.sum(gx * dx), _finite_difference(fx, x, dx), rtol=1e-6)
    np.testing.assert_allclose(np.sum(gw * dw), _finite_difference(fw, kk, dw), rtol=1e-6)


def test_tiled_conv_unused_kernels_and_padding_only_phases(rng):
    x = rng.standard_normal((1, 2, 3))
    kk = rng.standard_normal((2, 2, 2, 6))               # tile 6 > 5 outputs
    bias = rng.standard_normal((2, 6))
    # padding 3 before: outputs 0 and 1 read only zeros (bias alone); kernel 5 is unused
    y = F.tiled_conv(x, kk, bias, padding=((3, 0),), stride=1)
    np.testing.assert_allclose(y, tiled_reference(x, kk, bias, padding=((3, 0),)), atol=1e-12)
    gw = F.tiled_conv_grad_weight(x, np.ones_like(y), kk.shape, padding=((3, 0),))
    assert y.shape == (1, 2, 5)
    np.testing.assert_array_equal(y[0, :, :2], bias[:, :2])
    np.testing.assert_array_equal(gw[..., [0, 1, 5]], 0)
    assert all(np.any(gw[..., r]) for r in (2, 3, 4))


# ---------------------------------------------------------------------------
# cross-cutting properties
# ---------------------------------------------------------------------------

def test_float32_close_to_float64(rng):
    x, w, out, k = _local_case(rng, 2, 1, "same", c_in=3, c_out=4)
    kk = rng.standard_normal((4, 3) + k + (2, 3))
    gy = rng.standard_normal((2, 4) + out)
    for fn, weight, grads in ((F.local_conv, w, (F.local_conv_grad_input,
                                                 F.local_conv_grad_weight)),
                              (F.tiled_conv, kk, (F.tiled_conv_grad_input,
                                                  F.tiled_conv_grad_weight))):
        y64 = fn(x, weight, padding="same")
        y32 = fn(x.astype(np.float32), weight.astype(np.float32), padding="same")
        assert y32.dtype == np.float32
        np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5)
        gi = grads[0](gy.astype(np.float32), weight.astype(np.float32), x.shape, padding="same")
        gw = grads[1](x.astype(np.float32), gy.astype(np.float32), weight.shape, padding="same")
        assert gi.dtype == gw.dtype == np.float32
        np.testing.assert_allclose(gi, grads[0](gy, weight, x.shape, padding="same"), atol=1e-4)
        np.testing.assert_allclose(gw, grads[1](x, gy, weight.shape, padding="same"), atol=1e-4)


def test_non_contiguous_equals_contiguous(rng):
    x = rng.standard_normal((2, 6, 12))[:, ::2, ::2]     # (2, 3, 6) strided
    w = rng.standard_normal((4, 4, 3, 6))[..., ::2]        # (4, out=4, C_in=3, k=3) strided
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    np.testing.assert_array_equal(F.local_conv(x, w), F.local_conv(np.ascontiguousarray(x),
                                                                   np.ascontiguousarray(w)))
    kk = rng.standard_normal((4, 3, 3, 4))[..., ::2]       # (4, 3, k=3, tile=2) strided
    np.testing.assert_array_equal(F.tiled_conv(x, kk), F.tiled_conv(np.ascontiguousarray(x),
                                                                    np.ascontiguousarray(kk)))


def test_threads_equal_serial(rng):
    from threadpoolctl import threadpool_limits
    # large enough (millions of multiply-adds) for the kernels to wake a second thread
    x, w, out, _ = _local_case(rng, 2, 1, "same", c_in=8, c_out=16, size=(40, 44), k=(3, 3))
    gy = rng.standard_normal((2, 16) + out)
    results = []
    for limit in (1, None):
        with threadpool_limits(limits=limit, user_api="openmp"):
            results.append((F.local_conv(x, w, padding="same"),
                            F.local_conv_grad_input(gy, w, x.shape, padding="same"),
                            F.local_conv_grad_weight(x, gy, w.shape, padding="same")))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_empty_batch(rng):
    w = rng.standard_normal((3, 4, 2, 3))
    assert F.local_conv(np.zeros((0, 2, 6)), w).shape == (0, 3, 4)
    assert F.local_conv_grad_weight(np.zeros((0, 2, 6)), np.zeros((0, 3, 4)), w.shape).shape \
        == w.shape
    assert F.tiled_conv(np.zeros((0, 2, 6)), rng.standard_normal((3, 2, 3, 2))).shape == (0, 3, 4)


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

def test_local_weight_that_does_not_match_the_output_size(rng):
    x = rng.standard_normal((2, 3, 8, 8))
    with pytest.raises(ShapeError, match=r"output size is \(6, 6\).*expected weight shape "
                                         r"\(4, 6, 6, 3, 3, 3\).*got \(4, 8, 8, 3, 3, 3\)"):
        F.local_conv(x, rng.standard_normal((4, 8, 8, 3, 3, 3)))
    with pytest.raises(ShapeError, match=r"expected weight shape \(4, 4, 4, 3, 3, 3\)"):
        F.local_conv(x, rng.standard_normal((4, 6, 6, 3, 3, 3)), stride=2, padding="same")


@pytest.mark.parametrize("call,error,match", [
    (lambda x, r: F.local_conv(x, r.standard_normal((4, 6, 3, 3))), ShapeError,
     r"weight must have shape \(C_out, \*out_spatial, C_in, \*kernel\), 6 axes for 2 spatial"),
    (lambda x, r: F.local_conv(x, r.standard_normal((4, 6, 6, 2, 3, 3))), ShapeError,
     r"channel mismatch: x has 3 channels"),
    (lambda x, r: F.local_conv(x, r.standard_normal((4, 6, 6, 3, 3, 3)), np.zeros(3)),
     ShapeError, r"bias must have shape \(4,\) .* or \(4, 6, 6\)"),
    (lambda x, r: F.local_conv(x, r.standard_normal((4, 1, 1, 3, 9, 9))), ShapeError,
     r"kernel \(9, 9\) is larger than the padded input"),
    (lambda x, r: F.local_conv(x, r.standard_normal((4, 6, 6, 3, 3, 3)), padding="middle"),
     ArgumentError, r"padding must be one of 'valid', 'same', 'full'"),
    (lambda x, r: F.local_conv(x, r.standard_normal((4, 6, 6, 3, 3, 3)), stride=(1, 0)),
     ArgumentError, r"stride must be >= 1"),
    (lambda x, r: F.local_conv(x, r.standard_normal((4, 6, 6, 3, 3, 3)).astype(np.float32)),
     DTypeError, r"dtypes do not match"),
    (lambda x, r: F.local_conv(x[0, 0], r.standard_normal((4, 6, 6, 3, 3, 3))), ShapeError,
     r"x must have shape \(N, C_in, \*spatial\)"),
    (lambda x, r: F.local_conv_grad_input(np.zeros((2, 4, 5, 5)),
                                          r.standard_normal((4, 6, 6, 3, 3, 3)), x.shape),
     ShapeError, r"grad_output must have the forward output's shape \(2, 4, 6, 6\)"),
    (lambda x, r: F.local_conv_grad_weight(x, np.zeros((2, 4, 6, 6)), (4, 6, 6, 3, 3)),
     ShapeError, r"weight_shape must have shape"),
    (lambda x, r: F.tiled_conv(x, r.standard_normal((4, 3, 3, 3))), ShapeError,
     r"weight must have shape \(C_out, C_in, \*kernel, \*tile\), 6 axes for 2 spatial axes "
     r"\(a kernel size and a tile size per axis\)"),
    (lambda x, r: F.tiled_conv(x, r.standard_normal((4, 3, 3, 3, 2, 0))), ShapeError,
     r"empty tile axis.*every tile size must be >= 1"),
    (lambda x, r: F.tiled_conv(x, r.standard_normal((4, 2, 3, 3, 2, 2))), ShapeError,
     r"channel mismatch: x has 3 channels"),
    (lambda x, r: F.tiled_conv(x, r.standard_normal((4, 3, 3, 3, 2, 2)), np.zeros((4, 2))),
     ShapeError, r"bias must have shape \(4,\) .* or \(4, 2, 2\)"),
    (lambda x, r: F.tiled_conv_grad_input(np.zeros((2, 4, 6, 5)),
                                          r.standard_normal((4, 3, 3, 3, 2, 2)), x.shape),
     ShapeError, r"grad_output must have the forward output's shape \(2, 4, 6, 6\)"),
    (lambda x, r: F.tiled_conv_grad_weight(x, np.zeros((2, 4, 6, 6)), (4, 3, 3, 3, 2, -2)),
     ArgumentError, r"weight_shape must be a tuple of non-negative ints"),
])
def test_bad_input(rng, call, error, match):
    x = rng.standard_normal((2, 3, 8, 8))
    with pytest.raises(error, match=match):
        call(x, rng)


def test_output_size_formula_is_conv_s(rng):
    """The position axes of the local weight follow sigconv.shapes.conv_output_size."""
    assert shapes.conv_output_size((8, 8), (3, 3), (2, 2), "same") == (4, 4)
    x = rng.standard_normal((1, 1, 8, 8))
    assert F.local_conv(x, rng.standard_normal((2, 4, 4, 1, 3, 3)), stride=2,
                        padding="same").shape == (1, 2, 4, 4)
