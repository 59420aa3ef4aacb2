"""Pooling ops: slow references written from the definitions, PyTorch parity,
finite-difference gradients, NaN, layout and dtype properties, ragged item
tables, hypothesis properties and a catalogue of bad input."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sigconv.functional as F
from sigconv import shapes
from sigconv import _kernels as kernels
from sigconv.errors import ArgumentError, DTypeError, ShapeError
from sigconv.ragged import Ragged

# ---------------------------------------------------------------------------
# slow references, from the definitions
# ---------------------------------------------------------------------------


def ref_out_size(n, k, s, p, d, ceil_mode):
    span = (k - 1) * d + 1
    if ceil_mode:
        m = -(-(n + 2 * p - span) // s) + 1
        if (m - 1) * s >= n + p:  # the last window may not start in the right padding
            m -= 1
    else:
        m = (n + 2 * p - span) // s + 1
    return m


def ref_windows(spatial, k, s, p, d, ceil_mode):
    """Yield (output position, list of tap positions in window scan order)."""
    sizes = [ref_out_size(*a, ceil_mode) for a in zip(spatial, k, s, p, d)]
    for o in itertools.product(*map(range, sizes)):
        taps = [tuple(oi * si - pi + ji * di for oi, si, pi, ji, di in zip(o, s, p, j, d))
                for j in itertools.product(*map(range, k))]
        yield o, taps


def _inside(pos, spatial):
    return all(0 <= q < n for q, n in zip(pos, spatial))


def _tup(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


def ref_max_pool(x, k, s=None, p=0, d=1, ceil_mode=False):
    nd = x.ndim - 2
    k = _tup(k, nd)
    s, p, d = _tup(k if s is None else s, nd), _tup(p, nd), _tup(d, nd)
    sp = x.shape[2:]
    sizes = [ref_out_size(*a, ceil_mode) for a in zip(sp, k, s, p, d)]
    out = np.empty(x.shape[:2] + tuple(sizes))
    idx = np.empty(out.shape, np.int64)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o, taps in ref_windows(sp, k, s, p, d, ceil_mode):
            valid = [t for t in taps if _inside(t, sp)]
            best, where = -np.inf, (np.ravel_multi_index(valid[0], sp) if valid else -1)
            for t in valid:
                v = x[(n, c) + t]
                if v > best or np.isnan(v):  # first maximum wins; NaN wins (the last NaN)
                    best, where = v, np.ravel_multi_index(t, sp)
            out[(n, c) + o], idx[(n, c) + o] = best, where
    return out, idx


def ref_window_sum(x, k, s, p, ceil_mode, weight_fn, divisor_fn, finish=lambda v: v):
    nd = x.ndim - 2
    k = _tup(k, nd)
    s, p, d = _tup(k if s is None else s, nd), _tup(p, nd), (1,) * nd
    sp = x.shape[2:]
    sizes = [ref_out_size(*a, ceil_mode) for a in zip(sp, k, s, p, d)]
    out = np.empty(x.shape[:2] + tuple(sizes))
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o, taps in ref_windows(sp, k, s, p, d, ceil_mode):
            total = sum(weight_fn(j) * x[(n, c) + t]
                        for j, t in zip(itertools.product(*map(range, k)), taps) if _inside(t, sp))
            out[(n, c) + o] = finish(total / divisor_fn(taps, sp, p))
    return out


def ref_avg_pool(x, k, s=None, p=0, ceil_mode=False, count_include_pad=True):
    def divisor(taps, sp, pad):
        if count_include_pad:  # padding counts, but not what lies beyond it (ceil_mode)
            return sum(all(-pp <= q < n + pp for q, n, pp in zip(t, sp, pad)) for t in taps)
        return sum(_inside(t, sp) for t in taps)
    return ref_window_sum(x, k, s, p, ceil_mode, lambda j: 1.0, divisor)


def ref_lp_pool(x, norm, k, s=None, ceil_mode=False):
    return ref_window_sum(np.abs(x) ** norm, k, s, 0, ceil_mode, lambda j: 1.0,
                          lambda taps, sp, pad: 1.0, lambda v: v ** (1 / norm))


def ref_gaussian_pool(x, k, sigma, s=None, p=0):
    nd = x.ndim - 2
    k = _tup(k, nd)
    centre = [(kk - 1) / 2 for kk in k]

    def weight(j):
        return math.exp(-sum((a - b) ** 2 for a, b in zip(j, centre)) / (2 * sigma ** 2))
    total = sum(weight(j) for j in itertools.product(*map(range, k)))
    return ref_window_sum(x, k, s, p, False, lambda j: weight(j) / total,
                          lambda taps, sp, pad: 1.0)


def ref_adaptive(x, size, kind="avg", norm=2):
    sp = x.shape[2:]
    out = np.empty(x.shape[:2] + tuple(size))
    for o in itertools.product(*map(range, size)):
        sl = tuple(slice(math.floor(i * n / m), math.ceil((i + 1) * n / m))
                   for i, n, m in zip(o, sp, size))
        win = x[(Ellipsis,) + sl].reshape(x.shape[:2] + (-1,))
        if kind == "avg":
            v = win.mean(-1)
        elif kind == "max":
            v = win.max(-1)
        else:
            v = (np.abs(win) ** norm).sum(-1) ** (1 / norm)
        out[(Ellipsis,) + o] = v
    return out


def numeric_grad(f, x, v, eps=1e-6):
    """Central differences of sum(f(x) * v) with respect to every element of x."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (np.sum(f(xp) * v) - np.sum(f(xm) * v)) / (2 * eps)
    return g


