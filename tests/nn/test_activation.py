"""GELU and SiLU: PyTorch, a scipy reference, finite differences, any rank, Ragged."""
import math

import numpy as np
import pytest
from scipy import special

from sigconv import ArgumentError, Tensor, gradcheck, nn
from sigconv.nn import functional as F
from sigconv.ragged import Ragged

POINTS = np.concatenate([np.linspace(-12, 12, 241), [-40.0, -1e-8, 0.0, 1e-8, 40.0]])


def test_against_the_definitions():
    x = POINTS
    np.testing.assert_allclose(F.gelu(x).data, x * special.ndtr(x), atol=1e-15)
    tanh = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(F.gelu(x, "tanh").data, tanh, atol=1e-15)
    np.testing.assert_allclose(F.silu(x).data, x / (1 + np.exp(-x)), atol=1e-15)
    assert np.isfinite(F.silu(np.array([-1e4, 1e4])).data).all()  # no overflow


# float32: ours and PyTorch's are each about 1e-6 from the float64 values (the tanh form's slope)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 5e-6)])
@pytest.mark.parametrize("shape", [(7,), (2, 3, 9), (2, 2, 4, 5), (1, 2, 3, 3, 3)])
def test_match_torch(torch, rng, shape, dtype, tol):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    for ours, theirs in [(nn.GELU(), torch.nn.GELU()),
                         (nn.GELU("tanh"), torch.nn.GELU(approximate="tanh")),
                         (nn.SiLU(), torch.nn.SiLU())]:
        xt, xtt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, tout = ours(xt), theirs(xtt)
        out.backward(g)
        tout.backward(torch.from_numpy(g))
        assert out.dtype == dtype and xt.grad.dtype == dtype
        np.testing.assert_allclose(out.data, tout.detach().numpy(), atol=tol, rtol=tol)
        np.testing.assert_allclose(xt.grad, xtt.grad.numpy(), atol=tol, rtol=tol)


@pytest.mark.parametrize("fn", [F.gelu, lambda x: F.gelu(x, "tanh"), F.silu],
                         ids=["gelu", "gelu-tanh", "silu"])
def test_gradcheck_dense_and_ragged(rng, fn):
    x = Tensor(rng.standard_normal((2, 3, 4)) * 3, requires_grad=True)
    assert gradcheck(fn, [x])
    r = Tensor(Ragged.from_list([rng.standard_normal((2, 5)) * 3, rng.standard_normal((2, 2))]),
               requires_grad=True)
    assert gradcheck(fn, [r])
    out = fn(r)
    assert out.ragged
    for i, item in enumerate(r.data):
        np.testing.assert_array_equal(out.data[i], fn(item).data)


def test_options_and_repr():
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.SiLU()) == "SiLU()"
    for bad in ("erf", None, 1):
        with pytest.raises(ArgumentError, match="approximate must be 'none' or 'tanh'"):
            nn.GELU(bad)
    with pytest.raises(ArgumentError, match="approximate must be"):
        F.gelu(np.ones(2), approximate="fast")
