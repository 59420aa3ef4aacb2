"""conv_transpose and its gradients.

Oracles: a scatter loop written from the definition (every input sample adds
its kernel into the output), the numpy reference of conv's input gradient
(``conv_reference.conv_grad_input``, which conv_transpose is by definition),
PyTorch's ``conv_transpose1d/2d/3d`` and autograd when installed, and finite
differences in float64.
"""
import itertools
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import sigconv.functional as F
from sigconv.errors import ArgumentError, DTypeError, ShapeError

from . import conv_reference as ref


def scatter_reference(x, w, bias=None, *, stride=1, padding=0, output_padding=0, dilation=1,
                      groups=1):
    """y[n, o, i s + m d - p] += x[n, c, i] w[c, o, m], written as literal loops (tiny sizes)."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    nd = x.ndim - 2
    s, p, op, d = (ref.as_tuple(v, nd) for v in (stride, padding, output_padding, dilation))
    k = w.shape[2:]
    out = tuple((i - 1) * s_ - 2 * p_ + (k_ - 1) * d_ + 1 + o_
                for i, s_, p_, k_, d_, o_ in zip(x.shape[2:], s, p, k, d, op))
    c_in, c_out_g = w.shape[:2]
    c_in_g = c_in // groups
    y = np.zeros((x.shape[0], c_out_g * groups) + out)
    for n, c in itertools.product(range(x.shape[0]), range(c_in)):
        g = c // c_in_g
        for i in itertools.product(*(range(v) for v in x.shape[2:])):
            for o in range(c_out_g):
                for m in itertools.product(*(range(v) for v in k)):
                    where = tuple(i_ * s_ + m_ * d_ - p_
                                  for i_, s_, m_, d_, p_ in zip(i, s, m, d, p))
                    if all(0 <= q < size for q, size in zip(where, out)):
                        y[(n, g * c_out_g + o) + where] += x[(n, c) + i] * w[(c, o) + m]
    if bias is not None:
        y += np.asarray(bias).reshape((1, -1) + (1,) * nd)
    return y


def _case(rng, nd, c_in=4, c_out_g=3, size=None, k=3, dtype=np.float64):
    size = size or (5 if nd < 3 else 3)
    x = rng.standard_normal((2, c_in) + (size,) * nd).astype(dtype)
    w = rng.standard_normal((c_in, c_out_g) + (k,) * nd).astype(dtype)
    return x, w


# ---------------------------------------------------------------------------
# forward against references written without sigconv
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["phase", "dilated"])
@pytest.mark.parametrize("nd,stride,padding,output_padding,dilation,groups", [
    (1, 1, 0, 0, 1, 1), (1, 3, 1, 2, 1, 1), (1, 2, 2, 1, 2, 2), (1, 1, 1, 1, 2, 1),
    (2, 2, 1, 1, 1, 1), (2, (2, 3), (0, 1), (1, 2), 1, 2), (2, 2, 0, 1, 2, 1),
    (3, 2, 1, 0, 1, 1), (3, (1, 2, 3), 0, (0, 1, 0), (2, 1, 1), 2),
])
def test_forward_matches_scatter_loops(rng, method, nd, stride, padding, output_padding,
                                       dilation, groups):
    x, w = _case(rng, nd)
    b = rng.standard_normal(3 * groups)
    got = F.conv_transpose(x, w, b, stride=stride, padding=padding,
                           output_padding=output_padding, dilation=dilation, groups=groups,
                           method=method)
    want = scatter_reference(x, w, b, stride=stride, padding=padding,
                             output_padding=output_padding, dilation=dilation, groups=groups)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_stride_beyond_the_kernel_allocates_only_the_output(rng):
    """Phases without a tap are not stacked: the extra memory is about the output alone.

    (With a stride of 10**5 and 3 taps the phase path stacked 10**5 sub-kernels
    and an intermediate as large as the output; at 10**8 that killed the
    process.)
    """
    import tracemalloc
    x = rng.standard_normal((1, 1, 12))
    w = rng.standard_normal((1, 1, 3))
    tracemalloc.start()
    got = F.conv_transpose(x, w, stride=10**5)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert got.shape == (1, 1, 11 * 10**5 + 3)
    assert peak < 1.5 * got.nbytes, (peak, got.nbytes)
    want = np.zeros(got.shape[-1])
    for i in range(12):
        want[i * 10**5:i * 10**5 + 3] += x[0, 0, i] * w[0, 0]
    np.testing.assert_allclose(got[0, 0], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_is_the_input_gradient_of_conv(rng, nd):
    x, w = _case(rng, nd, k=2)
    out = F.conv_transpose_output_size(x.shape[2:], w.shape[2:], stride=2, padding=1)
    got = F.conv_transpose(x, w, stride=2, padding=1)
    want = ref.conv_grad_input(x, w, (2, 3) + out, stride=2, padding=1)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_phase_and_dilated_paths_agree_float32(rng):
    x, w = _case(rng, 3, c_in=5, c_out_g=2, size=6, k=4, dtype=np.float32)
    a = F.conv_transpose(x, w, stride=2, padding=1, method="phase")
    b = F.conv_transpose(x, w, stride=2, padding=1, method="dilated")
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_padding_pairs_crop_each_end(rng):
    x, w = _case(rng, 1, k=4)
    full = F.conv_transpose(x, w, stride=2)
    np.testing.assert_allclose(F.conv_transpose(x, w, stride=2, padding=((1, 2),)),
                               full[..., 1:-2], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.conv_transpose(x, w, stride=2, padding="valid"), full)


# ---------------------------------------------------------------------------
# PyTorch parity: forward and both gradients through autograd
# ---------------------------------------------------------------------------

@st.composite
def transpose_cases(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2]))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    size = tuple(draw(st.integers(1, 5 if nd < 3 else 3)) for _ in range(nd))
    method = draw(st.sampled_from(["auto", "phase", "dilated"]))
    return nd, groups, stride, dilation, kernel, padding, output_padding, size, method


@settings(max_examples=int(os.environ.get("SIGCONV_HYPOTHESIS_EXAMPLES", 60)), deadline=None)
@given(case=transpose_cases(), seed=st.integers(0, 2**16))
def test_pytorch_parity_forward_and_gradients(torch, case, seed):
    nd, groups, stride, dilation, kernel, padding, output_padding, size, method = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2 * groups) + size)
    w = rng.standard_normal((2 * groups, 3) + kernel)
    b = rng.standard_normal(3 * groups)
    op_fn = getattr(torch.nn.functional, f"conv_transpose{nd}d")
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    options = dict(stride=stride, padding=padding, output_padding=output_padding,
                   dilation=dilation, groups=groups)
    try:
        ty = op_fn(tx, tw, torch.tensor(b), **options)
    except RuntimeError:  # PyTorch: output would be empty
        with pytest.raises(ShapeError, match="output would be empty"):
            F.conv_transpose(x, w, b, **options)
        return
    y = F.conv_transpose(x, w, b, method=method, **options)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(F.conv_transpose_grad_input(gy, w, x.shape, **options),
                               tx.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(F.conv_transpose_grad_weight(x, gy, w.shape, **options),
                               tw.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("extra", [0, 1, 2])
def test_output_size_picks_output_padding_like_pytorch(torch, rng, extra):
    x, w = _case(rng, 2, size=4, k=3)
    module = torch.nn.ConvTranspose2d(4, 3, 3, stride=3, padding=1, bias=False).double()
    with torch.no_grad():
        module.weight.copy_(torch.tensor(w))
    size = (3 * 3 - 2 + 3 + extra, 10 + extra)
    want = module(torch.tensor(x), output_size=list(size)).detach().numpy()
    got = F.conv_transpose(x, w, stride=3, padding=1, output_size=size)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        F.conv_transpose(x, w, stride=3, padding=1, output_size=(2, 3) + size), got)


def test_pytorch_parity_issue_benchmark_layer_float32(torch, rng):
    """The 3-D layer of the issue's benchmark (c), scaled down, in float32."""
    x = rng.standard_normal((2, 16, 6, 6, 6), dtype=np.float32)
    w = rng.standard_normal((16, 8, 4, 4, 4), dtype=np.float32)
    want = torch.nn.functional.conv_transpose3d(torch.tensor(x), torch.tensor(w), stride=2,
                                                padding=1).numpy()
    got = F.conv_transpose(x, w, stride=2, padding=1)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------