def distinct(rng, shape):
    """Values at least 0.01 apart (finite differences must not change an argmax)."""
    return rng.permutation(math.prod(shape)).reshape(shape) * 0.01 - 1.0


SHAPES = {1: (2, 3, 11), 2: (2, 2, 7, 8), 3: (1, 2, 5, 6, 5)}


# ---------------------------------------------------------------------------
# forward against the slow references
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("opts", [
    dict(k=2), dict(k=3, s=2, p=1), dict(k=3, s=2, p=1, ceil_mode=True),
    dict(k=2, s=1, d=2), dict(k=3, s=3, p=1, d=1, ceil_mode=True), dict(k=1, s=2),
])
def test_max_pool_matches_reference(rng, nd, opts):
    x = rng.standard_normal(SHAPES[nd])
    k, s, p, d, cm = opts["k"], opts.get("s"), opts.get("p", 0), opts.get("d", 1), opts.get("ceil_mode", False)
    out, idx = F.max_pool(x, k, stride=s, padding=p, dilation=d, ceil_mode=cm, return_indices=True)
    ref, ridx = ref_max_pool(x, k, s, p, d, cm)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(idx, ridx)
    # values-only path (separable kernel) equals the indexed one
    np.testing.assert_array_equal(F.max_pool(x, k, stride=s, padding=p, dilation=d, ceil_mode=cm), out)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("opts", [
    dict(k=2), dict(k=3, s=1, p=1), dict(k=3, s=2, p=1, ceil_mode=True),
    dict(k=3, s=2, p=1, ceil_mode=True, cip=False), dict(k=2, s=3, ceil_mode=True),
])
def test_avg_pool_matches_reference(rng, nd, opts):
    x = rng.standard_normal(SHAPES[nd])
    kw = dict(stride=opts.get("s"), padding=opts.get("p", 0), ceil_mode=opts.get("ceil_mode", False),
              count_include_pad=opts.get("cip", True))
    ref = ref_avg_pool(x, opts["k"], kw["stride"], kw["padding"], kw["ceil_mode"], kw["count_include_pad"])
    np.testing.assert_allclose(F.avg_pool(x, opts["k"], **kw), ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("norm", [1, 2, 3, 0.5])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_lp_pool_matches_reference(rng, nd, norm, ceil_mode):
    x = rng.standard_normal(SHAPES[nd])
    np.testing.assert_allclose(F.lp_pool(x, norm, 3, stride=2, ceil_mode=ceil_mode),
                               ref_lp_pool(x, norm, 3, 2, ceil_mode), rtol=1e-10)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_gaussian_pool_matches_reference(rng, nd):
    x = rng.standard_normal(SHAPES[nd])
    np.testing.assert_allclose(F.gaussian_pool(x, 3, sigma=0.8, stride=2, padding=1),
                               ref_gaussian_pool(x, 3, 0.8, 2, 1), rtol=1e-10, atol=1e-14)


def test_gaussian_weights_sum_to_one_and_fall_with_distance():
    w = F.gaussian_pool_weights((5, 5), sigma=1.2)
    assert w.shape == (5, 5) and np.isclose(w.sum(), 1.0)
    r = np.hypot(*np.meshgrid(np.arange(5) - 2, np.arange(5) - 2, indexing="ij"))
    order = np.argsort(r, axis=None, kind="stable")
    assert np.all(np.diff(w.ravel()[order]) <= 1e-15)  # larger distance, smaller weight
    assert w[2, 2] == w.max()
    # a constant signal stays constant (weights sum to one)
    x = np.full((1, 1, 9, 9), 3.0)
    np.testing.assert_allclose(F.gaussian_pool(x, 3, sigma=1.0, stride=1), 3.0)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", ["avg", "max", "lp"])
def test_adaptive_pool_matches_reference(rng, nd, kind):
    x = rng.standard_normal(SHAPES[nd])
    for size in [(3,) * nd, tuple(n + 2 for n in x.shape[2:]), (1,) * nd]:
        np.testing.assert_allclose(F.adaptive_pool(x, size, kind, p=3),
                                   ref_adaptive(x, size, kind, 3), rtol=1e-12)


@pytest.mark.parametrize("kind", ["avg", "max", "lp"])
def test_global_pool(rng, kind):
    x = rng.standard_normal((3, 4, 5, 6))
    expected = {"avg": x.mean((2, 3)), "max": x.max((2, 3)),
                "lp": np.sqrt((x ** 2).sum((2, 3)))}[kind]
    out = F.global_pool(x, kind)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_adaptive_output_size_none_keeps_axis(rng):
    x = rng.standard_normal((1, 2, 6, 7))
    assert F.adaptive_pool(x, (3, None)).shape == (1, 2, 3, 7)


@pytest.mark.parametrize("spatial", [(), (5,), (3, 4), (2, 3, 2)])
def test_maxout(rng, spatial):
    x = rng.standard_normal((2, 6) + spatial)
    out = F.maxout(x, 3)
    np.testing.assert_array_equal(out, x.reshape((2, 2, 3) + spatial).max(axis=2))


def test_max_unpool_inverts_max_pool(rng):
    x = np.abs(rng.standard_normal((2, 3, 8, 9))) + 0.1  # positive: zeros never win
    out, idx = F.max_pool(x, 2, return_indices=True)
    up = F.max_unpool(out, idx, 2, output_size=x.shape)
    assert up.shape == x.shape
    mask = up != 0
    np.testing.assert_array_equal(up[mask], x[mask])  # the maxima are back in place
    assert mask.sum() == out.size
    np.testing.assert_array_equal(F.max_pool(up[..., :8], 2), out)
    out, idx = F.max_pool(x[..., :8], 2, return_indices=True)
    assert F.max_unpool(out, idx, 2).shape == (2, 3, 8, 8)  # default size


def test_shape_formulas():
    assert shapes.pool_output_size((10,), (3,), 2, 1) == (5,)
    assert shapes.pool_output_size((10,), (3,), 2, 1, ceil_mode=True) == (6,)
    assert shapes.pool_output_size((5,), (2,), 2, 1, ceil_mode=True) == (3,)
    assert shapes.adaptive_pool_windows(5, 3) == [(0, 2), (1, 4), (3, 5)]
    assert shapes.adaptive_pool_windows(2, 4) == [(0, 1), (0, 1), (1, 2), (1, 2)]
    assert shapes.unpool_output_size((4, 5), 2, 2) == (8, 10)
    for n, k, s, p, d, cm in itertools.product(range(1, 9), range(1, 4), range(1, 4), range(2),
                                               range(1, 3), [False, True]):
        if p > k // 2 or (k - 1) * d + 1 > n + 2 * p:
            continue
        assert shapes.pool_output_size((n,), (k,), s, p, d, ceil_mode=cm) == (
            ref_out_size(n, k, s, p, d, cm),)


# ---------------------------------------------------------------------------
# ties and NaN
# ---------------------------------------------------------------------------

def test_ties_go_to_the_first_maximum_in_scan_order():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = 5.0  # both in window (0, 0); (0, 1) comes first
    out, idx = F.max_pool(x, 2, return_indices=True)
    assert out[0, 0, 0, 0] == 5.0 and idx[0, 0, 0, 0] == 1
    assert idx[0, 0, 1, 1] == 10  # all zeros: the window's first sample
    g = F.max_pool_backward(np.ones_like(out), idx, x.shape)
    assert g[0, 0, 0, 1] == 1 and g[0, 0, 1, 0] == 0
    xm = np.zeros((1, 4, 3))
    np.testing.assert_array_equal(F.maxout_backward(np.ones((1, 2, 3)), xm, 2)[0, :, 0], [1, 0, 1, 0])


def test_all_minus_inf_window_points_at_its_first_sample():
    x = np.full((1, 1, 6), -np.inf)
    out, idx = F.max_pool(x, 3, stride=3, padding=1, return_indices=True)
    np.testing.assert_array_equal(out, -np.inf)
    np.testing.assert_array_equal(idx[0, 0], [0, 2])
    # dilation can leave a window with no input sample: -inf and index -1, which
    # the backward and max_unpool skip
    x = np.array([[[1.0, 2.0]]])
    out, idx = F.max_pool(x, 2, padding=1, dilation=3, return_indices=True)
    assert out[0, 0, 0] == -np.inf and idx[0, 0, 0] == -1
    assert F.max_pool(x, 2, padding=1, dilation=3)[0, 0, 0] == -np.inf
    np.testing.assert_array_equal(F.max_pool_backward(np.ones((1, 1, 1)), idx, x.shape), 0)
    np.testing.assert_array_equal(F.max_unpool(out, idx, 2, output_size=(2,)), 0)


def test_nan_propagates_through_max_pooling_and_backward_runs():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    x[0, 0, 0, 0] = np.nan
    x[0, 0, 3, 2] = np.nan
    for dtype in (np.float32, np.float64):
        out, idx = F.max_pool(x.astype(dtype), 2, return_indices=True)
        assert np.isnan(out[0, 0, 0, 0]) and np.isnan(out[0, 0, 1, 1])
        assert not np.isnan(out[0, 0, 0, 1]) and not np.isnan(out[0, 0, 1, 0])
        assert idx[0, 0, 0, 0] == 0 and idx[0, 0, 1, 1] == 14
        assert np.isnan(F.max_pool(x.astype(dtype), 2)[0, 0, 0, 0])
        g = F.max_pool_backward(np.ones(out.shape, dtype), idx, x.shape)
        assert g[0, 0, 0, 0] == 1 and g[0, 0, 3, 2] == 1 and np.isfinite(g).all()
    # NaN also wins against +inf, in every max-type op
    y = np.array([[[np.inf, np.nan, 1.0, 2.0]]])
    assert np.isnan(F.max_pool(y, 4)).all()
    assert np.isnan(F.adaptive_pool(y, 1, "max")).all()
    assert np.isnan(F.global_pool(y, "max")).all()
    assert np.isnan(F.maxout(y.reshape(1, 4, 1), 4)).all()
    assert F.maxout_backward(np.ones((1, 1, 1)), y.reshape(1, 4, 1), 4)[0, 1, 0] == 1


def test_nan_indices_match_pytorch(torch):
    x = np.array([[[1.0, np.nan, 3.0, np.nan, 0.0, 5.0]]])
    out, idx = F.max_pool(x, 3, stride=1, return_indices=True)
    tout, tidx = torch.nn.functional.max_pool1d(torch.from_numpy(x), 3, 1, return_indices=True)
    np.testing.assert_array_equal(out, tout.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())


# ---------------------------------------------------------------------------
# gradients: finite differences in float64
# ---------------------------------------------------------------------------

GRAD_SHAPES = {1: (2, 2, 9), 2: (1, 2, 5, 6), 3: (1, 1, 4, 5, 4)}


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_gradient(rng, nd):
    x = distinct(rng, GRAD_SHAPES[nd])
    opts = dict(stride=2, padding=1, dilation=1, ceil_mode=True)
    out, idx = F.max_pool(x, 3, return_indices=True, **opts)
    v = rng.standard_normal(out.shape)
    g = F.max_pool_backward(v, idx, x.shape)
    np.testing.assert_allclose(g, numeric_grad(lambda a: F.max_pool(a, 3, **opts), x, v), atol=1e-7)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("cip", [True, False])
def test_avg_pool_gradient(rng, nd, cip):
    x = rng.standard_normal(GRAD_SHAPES[nd])
    opts = dict(stride=2, padding=1, ceil_mode=True, count_include_pad=cip)
    v = rng.standard_normal(F.avg_pool(x, 3, **opts).shape)
    g = F.avg_pool_backward(v, x.shape, 3, **opts)
    np.testing.assert_allclose(g, numeric_grad(lambda a: F.avg_pool(a, 3, **opts), x, v), atol=1e-7)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("norm", [1, 2, 3, 1.5])
def test_lp_pool_gradient(rng, nd, norm):
    x = rng.standard_normal(GRAD_SHAPES[nd])
    v = rng.standard_normal(F.lp_pool(x, norm, 2, stride=1).shape)
    g = F.lp_pool_backward(v, x, norm, 2, stride=1)
    np.testing.assert_allclose(g, numeric_grad(lambda a: F.lp_pool(a, norm, 2, stride=1), x, v),
                               rtol=1e-5, atol=1e-7)


def test_lp_pool_gradient_is_zero_on_an_all_zero_window():
    x = np.zeros((1, 1, 4))
    g = F.lp_pool_backward(np.ones((1, 1, 2)), x, 2, 2)
    np.testing.assert_array_equal(g, 0)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_gaussian_pool_gradient(rng, nd):
    x = rng.standard_normal(GRAD_SHAPES[nd])
    opts = dict(sigma=(0.7,) * nd, stride=2, padding=1)
    v = rng.standard_normal(F.gaussian_pool(x, 3, **opts).shape)
    g = F.gaussian_pool_backward(v, x.shape, 3, **opts)
    np.testing.assert_allclose(g, numeric_grad(lambda a: F.gaussian_pool(a, 3, **opts), x, v), atol=1e-7)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", ["avg", "max", "lp"])
def test_adaptive_and_global_gradients(rng, nd, kind):
    x = distinct(rng, GRAD_SHAPES[nd])
    size = (3,) * nd
    v = rng.standard_normal(x.shape[:2] + size)
    g = F.adaptive_pool_backward(v, x, kind, p=3)
    np.testing.assert_allclose(g, numeric_grad(lambda a: F.adaptive_pool(a, size, kind, p=3), x, v),
                               rtol=1e-6, atol=1e-7)
    w = rng.standard_normal(x.shape[:2])
    g = F.global_pool_backward(w, x, kind)
    np.testing.assert_allclose(g, numeric_grad(lambda a: F.global_pool(a, kind), x, w),
                               rtol=1e-6, atol=1e-7)


def test_adaptive_max_backward_with_given_indices(rng):
    x = distinct(rng, (2, 2, 7, 5))
    out, idx = F.adaptive_pool(x, (3, 2), "max", return_indices=True)
    v = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(F.adaptive_pool_backward(v, x, "max", indices=idx),
                                  F.adaptive_pool_backward(v, x, "max"))


def test_maxout_and_unpool_gradients(rng):
    x = distinct(rng, (2, 6, 3, 2))
    v = rng.standard_normal((2, 2, 3, 2))
    np.testing.assert_allclose(F.maxout_backward(v, x, 3),
                               numeric_grad(lambda a: F.maxout(a, 3), x, v), atol=1e-7)
    y = distinct(rng, (2, 2, 6, 6))
    out, idx = F.max_pool(y, 2, return_indices=True)
    w = rng.standard_normal(y.shape)
    np.testing.assert_allclose(F.max_unpool_backward(w, idx),
                               numeric_grad(lambda a: F.max_unpool(a, idx, 2), out, w), atol=1e-7)


# ---------------------------------------------------------------------------
# PyTorch parity, forward and gradient
# ---------------------------------------------------------------------------

def _torch_grad(torch, fn, x, v):
    t = torch.tensor(x, requires_grad=True)
    out = fn(t)
    out.backward(torch.from_numpy(v))
    return out.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("opts", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                  dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                  dict(kernel_size=2, stride=1, dilation=2)])
