"""Ragged batches through every pooling op and its gradient: each item as if alone."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sigconv.functional as F
from sigconv import ArgumentError, ShapeError
from sigconv.ragged import Ragged


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@st.composite
def window_cases(draw):
    nd = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    shapes = [tuple(draw(st.integers(k, k + (12 if nd == 1 else 4))) for k in kernel)
              for _ in range(draw(st.integers(1, 4)))]
    return dict(nd=nd, kernel=kernel, stride=stride, padding=padding, shapes=shapes,
                ceil_mode=draw(st.booleans()), channels=draw(st.integers(1, 3)),
                seed=draw(st.integers(0, 2**31 - 1)))


def _batch(case):
    rng = np.random.default_rng(case["seed"])
    items = [rng.standard_normal((case["channels"],) + s) for s in case["shapes"]]
    return items, Ragged.from_list(items), rng


@settings(max_examples=40, deadline=None)
@given(window_cases())
def test_window_ops_each_item_alone(case):
    items, batch, rng = _batch(case)
    k, s, p, ceil = case["kernel"], case["stride"], case["padding"], case["ceil_mode"]
    out, idx = F.max_pool(batch, k, stride=s, padding=p, ceil_mode=ceil, return_indices=True)
    avg = F.avg_pool(batch, k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=False)
    lp = F.lp_pool(batch, 2, k, stride=s, ceil_mode=ceil)
    gauss = F.gaussian_pool(batch, k, sigma=1.0, stride=s, padding=p)
    grads = {name: Ragged.from_list([rng.standard_normal(i.shape) for i in r])
             for name, r in dict(max=out, avg=avg, lp=lp, gauss=gauss).items()}
    g_max = F.max_pool_backward(grads["max"], idx, batch)
    g_avg = F.avg_pool_backward(grads["avg"], batch, k, stride=s, padding=p, ceil_mode=ceil,
                                count_include_pad=False)
    g_lp = F.lp_pool_backward(grads["lp"], batch, 2, k, stride=s, ceil_mode=ceil)
    g_gauss = F.gaussian_pool_backward(grads["gauss"], batch, k, sigma=1.0, stride=s, padding=p)
    unpooled = F.max_unpool(out, idx, k, stride=s, padding=p, output_size=batch)
    g_unpool = F.max_unpool_backward(Ragged.from_list([np.ones(u.shape) for u in unpooled]), idx)
    for i, item in enumerate(items):
        one = item[None]
        o, ix = F.max_pool(one, k, stride=s, padding=p, ceil_mode=ceil, return_indices=True)
        _close(out[i], o[0])
        np.testing.assert_array_equal(idx[i], ix[0])
        _close(avg[i], F.avg_pool(one, k, stride=s, padding=p, ceil_mode=ceil,
                                  count_include_pad=False)[0])
        _close(lp[i], F.lp_pool(one, 2, k, stride=s, ceil_mode=ceil)[0])
        _close(gauss[i], F.gaussian_pool(one, k, sigma=1.0, stride=s, padding=p)[0])
        _close(g_max[i], F.max_pool_backward(grads["max"][i][None], ix, one.shape)[0])
        _close(g_avg[i], F.avg_pool_backward(grads["avg"][i][None], one.shape, k, stride=s,
                                             padding=p, ceil_mode=ceil,
                                             count_include_pad=False)[0])
        _close(g_lp[i], F.lp_pool_backward(grads["lp"][i][None], one, 2, k, stride=s,
                                           ceil_mode=ceil)[0])
        _close(g_gauss[i], F.gaussian_pool_backward(grads["gauss"][i][None], one.shape, k,
                                                    sigma=1.0, stride=s, padding=p)[0])
        _close(unpooled[i], F.max_unpool(o, ix, k, stride=s, padding=p, output_size=one.shape)[0])
        _close(g_unpool[i], F.max_unpool_backward(np.ones((1,) + unpooled[i].shape), ix)[0])


@pytest.mark.parametrize("kind", ["avg", "max", "lp"])
def test_adaptive_and_global_pool_give_dense_results(rng, kind):
    items = [rng.standard_normal((3,) + s) for s in [(7, 9), (4, 4), (12, 5)]]
    batch = Ragged.from_list(items)
    out = F.adaptive_pool(batch, (2, 3), kind)
    assert isinstance(out, np.ndarray) and out.shape == (3, 3, 2, 3)
    pooled = F.global_pool(batch, kind)
    assert pooled.shape == (3, 3)
    g = rng.standard_normal(out.shape)
    grad = F.adaptive_pool_backward(g, batch, kind)
    grad_global = F.global_pool_backward(np.ones((3, 3)), batch, kind)
    assert isinstance(grad, Ragged)
    for i, item in enumerate(items):
        _close(out[i], F.adaptive_pool(item[None], (2, 3), kind)[0])
        _close(pooled[i], F.global_pool(item[None], kind)[0])
        _close(grad[i], F.adaptive_pool_backward(g[i][None], item[None], kind)[0])
        _close(grad_global[i], F.global_pool_backward(np.ones((1, 3)), item[None], kind)[0])


def test_maxout_each_item_alone(rng):
    items = [rng.standard_normal((6,) + s) for s in [(5,), (2,), (9,)]]
    batch = Ragged.from_list(items)
    out = F.maxout(batch, 3)
    g = Ragged.from_list([rng.standard_normal(o.shape) for o in out])
    grad = F.maxout_backward(g, batch, 3)
    for i, item in enumerate(items):
        _close(out[i], F.maxout(item[None], 3)[0])
        _close(grad[i], F.maxout_backward(g[i][None], item[None], 3)[0])


def test_ragged_bad_input(rng):
    batch = Ragged.from_list([rng.standard_normal((2, n)) for n in (6, 2)])
    with pytest.raises(ShapeError, match="x item 1"):
        F.max_pool(batch, 3)                                   # item 1 is shorter than the window
    out = F.avg_pool(batch, 2)
    with pytest.raises(ShapeError, match="forward output"):
        F.avg_pool_backward(Ragged.from_list([np.ones((2, 3)), np.ones((2, 2))]), batch, 2)
    with pytest.raises(ShapeError, match="does not match"):
        F.lp_pool_backward(np.ones((2, 2, 3)), batch, 2, 2)
    _, idx = F.max_pool(batch, 2, return_indices=True)
    with pytest.raises(ArgumentError, match="output_size for a Ragged"):
        F.max_unpool(out, idx, 2, output_size=(6,))
    with pytest.raises(ShapeError, match="grad_output must have shape"):
        F.global_pool_backward(np.ones((3, 2)), batch)


@pytest.mark.parametrize("kind", ["avg", "max", "lp"])
def test_adaptive_pool_of_a_ragged_batch_of_no_items(kind):
    # its output size once read out.dense_shape[2:] of a Ragged (None): a bare TypeError
    empty = Ragged(np.zeros(0), np.zeros((0, 1), np.int64), 2)
    out = F.adaptive_pool(empty, 3, kind)
    assert out.shape == (0, 2, 3)
    _, indices = F.adaptive_pool(empty, (3,), "max", return_indices=True)
    assert indices.shape == (0, 2, 3)
    grad = F.adaptive_pool_backward(np.zeros((0, 2, 3)), empty, kind)
    assert isinstance(grad, Ragged) and len(grad) == 0 and grad.channels == 2