# gradients by finite differences, float32 vs float64, layout
# ---------------------------------------------------------------------------

def _finite_difference(f, a, direction, eps=1e-6):
    return (f(a + eps * direction) - f(a - eps * direction)) / (2 * eps)


@pytest.mark.parametrize("nd,stride,padding,output_padding,dilation,groups", [
    (1, 2, 1, 1, 1, 1), (2, (2, 1), 0, (1, 0), (1, 2), 2), (3, 2, 1, 1, 1, 1),
])
def test_gradients_by_finite_differences(rng, nd, stride, padding, output_padding, dilation,
                                         groups):
    x, w = _case(rng, nd)
    options = dict(stride=stride, padding=padding, output_padding=output_padding,
                   dilation=dilation, groups=groups)
    y = F.conv_transpose(x, w, **options)
    gy = rng.standard_normal(y.shape)
    loss_x = lambda v: np.sum(F.conv_transpose(v, w, **options) * gy)  # noqa: E731
    loss_w = lambda v: np.sum(F.conv_transpose(x, v, **options) * gy)  # noqa: E731
    dx, dw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    gx = F.conv_transpose_grad_input(gy, w, x.shape, **options)
    gw = F.conv_transpose_grad_weight(x, gy, w.shape, **options)
    assert gx.shape == x.shape and gw.shape == w.shape
    np.testing.assert_allclose(np.sum(gx * dx), _finite_difference(loss_x, x, dx), rtol=1e-6)
    np.testing.assert_allclose(np.sum(gw * dw), _finite_difference(loss_w, w, dw), rtol=1e-6)


