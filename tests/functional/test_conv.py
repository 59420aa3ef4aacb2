"""Tests of sigconv.functional.conv, conv_grad_input and conv_grad_weight.

Oracles, never sigconv itself: the slow numpy reference in conv_reference.py
(the chapter's formula, checked here against its own literal scalar loops and
against scipy.signal), scipy.signal.correlate/convolve, finite differences in
float64, and PyTorch when it is installed.  Only the public API is used.
"""
import itertools
import os
import re
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.signal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sigconv
import sigconv.functional as F
from sigconv.errors import ArgumentError, DTypeError, ShapeError

from . import conv_reference as R

# SIGCONV_HYPOTHESIS_SCALE=10 runs ten times as many examples (a deeper search)
SCALE = float(os.environ.get("SIGCONV_HYPOTHESIS_SCALE", "1"))


def _settings(n):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


HYPOTHESIS = _settings(60)
HYPOTHESIS_FD = _settings(25)
HYPOTHESIS_MEDIUM = _settings(30)

METHODS = ("auto", "gemm", "direct")


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

def tolerances(dtype, ref):
    scale = max(1.0, float(np.abs(ref).max())) if np.size(ref) else 1.0
    if np.dtype(dtype) == np.float64:
        return dict(rtol=1e-9, atol=1e-9 * scale)
    return dict(rtol=2e-4, atol=2e-4 * scale)


def assert_close(got, ref, dtype, what=""):
    got = np.asarray(got)
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    np.testing.assert_allclose(got.astype(np.float64), ref, err_msg=what, **tolerances(dtype, ref))


@dataclass
class Case:
    """One convolution configuration (a hypothesis draw or a hand-written case)."""
    n_items: int
    c_in: int
    c_out: int
    spatial: tuple
    kernel: tuple
    stride: object = 1
    padding: object = "valid"
    dilation: object = 1
    groups: int = 1
    bias: bool = False
    flip: bool = False
    dtype: object = np.float64
    method: str = "auto"
    seed: int = 0

    @property
    def options(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, flip=self.flip)

    @property
    def input_shape(self):
        return (self.n_items, self.c_in) + tuple(self.spatial)

    @property
    def weight_shape(self):
        return (self.c_out, self.c_in // self.groups) + tuple(self.kernel)

    @property
    def pads(self):
        return R.padding_pairs(self.padding, self.spatial, self.kernel, self.stride,
                               self.dilation, self.flip)

    @property
    def out_spatial(self):
        return R.output_size(self.spatial, self.kernel, self.stride, self.padding,
                             self.dilation, self.flip)

    @property
    def output_shape(self):
        return (self.n_items, self.c_out) + self.out_spatial

    def arrays(self):
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal(self.input_shape).astype(self.dtype)
        w = rng.standard_normal(self.weight_shape).astype(self.dtype)
        b = rng.standard_normal(self.c_out).astype(self.dtype) if self.bias else None
        gy = rng.standard_normal(self.output_shape).astype(self.dtype)
        return x, w, b, gy

    def __repr__(self):  # compact, for failure reports
        return (f"Case(x={self.input_shape}, w={self.weight_shape}, stride={self.stride}, "
                f"padding={self.padding!r}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={self.bias}, flip={self.flip}, dtype={np.dtype(self.dtype).name}, "
                f"method={self.method!r}, seed={self.seed})")


def per_axis(draw, nd, lo, hi):
    """An int or a tuple of ``nd`` ints in [lo, hi]."""
    if draw(st.booleans()):
        return draw(st.integers(lo, hi))
    return tuple(draw(st.integers(lo, hi)) for _ in range(nd))


@st.composite
def cases(draw, dims=(1, 2, 3), dtypes=(np.float32, np.float64), methods=METHODS,
          max_items=2, bias=None):
    nd = draw(st.sampled_from(dims))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin_g, cout_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kmax, dmax, extra_max = {1: (5, 3, 10), 2: (4, 2, 6), 3: (3, 2, 4)}[nd]
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = per_axis(draw, nd, 1, 3)
    dilation = per_axis(draw, nd, 1, dmax)
    kind = draw(st.sampled_from(["valid", "same", "full", "int", "ints", "pairs"]))
    if kind in ("valid", "same", "full"):
        padding = kind
    elif kind == "int":
        padding = draw(st.integers(0, 3))
    elif kind == "ints":
        padding = tuple(draw(st.integers(0, 3)) for _ in range(nd))
    else:
        padding = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(nd))
    dil = R.as_tuple(dilation, nd)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    if kind in ("same", "full"):
        minimum = [1] * nd
    else:
        pads = R.padding_pairs(padding, (1,) * nd, kernel, stride, dilation)
        minimum = [max(1, e - lo - hi) for e, (lo, hi) in zip(spans, pads)]
    spatial = tuple(m + draw(st.integers(0, extra_max)) for m in minimum)
    return Case(
        n_items=draw(st.integers(1, max_items)), c_in=groups * cin_g, c_out=groups * cout_g,
        spatial=spatial, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
        groups=groups, bias=draw(st.booleans()) if bias is None else bias,
        flip=draw(st.booleans()), dtype=draw(st.sampled_from(dtypes)),
        method=draw(st.sampled_from(methods)), seed=draw(st.integers(0, 2**32 - 1)))


def reference(case, x, w, b):
    return R.conv(x, w, b, **case.options)


