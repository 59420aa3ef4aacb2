"""Ragged batches through conv and its gradients: each item exactly as if alone."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sigconv.functional as F
from sigconv import ShapeError
from sigconv.ragged import Ragged


@st.composite
def ragged_cases(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2]))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = draw(st.sampled_from(["same", "full", 1, "valid"]))
    pad = {"valid": 0, 1: 1}.get(padding)
    low = ([max((k - 1) * d + 1 - 2 * pad, 1) for k, d in zip(kernel, dilation)]
           if pad is not None else [1] * nd)
    n = draw(st.integers(1, 4))
    shapes = [tuple(draw(st.integers(lo, lo + (9 if nd == 1 else 4))) for lo in low)
              for _ in range(n)]
    return dict(nd=nd, groups=groups, c_in=c_in, c_out=c_out, kernel=kernel, shapes=shapes,
                options=dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                             flip=draw(st.booleans())),
                method=draw(st.sampled_from(["auto", "gemm", "direct"])),
                seed=draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=60, deadline=None)
@given(ragged_cases())
def test_each_item_equals_the_item_alone(case):
    rng = np.random.default_rng(case["seed"])
    items = [rng.standard_normal((case["c_in"],) + s) for s in case["shapes"]]
    weight = rng.standard_normal((case["c_out"], case["c_in"] // case["groups"]) + case["kernel"])
    bias = rng.standard_normal(case["c_out"])
    options, method = case["options"], case["method"]
    batch = Ragged.from_list(items)

    out = F.conv(batch, weight, bias, method=method, **options)
    assert isinstance(out, Ragged) and len(out) == len(items)
    grads = [rng.standard_normal(item.shape) for item in out]
    grad_out = Ragged.from_list(grads)
    grad_in = F.conv_grad_input(grad_out, weight, batch, method=method, **options)
    grad_w = F.conv_grad_weight(batch, grad_out, weight.shape, method=method, **options)

    expected_grad_w = np.zeros_like(weight)
    for item, got, got_grad_in, g in zip(items, out, grad_in, grads):
        alone = F.conv(item[None], weight, bias, method=method, **options)[0]
        np.testing.assert_allclose(got, alone, rtol=1e-12, atol=1e-12)
        alone_grad_in = F.conv_grad_input(g[None], weight, (1,) + item.shape, method=method,
                                          **options)[0]
        np.testing.assert_allclose(got_grad_in, alone_grad_in, rtol=1e-12, atol=1e-12)
        expected_grad_w += F.conv_grad_weight(item[None], g[None], weight.shape, method=method,
                                              **options)
    np.testing.assert_allclose(grad_w, expected_grad_w, rtol=1e-10, atol=1e-10)


def test_float32_ragged_keeps_dtype(rng):
    batch = Ragged.from_list([rng.standard_normal((2, n)).astype(np.float32) for n in (5, 17)])
    weight = rng.standard_normal((3, 2, 4)).astype(np.float32)
    out = F.conv(batch, weight, padding="same")
    assert out.dtype == np.float32
    assert [tuple(s) for s in out.shapes] == [(5,), (17,)]
    np.testing.assert_allclose(out[1], F.conv(batch[1][None], weight, padding="same")[0],
                               rtol=1e-6, atol=1e-6)


def test_ragged_bad_input(rng):
    batch = Ragged.from_list([rng.standard_normal((2, n)) for n in (5, 2)])
    with pytest.raises(ShapeError, match="item 1"):
        F.conv(batch, rng.standard_normal((3, 2, 4)))             # item 1 shorter than the kernel
    with pytest.raises(ShapeError, match="channel mismatch"):
        F.conv(batch, rng.standard_normal((3, 4, 1)))
    out = F.conv(batch, rng.standard_normal((3, 2, 2)))
    wrong = Ragged.from_list([np.ones((3, 4)), np.ones((3, 2))])
    with pytest.raises(ShapeError, match="item shapes"):
        F.conv_grad_input(wrong, rng.standard_normal((3, 2, 2)), batch)
    with pytest.raises(ShapeError, match="item shapes"):
        F.conv_grad_weight(batch, wrong, (3, 2, 2))
    with pytest.raises(ShapeError, match="forward input"):
        F.conv_grad_input(out, rng.standard_normal((3, 2, 2)), (2, 2, 5))