def test_float32_close_to_float64(rng):
    x, w = _case(rng, 2, size=7, k=4)
    y64 = F.conv_transpose(x, w, stride=2, padding=1)
    y32 = F.conv_transpose(x.astype(np.float32), w.astype(np.float32), stride=2, padding=1)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-4)
    gy = rng.standard_normal(y64.shape)
    g64 = F.conv_transpose_grad_weight(x, gy, w.shape, stride=2, padding=1)
    g32 = F.conv_transpose_grad_weight(x.astype(np.float32), gy.astype(np.float32), w.shape,
                                       stride=2, padding=1)
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-3)


def test_non_contiguous_equals_contiguous(rng):
    x = rng.standard_normal((2, 5, 9, 4))[:, ::2, ::2].swapaxes(2, 3)  # (2, 3, 4, 5), strided
    w = rng.standard_normal((3, 6, 3, 2))[:, ::2].transpose(0, 1, 3, 2)  # (3, 3, 2, 3)
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    got = F.conv_transpose(x, w, stride=2, padding=1, output_padding=1)
    want = F.conv_transpose(np.ascontiguousarray(x), np.ascontiguousarray(w), stride=2,
                            padding=1, output_padding=1)
    np.testing.assert_array_equal(got, want)
    gy = rng.standard_normal(got.shape + (2,))[..., 0]
    np.testing.assert_allclose(F.conv_transpose_grad_input(gy, w, x.shape, stride=2, padding=1,
                                                           output_padding=1),
                               F.conv_transpose_grad_input(np.ascontiguousarray(gy), w, x.shape,
                                                           stride=2, padding=1,
                                                           output_padding=1))