def torch_conv(torch, case, x, w, b, gy=None):
    """PyTorch's result (and gradients via autograd) for ``case``, in float64.

    Any padding is applied with torch.nn.functional.pad first, so asymmetric and
    'same'-with-stride configurations are covered; flip=True flips the kernel.
    """
    tf = torch.nn.functional
    nd = len(case.spatial)
    xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    wt = torch.tensor(np.asarray(w, dtype=np.float64), requires_grad=True)
    bt = None if b is None else torch.tensor(np.asarray(b, dtype=np.float64))
    flat = []
    for lo, hi in reversed(case.pads):
        flat += [lo, hi]
    xp = tf.pad(xt, flat)
    wk = torch.flip(wt, dims=tuple(range(2, 2 + nd))) if case.flip else wt
    conv = {1: tf.conv1d, 2: tf.conv2d, 3: tf.conv3d}[nd]
    y = conv(xp, wk, bt, stride=R.as_tuple(case.stride, nd), padding=0,
             dilation=R.as_tuple(case.dilation, nd), groups=case.groups)
    if gy is None:
        return y.detach().numpy()
    y.backward(torch.tensor(np.asarray(gy, dtype=np.float64)))
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()


# ----------------------------------------------------------------------------
# the reference itself
# ----------------------------------------------------------------------------

REFERENCE_CASES = [
    Case(2, 3, 2, (9,), (3,)),
    Case(1, 4, 6, (11,), (4,), stride=2, padding="same", dilation=2, groups=2, bias=True),
    Case(2, 2, 3, (7,), (2,), stride=3, padding=((2, 0),), flip=True, bias=True),
    Case(1, 3, 3, (6, 5), (3, 2), stride=(2, 1), padding="full", dilation=(1, 2), groups=3),
    Case(2, 2, 2, (5, 7), (2, 3), padding="same", flip=True, bias=True),
    Case(1, 2, 4, (5, 4), (3, 3), stride=2, padding=((1, 2), (0, 1)), groups=2),
    Case(1, 2, 2, (4, 5, 3), (2, 3, 2), stride=(1, 2, 1), padding="same", flip=True),
    Case(1, 1, 2, (3, 4, 4), (2, 2, 2), padding=1, dilation=(1, 2, 1), bias=True),
]


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=repr)
def test_reference_tap_loop_equals_literal_formula(case):
    x, w, b, _ = case.arrays()
    np.testing.assert_allclose(R.conv(x, w, b, **case.options),
                               R.conv_naive(x, w, b, **case.options), rtol=1e-12, atol=1e-12)


def scipy_cases():
    for nd, shape in ((1, (13,)), (2, (9, 8)), (3, (6, 7, 5))):
        for kernel in ({1: [(3,), (4,)], 2: [(3, 3), (2, 3), (4, 2)], 3: [(3, 3, 3), (2, 3, 2)]}[nd]):
            for mode in ("valid", "same", "full"):
                for flip in (False, True):
                    yield shape, kernel, mode, flip


def scipy_oracle(x1, w1, mode, flip):
    if flip:
        return scipy.signal.convolve(x1, w1, mode=mode, method="direct")
    return scipy.signal.correlate(x1, w1, mode=mode, method="direct")


def same_even_disagreement(kernel, mode, flip):
    # scipy.signal.correlate(mode="same") centres even kernels the other way
    # round from PyTorch; sigconv documents PyTorch's rule for flip=False.
    return mode == "same" and not flip and any(k % 2 == 0 for k in kernel)