def test_max_pool_matches_pytorch(torch, rng, nd, opts):
    x = rng.standard_normal(SHAPES[nd])
    x[..., 1] = x[..., 2]  # some ties
    out, idx = F.max_pool(x, return_indices=True, **opts)
    fn = getattr(torch.nn.functional, f"max_pool{nd}d")
    tout, tidx = fn(torch.from_numpy(x), return_indices=True, **opts)
    np.testing.assert_array_equal(out, tout.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    v = rng.standard_normal(out.shape)
    _, tg = _torch_grad(torch, lambda t: fn(t, **opts), x, v)
    np.testing.assert_allclose(F.max_pool_backward(v, idx, x.shape), tg, rtol=1e-12)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("opts", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                                  dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                  dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                       count_include_pad=False)])
def test_avg_pool_matches_pytorch(torch, rng, nd, opts):
    x = rng.standard_normal(SHAPES[nd])
    fn = getattr(torch.nn.functional, f"avg_pool{nd}d")
    out = F.avg_pool(x, **opts)
    v = rng.standard_normal(out.shape)
    tout, tg = _torch_grad(torch, lambda t: fn(t, **opts), x, v)
    np.testing.assert_allclose(out, tout, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(F.avg_pool_backward(v, x.shape, **opts), tg, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("norm, positive", [(2, False), (3, True), (1.5, True), (1, True)])
def test_lp_pool_matches_pytorch(torch, rng, nd, norm, positive):
    x = rng.standard_normal(SHAPES[nd])
    if positive:  # PyTorch raises x, not |x|, to the power p
        x = np.abs(x) + 0.1
    fn = getattr(torch.nn.functional, f"lp_pool{nd}d")
    out = F.lp_pool(x, norm, 2, stride=1)
    v = rng.standard_normal(out.shape)
    tout, tg = _torch_grad(torch, lambda t: fn(t, norm, 2, stride=1), x, v)
    np.testing.assert_allclose(out, tout, rtol=1e-10)
    np.testing.assert_allclose(F.lp_pool_backward(v, x, norm, 2, stride=1), tg, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_pool_matches_pytorch(torch, rng, nd, kind):
    x = distinct(rng, SHAPES[nd])
    fn = getattr(torch.nn.functional, f"adaptive_{kind}_pool{nd}d")
    for size in [(3,) * nd, (1,) * nd, tuple(n + 1 for n in x.shape[2:])]:
        out = F.adaptive_pool(x, size, kind)
        v = rng.standard_normal(out.shape)
        tout, tg = _torch_grad(torch, lambda t: fn(t, size), x, v)
        np.testing.assert_allclose(out, tout, rtol=1e-12)
        np.testing.assert_allclose(F.adaptive_pool_backward(v, x, kind), tg, rtol=1e-12, atol=1e-15)
    if kind == "max":
        _, idx = F.adaptive_pool(x, (3,) * nd, "max", return_indices=True)
        _, tidx = fn(torch.from_numpy(x), (3,) * nd, return_indices=True)
        np.testing.assert_array_equal(idx, tidx.numpy())


def test_max_unpool_matches_pytorch(torch, rng):
    x = rng.standard_normal((2, 3, 7, 9))
    out, idx = F.max_pool(x, 3, stride=2, padding=1, return_indices=True)
    up = F.max_unpool(out, idx, 3, stride=2, padding=1, output_size=(7, 9))
    tup = torch.nn.functional.max_unpool2d(torch.from_numpy(out), torch.from_numpy(idx), 3, 2, 1,
                                           output_size=(7, 9))
    np.testing.assert_array_equal(up, tup.numpy())


# ---------------------------------------------------------------------------
# layout, dtype, threads and ragged item tables
# ---------------------------------------------------------------------------

ALL_OPS = {
    "max": lambda a: F.max_pool(a, 3, stride=2, padding=1),
    "avg": lambda a: F.avg_pool(a, 3, stride=2, padding=1, count_include_pad=False),
    "lp": lambda a: F.lp_pool(a, 2, 2),
    "lp3": lambda a: F.lp_pool(a, 3.0, 3, stride=2, ceil_mode=True),
    "gauss": lambda a: F.gaussian_pool(a, 3, sigma=1.0, stride=1, padding=1),
    "adaptive": lambda a: F.adaptive_pool(a, (3, 2), "avg"),
    "global": lambda a: F.global_pool(a, "lp"),
    "maxout": lambda a: F.maxout(a, 2),
}


@pytest.mark.parametrize("name", sorted(ALL_OPS))
def test_non_contiguous_equals_contiguous(rng, name):
    base = rng.standard_normal((3, 8, 9, 14))
    views = [base[::2, ::2, :, ::2], base.transpose(0, 1, 3, 2)[:, :4], base[..., 1:-1]]
    for view in views:
        assert not view.flags.c_contiguous
        np.testing.assert_array_equal(ALL_OPS[name](view), ALL_OPS[name](np.ascontiguousarray(view)))


@pytest.mark.parametrize("name", sorted(ALL_OPS))
def test_float32_close_to_float64(rng, name):
    x = rng.standard_normal((2, 4, 9, 10))
    out32 = ALL_OPS[name](x.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, ALL_OPS[name](x), rtol=2e-5, atol=2e-6)


def test_integer_and_float16_input_follow_the_dtype_rule():
    x = np.arange(2 * 2 * 8).reshape(2, 2, 8)
    assert F.max_pool(x, 2).dtype == np.float64
    assert F.avg_pool(x.astype(np.float16), 2).dtype == np.float32


def test_threads_equal_serial(rng):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x = rng.standard_normal((4, 8, 12, 13)).astype(np.float32)
    parallel = [op(x) for op in ALL_OPS.values()]
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        serial = [op(x) for op in ALL_OPS.values()]
    for a, b in zip(parallel, serial):
        np.testing.assert_array_equal(a, b)


def test_empty_batch_and_channels():
    assert F.max_pool(np.zeros((0, 3, 8)), 2).shape == (0, 3, 4)
    assert F.avg_pool(np.zeros((2, 0, 8, 8)), 2).shape == (2, 0, 4, 4)


def _ragged(items):
    """Pack items of shape (C, *spatial_i) into one flat buffer and its per-item table."""
    flat = np.concatenate([it.ravel() for it in items])
    table = np.zeros((len(items), 4), np.int64)
    offset = 0
    for row, it in zip(table, items):
        row[0] = offset
        row[1:] = (1,) * (4 - it.ndim) + it.shape[1:]
        offset += it.size
    return flat, table


def test_kernels_take_a_ragged_item_table(rng):
    """Items of different sizes run through one kernel call; each equals the item alone."""
    items = [rng.standard_normal((3, n, m)) for n, m in [(7, 9), (4, 5), (10, 6)]]
    flat, itab = _ragged(items)
    k, s, p = (3, 3), (2, 2), (1, 1)
    alone = [F.max_pool(it[None], k, stride=s, padding=p)[0] for it in items]
    oflat, otab = _ragged(alone)
    geom = np.array((1,) + k + (1,) + s + (0,) + p + (1, 1, 1), np.int64)
    out = np.empty_like(oflat)
    kernels.max_pool_forward(flat, itab, out, np.empty(0, np.int64), otab, 3, geom, False)
    np.testing.assert_array_equal(out, oflat)
    avg_alone = _ragged([F.avg_pool(it[None], k, stride=s, padding=p)[0] for it in items])[0]
    kernels.window_sum_forward(flat, itab, out, otab, 3, geom, np.empty(0), 1, 0, 1.0)
    np.testing.assert_allclose(out, avg_alone, rtol=1e-14)
    ad_alone, adtab = _ragged([F.adaptive_pool(it[None], (2, 3), "max")[0] for it in items])
    ad = np.empty_like(ad_alone)
    kernels.adaptive_forward(flat, itab, ad, np.empty(0, np.int64), adtab, 3, 1, 0, 1.0, False)
    np.testing.assert_array_equal(ad, ad_alone)


# ---------------------------------------------------------------------------
# hypothesis: random dims, kernels, strides, padding, ceil_mode
# ---------------------------------------------------------------------------

@st.composite
def pool_cases(draw):
    nd = draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    spatial = tuple(draw(st.integers(max(1, (kk - 1) * dd + 1 - 2 * pp), 7))
                    for kk, pp, dd in zip(k, p, d))
    ceil_mode = draw(st.booleans())
    seed = draw(st.integers(0, 2 ** 16))
    return nd, k, s, p, d, spatial, ceil_mode, seed


@settings(max_examples=40, deadline=None)
@given(pool_cases())
def test_property_max_and_avg_match_references(case):
    nd, k, s, p, d, spatial, ceil_mode, seed = case
    x = np.random.default_rng(seed).standard_normal((1, 2) + spatial)
    x[x > 1.5] = np.nan  # a few NaNs
    opts = dict(stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
    out, idx = F.max_pool(x, k, return_indices=True, **opts)
    ref, ridx = ref_max_pool(x, k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(F.max_pool(x, k, **opts), out)
    x = np.nan_to_num(x)
    out = F.max_pool(x, k, stride=s, padding=p, ceil_mode=ceil_mode)
    avg = F.avg_pool(x, k, stride=s, padding=p, ceil_mode=ceil_mode)
    np.testing.assert_allclose(avg, ref_avg_pool(x, k, s, p, ceil_mode), rtol=1e-12, atol=1e-15)
    assert np.all(out >= avg - 1e-12) or any(pp > 0 for pp in p)


@settings(max_examples=30, deadline=None)
@given(pool_cases())
def test_property_backward_is_the_adjoint(case):
    """<avg_pool(x), v> == <x, avg_pool_backward(v)>, and likewise for max at fixed indices."""
    nd, k, s, p, d, spatial, ceil_mode, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 2) + spatial)
    opts = dict(stride=s, padding=p, ceil_mode=ceil_mode)
    out = F.avg_pool(x, k, **opts)
    v = rng.standard_normal(out.shape)
    assert np.isclose(np.sum(out * v), np.sum(x * F.avg_pool_backward(v, x.shape, k, **opts)))
    out, idx = F.max_pool(x, k, return_indices=True, dilation=d, **opts)
    v = rng.standard_normal(out.shape)
    g = F.max_pool_backward(v, idx, x.shape)
    has_sample = idx >= 0  # dilation can leave a window with no input sample (-inf, index -1)
    assert np.isclose(np.sum((out * v)[has_sample]), np.sum(x * g))


# ---------------------------------------------------------------------------
# bad input: each case asserts the exception type and its message
# ---------------------------------------------------------------------------

X = np.zeros((2, 3, 8, 8))

BAD = [
    (lambda: F.max_pool(X, 9), ShapeError, r"kernel_size \(9, 9\) is larger than the padded input"),
    (lambda: F.avg_pool(np.zeros((1, 1, 4)), 7, padding=1), ShapeError, r"larger than the padded input.*4 samples"),
    (lambda: F.max_pool(X, 3, dilation=4), ShapeError, r"spans 9 samples \(kernel_size 3, dilation 4\)"),
    (lambda: F.max_pool(X, 3, padding=2), ArgumentError, r"padding \(2, 2\) is more than half of kernel_size"),
    (lambda: F.avg_pool(X, 4, padding=(0, 3)), ArgumentError, r"more than half of kernel_size \(4, 4\) on spatial axis 1"),
    (lambda: F.max_pool(X, 0), ArgumentError, r"kernel_size must be >= 1"),
    (lambda: F.avg_pool(X, (2, 0)), ArgumentError, r"kernel_size must be >= 1"),
    (lambda: F.max_pool(X, 2, stride=0), ArgumentError, r"stride must be >= 1"),
    (lambda: F.max_pool(X, 2, padding=-1), ArgumentError, r"padding must be >= 0"),
    (lambda: F.max_pool(X, (2, 2, 2)), ArgumentError, r"kernel_size must have one value per spatial axis \(2\)"),
    (lambda: F.max_pool(X, 2.5), ArgumentError, r"kernel_size must be an int"),
    (lambda: F.max_pool(X, 2, ceil_mode="yes"), ArgumentError, r"ceil_mode must be True or False"),
    (lambda: F.max_pool(X, ("2", "2")), ArgumentError, r"kernel_size must hold ints"),
    (lambda: F.global_pool(X, "median"), ArgumentError, r"kind must be one of 'avg', 'max', 'lp'; got 'median'"),
    (lambda: F.adaptive_pool(X, 2, kind="sum"), ArgumentError, r"kind must be one of"),
    (lambda: F.adaptive_pool(X, 2, "avg", return_indices=True), ArgumentError, r"return_indices=True needs kind='max'"),
    (lambda: F.adaptive_pool(X, 0), ArgumentError, r"output_size must be >= 1"),
    (lambda: F.adaptive_pool(X, (2, 2, 2)), ArgumentError, r"output_size must have one value per spatial axis"),
    (lambda: F.max_pool(np.zeros((3, 8)), 2), ShapeError, r"x must have shape \(N, C, \*spatial\) with 1 to 3 spatial axes, got shape \(3, 8\)"),
    (lambda: F.avg_pool(np.zeros((1, 1, 2, 2, 2, 2)), 2), ShapeError, r"got shape \(1, 1, 2, 2, 2, 2\) \(6-d\)"),
    (lambda: F.global_pool(np.zeros(5)), ShapeError, r"x must have shape"),
    (lambda: F.max_pool(np.zeros((1, 1, 0, 4)), 1), ShapeError, r"zero-length spatial axis"),
    (lambda: F.max_pool(X.astype(np.complex128), 2), DTypeError, r"x has dtype complex128"),
    (lambda: F.avg_pool(np.array([[["a", "b"]]]), 1), DTypeError, r"x has dtype <U1"),
    (lambda: F.lp_pool(X, 0, 2), ArgumentError, r"p must be a finite number > 0"),
    (lambda: F.lp_pool(X, float("inf"), 2), ArgumentError, r"p must be a finite number > 0"),
    (lambda: F.global_pool(X, "lp", p=-1), ArgumentError, r"p must be a finite number > 0"),
    (lambda: F.gaussian_pool(X, 3, sigma=0), ArgumentError, r"sigma must be a finite number > 0"),
    (lambda: F.gaussian_pool(X, 3, sigma=(1.0,)), ArgumentError, r"sigma must have one value per spatial axis \(2\)"),
    (lambda: F.maxout(X, 2), ShapeError, r"x has 3 channels, which is not a multiple of pieces=2"),
    (lambda: F.maxout(X, 0), ArgumentError, r"pieces must be a positive int"),
    (lambda: F.max_unpool(np.zeros((1, 1, 2, 2)), np.full((1, 1, 2, 2), 16), 2), ArgumentError,
     r"indices must be flat indices into each \(n, c\) plane of 16 samples"),
    (lambda: F.max_unpool(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)), 2), DTypeError, r"indices must be an integer array"),
    (lambda: F.max_unpool(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), int), 2, output_size=(6, 4)),
     ArgumentError, r"output_size \(6, 4\) is invalid on spatial axis 0: it must lie strictly between 2 and 6"),
    (lambda: F.max_pool_backward(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 3), int), X.shape), ShapeError,
     r"indices has shape \(2, 3, 4, 3\), expected \(2, 3, 4, 4\)"),
    (lambda: F.max_pool_backward(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 4), int), (2, 4, 8, 8)), ShapeError,
     r"does not match input_shape"),
    (lambda: F.avg_pool_backward(np.zeros((2, 3, 3, 4)), X.shape, 2), ShapeError,
     r"grad_output has shape \(2, 3, 3, 4\) but the forward output has shape \(2, 3, 4, 4\)"),
    (lambda: F.lp_pool_backward(np.zeros((2, 3, 4, 4), np.float32), X, 2, 2), DTypeError,
     r"dtypes do not match: grad_output is float32 but x is float64"),
    (lambda: F.global_pool_backward(np.zeros((2, 4)), X), ShapeError, r"grad_output must have shape \(N, C\) = \(2, 3\)"),
    (lambda: F.avg_pool_backward(np.zeros((2, 3, 4, 4)), (2, 3, 0, 8), 2), ShapeError, r"input_shape must be \(N, C, \*spatial\)"),
]