def test_output_size_helper_and_empty_batch(rng):
    assert F.conv_transpose_output_size((24, 24, 24), (4, 4, 4), stride=2, padding=1) == (48,) * 3
    assert F.conv_transpose_output_size((5,), (3,), stride=2, output_padding=1, dilation=2) == (14,)
    x = np.zeros((0, 2, 5))
    w = rng.standard_normal((2, 3, 3))
    assert F.conv_transpose(x, w, stride=2).shape == (0, 3, 11)


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,error,match", [
    (dict(output_padding=2, stride=2), ArgumentError, r"output_padding must be smaller than "
                                                      r"either stride or dilation"),
    (dict(output_padding=1), ArgumentError, r"output_padding .* stride \(1,\)"),
    (dict(output_padding=-1, stride=2), ArgumentError, r"output_padding must be >= 0"),
    (dict(stride=0), ArgumentError, r"stride must be >= 1"),
    (dict(padding="same"), ArgumentError, r"conv_transpose padding must be 'valid', an int"),
    (dict(padding=-1), ArgumentError, r"padding must be non-negative"),
    (dict(padding=9), ShapeError, r"output would be empty"),
    (dict(groups=3), ShapeError, r"groups=3 must divide C_in"),
    (dict(groups=0), ArgumentError, r"groups must be a positive int"),
    (dict(stride=2, output_size=(20,)), ShapeError, r"output_size \(20,\) is out of range.*"
                                                    r"between \(11,\) and \(12,\)"),
    (dict(stride=2, output_size=(10,)), ShapeError, r"out of range"),
    (dict(stride=2, output_size=(11, 12)), ArgumentError, r"output_size must have 1 spatial"),
    (dict(stride=2, output_size=(2, 5, 11)), ShapeError, r"does not match the batch and "
                                                         r"channels"),
    (dict(stride=2, output_size=(12,), output_padding=1), ArgumentError,
     r"give output_size or output_padding, not both"),
    (dict(method="fft"), ArgumentError, r"method must be one of 'auto', 'phase', 'dilated'"),
])
def test_bad_options(rng, kwargs, error, match):
    x = rng.standard_normal((2, 4, 5))
    w = rng.standard_normal((4, 3, 3))
    with pytest.raises(error, match=match):
        F.conv_transpose(x, w, **kwargs)


def test_bad_shapes_and_dtypes(rng):
    x = rng.standard_normal((2, 4, 5))
    with pytest.raises(ShapeError, match=r"channel mismatch: x has 4 channels .* first axis "
                                         r"must be C_in = 4"):
        F.conv_transpose(x, rng.standard_normal((3, 4, 3)))
    with pytest.raises(ShapeError, match=r"as many spatial axes as x"):
        F.conv_transpose(x, rng.standard_normal((4, 3, 3, 3)))
    with pytest.raises(ShapeError, match=r"1 to 3 spatial axes"):
        F.conv_transpose(rng.standard_normal((2, 4)), rng.standard_normal((4, 3)))
    with pytest.raises(ShapeError, match=r"0-d value"):
        F.conv_transpose(3.0, rng.standard_normal((4, 3, 3)))
    with pytest.raises(ShapeError, match=r"bias must have shape \(3,\)"):
        F.conv_transpose(x, rng.standard_normal((4, 3, 3)), np.zeros(4))
    with pytest.raises(DTypeError, match=r"dtypes do not match"):
        F.conv_transpose(x.astype(np.float32), rng.standard_normal((4, 3, 3)))
    with pytest.raises(DTypeError, match=r"complex"):
        F.conv_transpose(x.astype(complex), rng.standard_normal((4, 3, 3)))
    w = rng.standard_normal((4, 3, 3))
    with pytest.raises(ShapeError, match=r"grad_output must have the forward output's shape "
                                         r"\(2, 3, 11\)"):
        F.conv_transpose_grad_input(np.zeros((2, 3, 10)), w, x.shape, stride=2)
    with pytest.raises(ShapeError, match=r"grad_output must have"):
        F.conv_transpose_grad_weight(x, np.zeros((2, 3, 10)), w.shape, stride=2)
    with pytest.raises(ArgumentError, match=r"input_shape must be a tuple"):
        F.conv_transpose_grad_input(np.zeros((2, 3, 11)), w, "x", stride=2)
    with pytest.raises(ArgumentError, match=r"weight_shape must be a tuple"):
        F.conv_transpose_grad_weight(x, np.zeros((2, 3, 11)), (4, 3, -3), stride=2)