@pytest.mark.parametrize("shape,kernel,mode,flip", list(scipy_cases()))
def test_reference_matches_scipy(shape, kernel, mode, flip):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 1) + shape)
    w = rng.standard_normal((1, 1) + kernel)
    got = R.conv(x, w, padding=mode, flip=flip)[0, 0]
    if same_even_disagreement(kernel, mode, flip):
        # PyTorch's rule: the even kernel's extra zero goes after the input, so
        # the result is the full correlation starting at k // 2 (scipy starts at (k-1)//2)
        full = scipy.signal.correlate(x[0, 0], w[0, 0], mode="full", method="direct")
        expected = full[tuple(slice(k // 2, k // 2 + n) for k, n in zip(kernel, shape))]
    else:
        expected = scipy_oracle(x[0, 0], w[0, 0], mode, flip)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@given(cases(dtypes=(np.float64,)))
@HYPOTHESIS
def test_reference_gradients_are_adjoints(case):
    x, w, b, gy = case.arrays()
    y = R.conv(x, w, **case.options)
    gx = R.conv_grad_input(gy, w, x.shape, **case.options)
    gw = R.conv_grad_weight(x, gy, w.shape, **case.options)
    inner = np.vdot(y, gy)
    assert np.isclose(np.vdot(x, gx), inner, rtol=1e-10, atol=1e-10)
    assert np.isclose(np.vdot(w, gw), inner, rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------
# forward: sigconv against the reference and scipy
# ----------------------------------------------------------------------------

@given(cases())
@HYPOTHESIS
def test_conv_matches_reference(case):
    x, w, b, _ = case.arrays()
    got = F.conv(x, w, b, method=case.method, **case.options)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.dtype(case.dtype), case
    assert_close(got, reference(case, x, w, b), case.dtype, repr(case))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape,kernel,mode,flip", list(scipy_cases()))
def test_conv_matches_scipy_single_channel(shape, kernel, mode, flip, method):
    if same_even_disagreement(kernel, mode, flip):
        pytest.skip("scipy.signal.correlate centres even kernels differently from PyTorch; "
                    "see test_same_even_kernel_follows_pytorch")
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 1) + shape)
    w = rng.standard_normal((1, 1) + kernel)
    got = F.conv(x, w, padding=mode, flip=flip, method=method)
    assert got.shape[:2] == (1, 1)
    np.testing.assert_allclose(got[0, 0], scipy_oracle(x[0, 0], w[0, 0], mode, flip),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape,kernel", [((12,), (4,)), ((12,), (2,)), ((7, 9), (2, 4)),
                                          ((6, 5), (4, 3)), ((4, 5, 6), (2, 2, 3))])
def test_same_even_kernel_follows_pytorch(shape, kernel):
    """flip=False, 'same', even kernel: the odd padding sample goes after the input."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 1) + shape)
    w = rng.standard_normal((1, 1) + kernel)
    got = F.conv(x, w, padding="same")
    full = np.stack([scipy.signal.correlate(x[i, 0], w[0, 0], mode="full", method="direct")
                     for i in range(2)])
    expected = full[(slice(None),) + tuple(slice(k // 2, k // 2 + n)
                                           for k, n in zip(kernel, shape))]
    np.testing.assert_allclose(got[:, 0], expected, rtol=1e-10, atol=1e-10)
    # and the explicit pairs that reproduce scipy's own 'same' centring are accepted
    pairs = tuple((k // 2, (k - 1) // 2) for k in kernel)
    np.testing.assert_allclose(
        F.conv(x[:1], w, padding=pairs)[0, 0],
        scipy.signal.correlate(x[0, 0], w[0, 0], mode="same", method="direct"),
        rtol=1e-10, atol=1e-10)


def test_flip_same_even_kernel_is_scipy_convolve():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 1, 10, 9))
    w = rng.standard_normal((1, 1, 4, 2))
    np.testing.assert_allclose(
        F.conv(x, w, padding="same", flip=True, stride=1)[0, 0],
        scipy.signal.convolve(x[0, 0], w[0, 0], mode="same", method="direct"), rtol=1e-10,
        atol=1e-10)


@pytest.mark.parametrize("stride", [2, 3])
@pytest.mark.parametrize("n,k,d", [(10, 3, 1), (11, 4, 1), (9, 2, 3), (7, 5, 2), (1, 3, 1),
                                   (4, 1, 1)])
@pytest.mark.parametrize("flip", [False, True])
def test_same_with_stride_is_ceil(n, k, d, stride, flip):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, n))
    w = rng.standard_normal((3, 2, k))
    got = F.conv(x, w, padding="same", stride=stride, dilation=d, flip=flip)
    assert got.shape == (1, 3, -(-n // stride))
    np.testing.assert_allclose(
        got, R.conv(x, w, padding="same", stride=stride, dilation=d, flip=flip),
        rtol=1e-10, atol=1e-10)


MEDIUM_CASES = [
    # sizes large enough to cross any tile / block boundary of the kernels
    Case(3, 1, 32, (2003,), (9,), padding="same", bias=True),
    Case(2, 32, 64, (517,), (9,), padding="same", bias=True),
    Case(2, 16, 32, (37, 41), (3, 3), padding="same", bias=True),
    Case(2, 3, 32, (67, 70), (3, 3), padding="same"),
    Case(1, 8, 16, (13, 14, 15), (3, 3, 3), padding="same", bias=True),
    Case(1, 3, 16, (5, 29, 31), (3, 3, 3), padding="same"),
    Case(2, 12, 18, (33, 29), (5, 3), stride=2, padding=((2, 1), (0, 3)), dilation=(1, 2),
         groups=3, bias=True),
    Case(1, 64, 64, (100,), (3,), groups=64, padding=1, bias=True),  # depthwise
    Case(2, 17, 5, (45, 38), (1, 1), stride=(3, 2)),  # 1x1 kernel
    Case(1, 4, 6, (1000,), (101,), padding="full", flip=True),  # long kernel
    Case(2, 96, 40, (20, 21), (3, 3), padding="same", bias=True),  # wide reduction
    Case(33, 5, 7, (12, 13), (3, 3), stride=2, padding="same"),  # many items
    Case(2, 3, 4, (6, 5), (2, 2), padding=((5, 1), (0, 6)), bias=True),  # windows only in padding
    Case(1, 2, 3, (5, 4, 3), (2, 2, 2), stride=(7, 1, 5), padding="same", dilation=(1, 3, 1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", MEDIUM_CASES, ids=repr)
def test_conv_medium_sizes(case, method, dtype):
    case = Case(**{**case.__dict__, "dtype": dtype})
    x, w, b, _ = case.arrays()
    got = F.conv(x, w, b, method=method, **case.options)
    assert got.dtype == np.dtype(dtype)
    assert_close(got, reference(case, x, w, b), dtype, repr(case))


@st.composite
def medium_cases(draw):
    """Larger random shapes: more channels and positions than any tile or block."""
    nd = draw(st.sampled_from([1, 2, 3]))
    groups = draw(st.sampled_from([1, 1, 1, 2, 4]))
    cin_g, cout_g = draw(st.integers(1, 24 // groups)), draw(st.integers(1, 24 // groups))
    kmax, nmax = {1: (15, 3000), 2: (5, 70), 3: (3, 18)}[nd]
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = per_axis(draw, nd, 1, 3)
    dilation = per_axis(draw, nd, 1, 2)
    padding = draw(st.one_of(st.sampled_from(["valid", "same", "full"]), st.integers(0, 4),
                             st.tuples(*[st.tuples(st.integers(0, 4), st.integers(0, 4))] * nd)))
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, R.as_tuple(dilation, nd))]
    spatial = tuple(draw(st.integers(e, max(e, nmax))) for e in spans)
    return Case(n_items=draw(st.integers(1, 3)), c_in=groups * cin_g, c_out=groups * cout_g,
                spatial=spatial, kernel=kernel, stride=stride, padding=padding,
                dilation=dilation, groups=groups, bias=draw(st.booleans()),
                flip=draw(st.booleans()), dtype=draw(st.sampled_from([np.float32, np.float64])),
                method=draw(st.sampled_from(METHODS)), seed=draw(st.integers(0, 2**32 - 1)))


@given(medium_cases())
@HYPOTHESIS_MEDIUM
def test_conv_and_gradients_medium_random(case):
    x, w, b, gy = case.arrays()
    assert_close(F.conv(x, w, b, method=case.method, **case.options), reference(case, x, w, b),
                 case.dtype, "forward " + repr(case))
    assert_close(F.conv_grad_input(gy, w, x.shape, method=case.method, **case.options),
                 R.conv_grad_input(gy, w, x.shape, **case.options), case.dtype,
                 "grad_input " + repr(case))
    assert_close(F.conv_grad_weight(x, gy, w.shape, method=case.method, **case.options),
                 R.conv_grad_weight(x, gy, w.shape, **case.options), case.dtype,
                 "grad_weight " + repr(case))


# ----------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------

@given(cases(bias=False))
@HYPOTHESIS
def test_gradients_match_reference_adjoint(case):
    x, w, _, gy = case.arrays()
    gx = F.conv_grad_input(gy, w, x.shape, method=case.method, **case.options)
    gw = F.conv_grad_weight(x, gy, w.shape, method=case.method, **case.options)
    assert gx.dtype == np.dtype(case.dtype) and gw.dtype == np.dtype(case.dtype), case
    assert_close(gx, R.conv_grad_input(gy, w, x.shape, **case.options), case.dtype,
                 "grad_input " + repr(case))
    assert_close(gw, R.conv_grad_weight(x, gy, w.shape, **case.options), case.dtype,
                 "grad_weight " + repr(case))


def finite_difference(f, a, direction, h=1e-3):
    return (f(a + h * direction) - f(a - h * direction)) / (2 * h)


@given(cases(dtypes=(np.float64,), bias=True))
@HYPOTHESIS_FD
def test_gradients_match_finite_differences(case):
    """dL/dx and dL/dw of L = sum(conv(x, w, b) * G), checked by central differences."""
    x, w, b, gy = case.arrays()
    opts = dict(case.options, method=case.method)

    def loss_x(xx):
        return float(np.sum(F.conv(xx, w, b, **opts) * gy))

    def loss_w(ww):
        return float(np.sum(F.conv(x, ww, b, **opts) * gy))

    gx = F.conv_grad_input(gy, w, x.shape, **case.options)
    gw = F.conv_grad_weight(x, gy, w.shape, **case.options)
    rng = np.random.default_rng(case.seed ^ 0x5EED)
    for grad, a, loss in ((gx, x, loss_x), (gw, w, loss_w)):
        # random directions probe the whole gradient at once ...
        for _ in range(3):
            v = rng.standard_normal(a.shape)
            assert np.isclose(np.vdot(grad, v), finite_difference(loss, a, v),
                              rtol=1e-7, atol=1e-7), case
        # ... and a few single coordinates (edges included) probe it entry by entry
        picks = {0, a.size - 1} | set(rng.integers(0, a.size, 6).tolist())
        for flat in picks:
            e = np.zeros(a.size)
            e[flat] = 1.0
            e = e.reshape(a.shape)
            assert np.isclose(grad.reshape(-1)[flat], finite_difference(loss, a, e),
                              rtol=1e-7, atol=1e-7), (case, np.unravel_index(flat, a.shape))


@pytest.mark.parametrize("case", MEDIUM_CASES[:7], ids=repr)
def test_gradients_medium_sizes(case):
    case = Case(**{**case.__dict__, "dtype": np.float32})
    x, w, _, gy = case.arrays()
    assert_close(F.conv_grad_input(gy, w, x.shape, **case.options),
                 R.conv_grad_input(gy, w, x.shape, **case.options), np.float32, "grad_input")
    assert_close(F.conv_grad_weight(x, gy, w.shape, **case.options),
                 R.conv_grad_weight(x, gy, w.shape, **case.options), np.float32, "grad_weight")


def test_grad_input_covers_samples_no_window_reads():
    # stride 3, valid: the last two samples are read by no window -> zero gradient
    x_shape = (1, 1, 11)
    w = np.ones((1, 1, 3))
    gy = np.ones((1, 1, 3))
    gx = F.conv_grad_input(gy, w, x_shape, stride=3)
    np.testing.assert_array_equal(gx, [[[1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]]])


# ----------------------------------------------------------------------------
# PyTorch parity
# ----------------------------------------------------------------------------

@given(cases(bias=None))
@HYPOTHESIS
def test_torch_parity_forward_and_gradients(torch, case):
    x, w, b, gy = case.arrays()
    y_t, gx_t, gw_t = torch_conv(torch, case, x, w, b, gy)
    assert_close(F.conv(x, w, b, method=case.method, **case.options), y_t, case.dtype,
                 "forward " + repr(case))
    assert_close(F.conv_grad_input(gy, w, x.shape, **case.options), gx_t, case.dtype,
                 "grad_input " + repr(case))
    assert_close(F.conv_grad_weight(x, gy, w.shape, **case.options), gw_t, case.dtype,
                 "grad_weight " + repr(case))


@pytest.mark.parametrize("spatial,kernel,dilation", [
    ((10,), (4,), 1), ((10,), (2,), 3), ((11,), (5,), 2), ((7, 8), (2, 4), 1),
    ((7, 8), (3, 2), (2, 1)), ((5, 6, 4), (2, 3, 2), 1), ((6, 5, 7), (3, 3, 3), (1, 2, 1))])
def test_torch_same_padding(torch, spatial, kernel, dilation):
    """torch's own padding='same' (stride 1), even kernels and dilation included."""
    nd = len(spatial)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 4) + spatial)
    w = rng.standard_normal((6, 2) + kernel)
    gy = rng.standard_normal((2, 6) + spatial)
    conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
            3: torch.nn.functional.conv3d}[nd]
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    yt = conv(xt, wt, padding="same", dilation=dilation, groups=2)
    yt.backward(torch.tensor(gy))
    opts = dict(padding="same", dilation=dilation, groups=2)
    np.testing.assert_allclose(F.conv(x, w, **opts), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(F.conv_grad_input(gy, w, x.shape, **opts), xt.grad.numpy(),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(F.conv_grad_weight(x, gy, w.shape, **opts), wt.grad.numpy(),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", MEDIUM_CASES[:6], ids=repr)
def test_torch_parity_medium_float32(torch, case):
    case = Case(**{**case.__dict__, "dtype": np.float32})
    x, w, b, gy = case.arrays()
    y_t, gx_t, gw_t = torch_conv(torch, case, x, w, b, gy)
    assert_close(F.conv(x, w, b, **case.options), y_t, np.float32, "forward")
    assert_close(F.conv_grad_input(gy, w, x.shape, **case.options), gx_t, np.float32, "grad_input")
    assert_close(F.conv_grad_weight(x, gy, w.shape, **case.options), gw_t, np.float32,
                 "grad_weight")


# ----------------------------------------------------------------------------
# cross-cutting properties
# ----------------------------------------------------------------------------

PROPERTY_CASES = [
    Case(2, 4, 6, (15,), (3,), stride=2, padding="same", groups=2, bias=True),
    Case(2, 3, 4, (9, 10), (3, 2), padding=((1, 0), (2, 1)), dilation=(2, 1), bias=True,
         flip=True),
    Case(1, 2, 3, (5, 6, 7), (2, 3, 3), stride=(1, 2, 1), padding="full", bias=True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", PROPERTY_CASES, ids=repr)
def test_methods_agree(case, dtype):
    case = Case(**{**case.__dict__, "dtype": dtype})
    x, w, b, _ = case.arrays()
    results = {m: F.conv(x, w, b, method=m, **case.options) for m in METHODS}
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    for m in ("gemm", "direct"):
        assert results[m].dtype == np.dtype(dtype)
        np.testing.assert_allclose(results[m], results["auto"], err_msg=m, **tol)


def layouts(a, rng):
    """The same values as ``a`` in other memory layouts."""
    yield "fortran", np.asfortranarray(a)
    big = np.zeros(tuple(2 * s + 1 for s in a.shape), dtype=a.dtype)
    big[tuple(slice(1, None, 2) for _ in a.shape)] = a
    yield "strided", big[tuple(slice(1, None, 2) for _ in a.shape)]
    rev = np.ascontiguousarray(a[..., ::-1])
    yield "negative_stride", rev[..., ::-1]
    ro = a.copy()
    ro.flags.writeable = False
    yield "read_only", ro
    if a.ndim >= 3:
        t = np.ascontiguousarray(np.swapaxes(a, 0, 1))
        yield "transposed_view", np.swapaxes(t, 0, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", PROPERTY_CASES, ids=repr)
def test_layouts_give_the_contiguous_result(case, dtype):
    case = Case(**{**case.__dict__, "dtype": dtype})
    x, w, b, gy = case.arrays()
    rng = np.random.default_rng(0)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-6, atol=1e-6)
    y = F.conv(x, w, b, **case.options)
    gx = F.conv_grad_input(gy, w, x.shape, **case.options)
    gw = F.conv_grad_weight(x, gy, w.shape, **case.options)
    for name, xl in layouts(x, rng):
        np.testing.assert_allclose(F.conv(xl, w, b, **case.options), y, err_msg="x " + name, **tol)
        np.testing.assert_allclose(F.conv_grad_weight(xl, gy, w.shape, **case.options), gw,
                                   err_msg="grad_weight x " + name, **tol)
    for name, wl in layouts(w, rng):
        np.testing.assert_allclose(F.conv(x, wl, b, **case.options), y, err_msg="w " + name, **tol)
        np.testing.assert_allclose(F.conv_grad_input(gy, wl, x.shape, **case.options), gx,
                                   err_msg="grad_input w " + name, **tol)
    for name, bl in layouts(b, rng):
        np.testing.assert_allclose(F.conv(x, w, bl, **case.options), y, err_msg="b " + name, **tol)
    for name, gl in layouts(gy, rng):
        np.testing.assert_allclose(F.conv_grad_input(gl, w, x.shape, **case.options), gx,
                                   err_msg="grad_input gy " + name, **tol)
        np.testing.assert_allclose(F.conv_grad_weight(x, gl, w.shape, **case.options), gw,
                                   err_msg="grad_weight gy " + name, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_native_byte_order_gives_the_native_result(dtype):
    """Big-endian floats (common in NIfTI/Analyze and FITS files) are still float32/float64."""
    case = PROPERTY_CASES[1]
    x, w, b, gy = Case(**{**case.__dict__, "dtype": dtype}).arrays()
    swapped = np.dtype(dtype).newbyteorder()
    y = F.conv(x, w, b, **case.options)
    got = F.conv(x.astype(swapped), w.astype(swapped), b.astype(swapped), **case.options)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, y)
    np.testing.assert_array_equal(
        F.conv_grad_input(gy.astype(swapped), w, x.shape, **case.options),
        F.conv_grad_input(gy, w, x.shape, **case.options))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_reach_exactly_the_windows_that_read_them(method, bad):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 3, 9, 10))
    x[1, 2, 4, 7] = bad
    w = rng.uniform(0.5, 1.5, (4, 3, 3, 2))  # no zero taps: 0 * inf would be nan anyway
    y = F.conv(x, w, padding="same", method=method)
    hit = R.conv(np.isnan(x) | np.isinf(x), np.ones_like(w), padding="same") > 0
    assert np.all(~np.isfinite(y[hit])) and np.all(np.isfinite(y[~hit]))
    gy = np.zeros(y.shape)
    gy[0, 1, 3, 3] = bad
    gx = F.conv_grad_input(gy, w, x.shape, padding="same")
    assert np.all(np.isfinite(gx[1])) and not np.all(np.isfinite(gx[0]))


def test_numpy_integer_options():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1, 2, 11))
    w = rng.standard_normal((3, 2, 3))
    got = F.conv(x, w, stride=np.int64(2), padding=np.int32(1), dilation=np.int8(2),
                 groups=np.int64(1))
    np.testing.assert_allclose(got, R.conv(x, w, stride=2, padding=1, dilation=2),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", PROPERTY_CASES + MEDIUM_CASES[:3], ids=repr)
def test_float32_close_to_float64(case):
    x, w, b, gy = Case(**{**case.__dict__, "dtype": np.float64}).arrays()
    y64 = F.conv(x, w, b, **case.options)
    y32 = F.conv(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32)
                 if b is not None else None, **case.options)
    assert y32.dtype == np.float32 and y64.dtype == np.float64
    np.testing.assert_allclose(y32, y64, **tolerances(np.float32, y64))


def test_inputs_not_modified_and_results_deterministic():
    case = PROPERTY_CASES[0]
    x, w, b, gy = case.arrays()
    copies = [a.copy() for a in (x, w, b, gy)]
    y1 = F.conv(x, w, b, **case.options)
    y2 = F.conv(x, w, b, **case.options)
    g1 = F.conv_grad_input(gy, w, x.shape, **case.options)
    g2 = F.conv_grad_weight(x, gy, w.shape, **case.options)
    for a, c in zip((x, w, b, gy), copies):
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(g1, F.conv_grad_input(gy, w, x.shape, **case.options))
    np.testing.assert_array_equal(g2, F.conv_grad_weight(x, gy, w.shape, **case.options))


def test_multichannel_equals_sum_of_single_channels():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 8, 9))
    w = rng.standard_normal((4, 3, 3, 3))
    y = F.conv(x, w, padding="same")
    parts = sum(F.conv(x[:, c:c + 1], w[:, c:c + 1], padding="same") for c in range(3))
    np.testing.assert_allclose(y, parts, rtol=1e-10, atol=1e-10)


