"""conv_transpose and its gradients on Ragged batches: each item as if alone."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sigconv.functional as F
from sigconv import ArgumentError, Ragged, ShapeError


@st.composite
def cases(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2]))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, (k - 1) * d // 2)) for k, d in zip(kernel, dilation))
    output_padding = tuple(draw(st.integers(0, s - 1)) for s in stride)
    shapes = [tuple(draw(st.integers(1, 6 if nd < 3 else 3)) for _ in range(nd))
              for _ in range(draw(st.integers(1, 3)))]
    return dict(nd=nd, kernel=kernel, shapes=shapes, c_in=groups * draw(st.integers(1, 2)),
                c_out_g=draw(st.integers(1, 2)), seed=draw(st.integers(0, 2**31 - 1)),
                options=dict(stride=stride, padding=padding, output_padding=output_padding,
                             dilation=dilation, groups=groups))


@settings(max_examples=50, deadline=None)
@given(cases())
def test_each_item_equals_the_item_alone(case):
    rng = np.random.default_rng(case["seed"])
    options, groups = case["options"], case["options"]["groups"]
    items = [rng.standard_normal((case["c_in"],) + s) for s in case["shapes"]]
    weight = rng.standard_normal((case["c_in"], case["c_out_g"]) + case["kernel"])
    bias = rng.standard_normal(case["c_out_g"] * groups)
    batch = Ragged.from_list(items)
    out = F.conv_transpose(batch, weight, bias, **options)
    grads = Ragged.from_list([rng.standard_normal(o.shape) for o in out])
    grad_in = F.conv_transpose_grad_input(grads, weight, batch, **options)
    grad_w = F.conv_transpose_grad_weight(batch, grads, weight.shape, **options)
    expected_w = np.zeros_like(weight)
    for item, got, g, got_in in zip(items, out, grads, grad_in):
        alone = F.conv_transpose(item[None], weight, bias, **options)[0]
        np.testing.assert_allclose(got, alone, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got_in, F.conv_transpose_grad_input(
            g[None], weight, (1,) + item.shape, **options)[0], rtol=1e-12, atol=1e-12)
        expected_w += F.conv_transpose_grad_weight(item[None], g[None], weight.shape, **options)
    np.testing.assert_allclose(grad_w, expected_w, rtol=1e-10, atol=1e-10)


def test_ragged_bad_input(rng):
    batch = Ragged.from_list([rng.standard_normal((2, 3)), rng.standard_normal((2, 1))])
    weight = rng.standard_normal((2, 3, 3))
    with pytest.raises(ArgumentError, match="output_size is not supported"):
        F.conv_transpose(batch, weight, output_size=(5,))
    with pytest.raises(ShapeError, match="x item 1 .* empty output"):
        F.conv_transpose(batch, weight, padding=2)
    with pytest.raises(ArgumentError, match="at least the stride"):
        F.conv_transpose(batch, weight, output_padding=1, dilation=2)
    out = F.conv_transpose(batch, weight)
    with pytest.raises(ShapeError, match="forward input"):
        F.conv_transpose_grad_input(out, weight, (2, 2, 3))