def test_integer_input_computes_in_float64(rng):
    x = rng.integers(-3, 3, (1, 2, 4))
    w = rng.integers(-3, 3, (2, 1, 2))
    y = F.conv_transpose(x, w, stride=2)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, scatter_reference(x, w, stride=2))


def test_output_only_in_cropped_padding_has_zero_gradients(torch):
    """in=1, stride 3, padding 1, kernel 1, output_padding 2: the one output is never written."""
    x, w = np.ones((1, 1, 1)), np.ones((1, 1, 1))
    options = dict(stride=3, padding=1, output_padding=2)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv_transpose1d(tx, tw, **options)
    ty.sum().backward()
    y = F.conv_transpose(x, w, **options)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    gy = np.ones_like(y)
    np.testing.assert_array_equal(F.conv_transpose_grad_input(gy, w, x.shape, **options),
                                  tx.grad.numpy())
    np.testing.assert_array_equal(F.conv_transpose_grad_weight(x, gy, w.shape, **options),
                                  tw.grad.numpy())


# -- non-finite operands: an output depends only on the products of the formula --

def _non_finite_case(rng, nd, where):
    x = rng.standard_normal((2, 2) + (5,) * nd)
    w = rng.standard_normal((2, 3) + (3,) * nd)
    if where in ("x", "both"):
        x.reshape(-1)[[3, 17]] = [np.inf, np.nan]
    if where in ("weight", "both"):
        w.reshape(-1)[[1, 8]] = [-np.inf, np.nan]
    return x, w


@pytest.mark.parametrize("method", ["auto", "phase", "dilated"])
@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("where", ["x", "weight", "both"])
def test_non_finite_operands_reach_only_the_outputs_that_depend_on_them(rng, method, nd, where):
    x, w = _non_finite_case(rng, nd, where)
    options = dict(stride=2, padding=1, output_padding=1)
    expected = scatter_reference(x, w, **options)
    got = F.conv_transpose(x, w, method=method, **options)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert np.isfinite(got).sum() == np.isfinite(expected).sum()


def test_issue_example_gives_zeros_where_the_inf_does_not_reach(torch):
    x = np.array([[[0, np.inf, 0, 0]]])
    w = np.ones((1, 1, 3))
    expected = torch.nn.functional.conv_transpose1d(torch.tensor(x), torch.tensor(w),
                                                    stride=2).numpy()
    np.testing.assert_array_equal(expected, [[[0, 0, np.inf, np.inf, np.inf, 0, 0, 0, 0]]])
    for method in ("auto", "phase", "dilated"):
        np.testing.assert_array_equal(F.conv_transpose(x, w, stride=2, method=method), expected)


@pytest.mark.parametrize("where", ["x", "weight", "both"])
def test_non_finite_operands_match_pytorch(torch, rng, where):
    x, w = _non_finite_case(rng, 2, where)
    b = rng.standard_normal(6)
    options = dict(stride=(2, 3), padding=(1, 0), dilation=(1, 2), groups=2)
    x2 = np.concatenate([x, x[:, ::-1]], axis=1)  # 4 input channels, 2 groups
    w2 = np.concatenate([w, w[::-1]], axis=0)
    expected = torch.nn.functional.conv_transpose2d(torch.tensor(x2), torch.tensor(w2),
                                                    torch.tensor(b), **options).numpy()
    np.testing.assert_allclose(F.conv_transpose(x2, w2, b, **options), expected,
                               rtol=1e-12, atol=1e-12, equal_nan=True)


def test_non_finite_ragged_items_equal_items_alone(rng):
    from sigconv import Ragged
    x, w = _non_finite_case(rng, 1, "both")
    batch = Ragged.from_list([x[0], x[1, :, :3]])
    out = F.conv_transpose(batch, w, stride=2)
    for item, alone in zip(out, (x[:1], x[1:, :, :3])):
        np.testing.assert_allclose(item, scatter_reference(alone, w, stride=2)[0],
                                   rtol=1e-12, atol=1e-12, equal_nan=True)