def test_batch_item_equals_item_alone():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 3, 20))
    w = rng.standard_normal((4, 3, 5))
    y = F.conv(x, w, stride=2, padding="same")
    for i in range(5):
        np.testing.assert_allclose(y[i:i + 1], F.conv(x[i:i + 1], w, stride=2, padding="same"),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("padding", ["valid", "same", "full", ((1, 2),)])
def test_length_one_axes_reduce_to_fewer_dims(padding, flip):
    """1-D conv equals 2-D and 3-D conv with the extra axes of length 1."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 17))
    w = rng.standard_normal((4, 3, 4))
    b = rng.standard_normal(4)
    opts = dict(stride=2, dilation=2, flip=flip)
    y = F.conv(x, w, b, padding=padding, **opts)
    pad2 = padding if isinstance(padding, str) else ((0, 0),) + padding
    pad3 = padding if isinstance(padding, str) else ((0, 0), (0, 0)) + padding
    np.testing.assert_allclose(
        F.conv(x[:, :, None], w[:, :, None], b, padding=pad2, **opts)[:, :, 0], y,
        rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        F.conv(x[:, :, None, None], w[:, :, None, None], b, padding=pad3, **opts)[:, :, 0, 0], y,
        rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        F.conv(x[:, :, :, None], w[:, :, :, None], b, padding=pad2[::-1] if not
               isinstance(padding, str) else padding, **opts)[..., 0], y, rtol=1e-12, atol=1e-12)


def test_concurrent_calls_equal_serial():
    """Calls from several Python threads at once (the kernels release the GIL)."""
    import concurrent.futures
    rng = np.random.default_rng(10)
    jobs = []
    for i in range(8):
        nd = 1 + i % 3
        spatial = {1: (300,), 2: (24, 25), 3: (9, 10, 8)}[nd]
        x = rng.standard_normal((3, 6) + spatial).astype(np.float32)
        w = rng.standard_normal((8, 6) + (3,) * nd).astype(np.float32)
        gy = rng.standard_normal((3, 8) + spatial).astype(np.float32)
        jobs.append((x, w, gy))

    def run(job):
        x, w, gy = job
        return (F.conv(x, w, padding="same"),
                F.conv_grad_input(gy, w, x.shape, padding="same"),
                F.conv_grad_weight(x, gy, w.shape, padding="same"))

    serial = [run(j) for j in jobs]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(run, jobs * 3))
    for k, result in enumerate(parallel):
        for got, expected in zip(result, serial[k % len(jobs)]):
            # float32 sums may be split differently when threads compete: rounding only
            np.testing.assert_allclose(got, expected, **tolerances(np.float32, expected))


# ----------------------------------------------------------------------------
# dtypes
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("x_dtype,w_dtype,expected", [
    (np.int32, np.float32, np.float32),
    (np.int64, np.float64, np.float64),
    (np.float32, np.int16, np.float32),
    (np.uint8, np.float32, np.float32),
    (np.bool_, np.float64, np.float64),
    (np.int64, np.int64, np.float64),
    (np.bool_, np.int8, np.float64),
    (np.float16, np.float16, np.float32),
    (np.float16, np.float32, np.float32),
    (np.float32, np.float16, np.float32),
    (np.float16, np.int32, np.float32),
])
def test_dtype_promotion(x_dtype, w_dtype, expected):
    rng = np.random.default_rng(1)
    x = (rng.integers(0, 2, (2, 3, 12)) if x_dtype == np.bool_
         else rng.integers(-3, 4, (2, 3, 12))).astype(x_dtype)
    w = (rng.integers(0, 2, (4, 3, 3)) if w_dtype == np.bool_
         else rng.integers(-3, 4, (4, 3, 3))).astype(w_dtype)
    y = F.conv(x, w, padding="same")
    assert y.dtype == np.dtype(expected)
    np.testing.assert_allclose(y, R.conv(x, w, padding="same"), rtol=1e-6, atol=1e-6)
    # grad_output in the result dtype: both gradients then promote to ``expected``
    gy = np.ones(y.shape, dtype=expected)
    assert F.conv_grad_input(gy, w, x.shape, padding="same").dtype == np.dtype(expected)
    assert F.conv_grad_weight(x, gy, w.shape, padding="same").dtype == np.dtype(expected)


def test_integer_bias_takes_float_dtype():
    x = np.ones((1, 2, 6), np.float32)
    w = np.ones((3, 2, 3), np.float32)
    y = F.conv(x, w, np.arange(3), padding="same")
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, R.conv(x, w, np.arange(3), padding="same"))


@pytest.mark.parametrize("x_dtype,w_dtype", [(np.float32, np.float64), (np.float64, np.float32)])
def test_mismatched_float_dtypes_raise(x_dtype, w_dtype):
    x = np.ones((1, 2, 6), x_dtype)
    w = np.ones((3, 2, 3), w_dtype)
    with pytest.raises(DTypeError, match=r"float32.*float64|float64.*float32"):
        F.conv(x, w)
    with pytest.raises(DTypeError, match=r"float32.*float64|float64.*float32"):
        F.conv_grad_input(np.ones((1, 3, 4), x_dtype), w, x.shape)
    with pytest.raises(DTypeError, match=r"float32.*float64|float64.*float32"):
        F.conv_grad_weight(x, np.ones((1, 3, 4), w_dtype), w.shape)


# ----------------------------------------------------------------------------
# empty batch
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("spatial,kernel,padding,stride", [
    ((10,), (3,), "valid", 1), ((7, 8), (3, 3), "same", 2), ((4, 5, 6), (2, 2, 2), "full", 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_of_zero_items(spatial, kernel, padding, stride, dtype):
    x = np.zeros((0, 4) + spatial, dtype)
    w = np.ones((6, 2) + kernel, dtype)
    out = R.output_size(spatial, kernel, stride, padding)
    y = F.conv(x, w, np.ones(6, dtype), stride=stride, padding=padding, groups=2)
    assert y.shape == (0, 6) + out and y.dtype == np.dtype(dtype)
    gy = np.zeros((0, 6) + out, dtype)
    gx = F.conv_grad_input(gy, w, x.shape, stride=stride, padding=padding, groups=2)
    assert gx.shape == x.shape and gx.dtype == np.dtype(dtype)
    gw = F.conv_grad_weight(x, gy, w.shape, stride=stride, padding=padding, groups=2)
    assert gw.shape == w.shape and gw.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(gw, 0)


# ----------------------------------------------------------------------------
# bad input catalogue
# ----------------------------------------------------------------------------

def _x(*shape, dtype=np.float64):
    return np.ones(shape, dtype)


X1, W1 = _x(2, 4, 10), _x(6, 4, 3)
X2, W2 = _x(2, 4, 8, 8), _x(6, 4, 3, 3)

BAD_CONV = [
    # (id, args, kwargs, exception, regex)
    ("negative_padding_int", (X1, W1), dict(padding=-1), ArgumentError, r"padding.*-1"),
    ("negative_padding_tuple", (X2, W2), dict(padding=(1, -2)), ArgumentError, r"padding.*-2"),
    ("negative_padding_pair", (X2, W2), dict(padding=((0, 1), (-1, 0))), ArgumentError,
     r"padding"),
    ("padding_wrong_length", (X2, W2), dict(padding=(1, 1, 1)), ArgumentError, r"padding"),
    ("padding_float", (X1, W1), dict(padding=1.5), ArgumentError, r"padding"),
    ("zero_stride", (X1, W1), dict(stride=0), ArgumentError, r"stride.*0"),
    ("negative_stride", (X2, W2), dict(stride=(1, -1)), ArgumentError, r"stride.*-1"),
    ("stride_wrong_length", (X2, W2), dict(stride=(1, 1, 1)), ArgumentError, r"stride"),
    ("zero_dilation", (X1, W1), dict(dilation=0), ArgumentError, r"dilation.*0"),
    ("negative_dilation", (X2, W2), dict(dilation=(-2, 1)), ArgumentError, r"dilation.*-2"),
    ("zero_groups", (X1, W1), dict(groups=0), ArgumentError, r"groups.*0"),
    ("negative_groups", (X1, W1), dict(groups=-2), ArgumentError, r"groups.*-2"),
    ("kernel_larger_than_input", (_x(2, 4, 5), _x(6, 4, 7)), {}, ShapeError, r"kernel|weight"),
    ("dilated_kernel_larger", (_x(2, 4, 5), _x(6, 4, 3)), dict(dilation=3), ShapeError,
     r"kernel|weight"),
    ("kernel_larger_than_padded", (_x(1, 1, 4, 9), _x(1, 1, 7, 3)), dict(padding=1), ShapeError,
     r"kernel|weight"),
    ("unknown_padding_string", (X1, W1), dict(padding="sane"), ArgumentError,
     r"(?=.*'valid')(?=.*'same')(?=.*'full')(?=.*sane)"),
    ("unknown_method", (X1, W1), dict(method="fft9"), ArgumentError,
     r"(?=.*method)(?=.*auto)(?=.*gemm)(?=.*direct)(?=.*fft9)"),
    ("zero_d_input", (np.float64(1.0), W1), {}, ShapeError, r"\bx\b|input"),
    ("one_d_input", (_x(10), W1), {}, ShapeError, r"\bx\b|input"),
    ("no_spatial_axis", (_x(2, 4), W1), {}, ShapeError, r"\bx\b|input"),
    ("four_spatial_axes", (_x(1, 1, 3, 3, 3, 3), _x(1, 1, 1, 1, 1, 1)), {}, ShapeError,
     r"spatial|\bx\b|input"),
    ("rank_mismatch", (X2, W1), {}, ShapeError, r"(?=.*\(2, 4, 8, 8\))(?=.*\(6, 4, 3\))"),
    ("zero_length_spatial", (_x(2, 4, 0), W1), dict(padding="same"), ShapeError,
     r"zero|empty|\b0\b"),
    ("zero_length_spatial_2d", (_x(2, 4, 8, 0), W2), dict(padding="full"), ShapeError,
     r"zero|empty|\b0\b"),
    ("zero_length_kernel", (X1, _x(6, 4, 0)), {}, ShapeError, r"weight|kernel"),
    ("channel_mismatch", (X1, _x(6, 3, 3)), {}, ShapeError,
     r"(?=.*\(2, 4, 10\))(?=.*\(6, 3, 3\))"),
    ("groups_mismatch_in", (X1, _x(6, 4, 3)), dict(groups=2), ShapeError,
     r"(?=.*\(2, 4, 10\))(?=.*\(6, 4, 3\))"),
    ("groups_not_dividing_in", (_x(2, 5, 10), _x(6, 2, 3)), dict(groups=2), ShapeError,
     r"(?=.*\(2, 5, 10\))(?=.*\(6, 2, 3\))"),
    ("groups_not_dividing_out", (X1, _x(5, 2, 3)), dict(groups=2), ShapeError,
     r"(?=.*groups)(?=.*\(5, 2, 3\))"),
    ("complex_input", (X1.astype(np.complex128), W1), {}, DTypeError, r"complex"),
    ("complex_weight", (X1, W1.astype(np.complex64)), {}, DTypeError, r"complex"),
    ("object_input", (X1.astype(object), W1), {}, DTypeError, r"object"),
    ("string_input", (np.full((2, 4, 10), "a"), W1), {}, DTypeError, r"<U1|str|dtype"),
    ("weight_zero_d", (X1, np.float64(2.0)), {}, ShapeError, r"weight"),
]

BAD_BIAS = [
    ("bias_wrong_length", (X1, W1, np.ones(5)), ShapeError, r"(?=.*bias)(?=.*5)"),
    ("bias_2d", (X1, W1, np.ones((6, 1))), ShapeError, r"bias"),
    ("bias_complex", (X1, W1, np.ones(6, np.complex128)), DTypeError, r"complex"),
]


@pytest.mark.parametrize("args,kwargs,exc,regex",
                         [c[1:] for c in BAD_CONV], ids=[c[0] for c in BAD_CONV])
def test_bad_input_conv(args, kwargs, exc, regex):
    with pytest.raises(exc, match=regex):
        F.conv(*args, **kwargs)


@pytest.mark.parametrize("args,exc,regex", [c[1:] for c in BAD_BIAS], ids=[c[0] for c in BAD_BIAS])
def test_bad_bias(args, exc, regex):
    with pytest.raises(exc, match=regex):
        F.conv(*args)


def test_error_classes_are_builtin_subclasses():
    assert issubclass(sigconv.ShapeError, ValueError)
    assert issubclass(sigconv.ArgumentError, ValueError)
    assert issubclass(sigconv.DTypeError, TypeError)


BAD_GRAD = [
    ("grad_input_wrong_grad_shape",
     lambda: F.conv_grad_input(_x(2, 6, 9), W1, (2, 4, 10)), ShapeError, r"grad_output"),
    ("grad_input_wrong_channels",
     lambda: F.conv_grad_input(_x(2, 5, 8), W1, (2, 4, 10)), ShapeError, r"grad_output"),
    ("grad_input_shape_channels",
     lambda: F.conv_grad_input(_x(2, 6, 8), W1, (2, 3, 10)), ShapeError, r"\(6, 4, 3\)"),
    ("grad_input_shape_rank",
     lambda: F.conv_grad_input(_x(2, 6, 8), W1, (2, 4, 10, 10)), ShapeError,
     r"input_shape|\(2, 4, 10, 10\)"),
    ("grad_input_bad_padding",
     lambda: F.conv_grad_input(_x(2, 6, 8), W1, (2, 4, 10), padding="bogus"), ArgumentError,
     r"(?=.*'valid')(?=.*'same')(?=.*'full')"),
    ("grad_input_bad_stride",
     lambda: F.conv_grad_input(_x(2, 6, 8), W1, (2, 4, 10), stride=0), ArgumentError, r"stride"),
    ("grad_input_complex",
     lambda: F.conv_grad_input(_x(2, 6, 8).astype(complex), W1, (2, 4, 10)), DTypeError,
     r"complex"),
    ("grad_weight_wrong_grad_shape",
     lambda: F.conv_grad_weight(X1, _x(2, 6, 7), (6, 4, 3)), ShapeError, r"grad_output"),
    ("grad_weight_wrong_batch",
     lambda: F.conv_grad_weight(X1, _x(3, 6, 8), (6, 4, 3)), ShapeError, r"grad_output"),
    ("grad_weight_shape_channels",
     lambda: F.conv_grad_weight(X1, _x(2, 6, 8), (6, 3, 3)), ShapeError, r"\(6, 3, 3\)"),
    ("grad_weight_bad_groups",
     lambda: F.conv_grad_weight(X1, _x(2, 6, 8), (6, 4, 3), groups=0), ArgumentError, r"groups"),
    ("grad_weight_object",
     lambda: F.conv_grad_weight(X1.astype(object), _x(2, 6, 8), (6, 4, 3)), DTypeError,
     r"object"),
    ("grad_weight_kernel_too_large",
     lambda: F.conv_grad_weight(_x(2, 4, 3), _x(2, 6, 1), (6, 4, 5)), ShapeError,
     r"kernel|weight"),
]


@pytest.mark.parametrize("call,exc,regex", [c[1:] for c in BAD_GRAD], ids=[c[0] for c in BAD_GRAD])
def test_bad_input_gradients(call, exc, regex):
    with pytest.raises(exc, match=regex):
        call()