@pytest.mark.parametrize("call, error, message", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


# -- huge windows: work and scratch bounded by the input and output, not the window --

def _window_reference(x, k, s, p, ceil_mode, kind, count_include_pad=True):
    """1-D pooling from the definition: each window's taps intersected with the input."""
    n = x.shape[-1]
    m = (n + 2 * p - k + ((s - 1) if ceil_mode else 0)) // s + 1
    if ceil_mode and (m - 1) * s >= n + p:
        m -= 1
    out = np.empty(x.shape[:-1] + (m,))
    for o in range(m):
        start = o * s - p
        lo, hi = max(start, 0), min(start + k, n)
        window = x[..., lo:hi]
        if kind == "max":
            out[..., o] = window.max(axis=-1)
        else:
            count = (min(start + k, n + p) - max(start, -p)) if count_include_pad else hi - lo
            out[..., o] = window.sum(axis=-1) / count
    return out


@pytest.mark.parametrize("k, s, p, ceil_mode", [
    (10**12, None, 5 * 10**11, False),
    (2**40, None, 2**39, False),
    (10**12, 4 * 10**11, 5 * 10**11, True),     # two windows far apart: a jump over the gap
    (10**12, 1, 5 * 10**11, False),             # stride 1: n + 1 windows
])
def test_huge_windows_are_fast_and_exact(k, s, p, ceil_mode):
    x = np.random.default_rng(3).standard_normal((2, 3, 12))
    stride = k if s is None else s
    got, idx = F.max_pool(x, k, stride=s, padding=p, ceil_mode=ceil_mode, return_indices=True)
    np.testing.assert_array_equal(got, _window_reference(x, k, stride, p, ceil_mode, "max"))
    np.testing.assert_array_equal(F.max_pool(x, k, stride=s, padding=p, ceil_mode=ceil_mode), got)
    np.testing.assert_array_equal(np.take_along_axis(x, idx, axis=-1), got)
    for include in (True, False):
        avg = F.avg_pool(x, k, stride=s, padding=p, ceil_mode=ceil_mode, count_include_pad=include)
        np.testing.assert_allclose(
            avg, _window_reference(x, k, stride, p, ceil_mode, "avg", include), rtol=1e-12)
        g = np.ones_like(avg)
        grad = F.avg_pool_backward(g, x.shape, k, stride=s, padding=p, ceil_mode=ceil_mode,
                                   count_include_pad=include)
        assert grad.shape == x.shape and np.isfinite(grad).all()


def test_huge_window_2d_and_ragged():
    x = np.random.default_rng(4).standard_normal((1, 2, 5, 7))
    out = F.max_pool(x, 10**12, padding=5 * 10**11)
    np.testing.assert_array_equal(out[..., 0, 0], x.max(axis=(2, 3)))
    batch = Ragged.from_list([x[0], x[0, :, :3, :2]])
    for item, alone in zip(F.avg_pool(batch, 2**40, padding=2**39), (x, x[:, :, :3, :2])):
        np.testing.assert_allclose(item[..., 0, 0], alone[0].sum(axis=(1, 2)) / 2**80)


def test_huge_gaussian_window_is_refused_before_allocating():
    with pytest.raises(ShapeError, match="kernel_size"):
        F.gaussian_pool(np.ones((1, 1, 12)), 10**12, sigma=1.0, padding=5 * 10**11)


@pytest.mark.parametrize("sigma", [1e-300, 1e-30])
@pytest.mark.filterwarnings("error")  # and no numpy overflow warning reaches the user
def test_tiny_sigma_puts_the_weight_on_the_central_taps(sigma):
    w = F.gaussian_pool_weights(2, sigma)
    np.testing.assert_array_equal(w, [0.5, 0.5])
    x = np.arange(12.0).reshape(1, 1, 12)
    np.testing.assert_allclose(F.gaussian_pool(x, 2, sigma=sigma), F.avg_pool(x, 2))
    np.testing.assert_array_equal(F.gaussian_pool_weights(3, sigma), [0, 1, 0])


@pytest.mark.parametrize("bad", [np.uint64(2**64 - 1)])
def test_unsigned_indices_beyond_int64_are_refused(bad):
    indices = np.array([[[0, 1, bad]]], dtype=np.uint64)
    with pytest.raises(ArgumentError, match="indices"):
        F.max_unpool(np.ones((1, 1, 3)), indices, 2)
