"""The tape: every elementary op against finite differences, graph mechanics, no_grad, errors."""
import numpy as np
import pytest

from sigconv import ArgumentError, DTypeError, ShapeError, Tensor, gradcheck, no_grad
from sigconv.autograd import Function, GradcheckError, cat, enable_grad, is_grad_enabled


def t(rng, *shape, grad=True, positive=False):
    data = rng.standard_normal(shape)
    if positive:
        data = np.abs(data) + 0.5
    return Tensor(data, requires_grad=grad)


@pytest.mark.parametrize("op, shapes", [
    (lambda a, b: a + b, [(3, 4), (4,)]),
    (lambda a, b: a - b, [(3, 1), (1, 4)]),
    (lambda a, b: a * b, [(2, 3, 4), (3, 1)]),
    (lambda a, b: a / b, [(3, 4), (3, 4)]),
    (lambda a, b: a @ b, [(3, 4), (4, 2)]),
    (lambda a, b: cat([a, b], axis=1), [(2, 3), (2, 2)]),
])
def test_binary_ops_match_finite_differences(rng, op, shapes):
    a = t(rng, *shapes[0])
    b = t(rng, *shapes[1], positive=True)
    assert gradcheck(op, [a, b])


@pytest.mark.parametrize("op", [
    lambda a: -a,
    lambda a: a ** 3,
    lambda a: (a * a + 1) ** 0.5,
    lambda a: a.sum(),
    lambda a: a.sum(axis=1),
    lambda a: a.sum(axis=(0, 2), keepdims=True),
    lambda a: a.mean(axis=-1),
    lambda a: a.reshape(4, 6),
    lambda a: a.transpose(2, 0, 1),
    lambda a: a.T,
    lambda a: a[:, 1:, ::2],
    lambda a: a[np.array([0, 0, 1])],  # repeated index: gradients add up
    lambda a: a.exp(),
    lambda a: (a * a + 1).log(),
    lambda a: a.relu(),
    lambda a: a.tanh(),
    lambda a: a.sigmoid(),
    lambda a: a.log_softmax(axis=1),
    lambda a: a.softmax(axis=2),
    lambda a: 2.0 - a / 3.0,
    lambda a: 1.0 / (a * a + 1),
])
def test_unary_ops_match_finite_differences(rng, op):
    assert gradcheck(op, [t(rng, 2, 3, 4)])


def test_gradients_accumulate_across_backward_calls(rng):
    a = t(rng, 3)
    (a * 2).sum().backward()
    (a * 3).sum().backward()
    np.testing.assert_allclose(a.grad, np.full(3, 5.0))
    a.grad = None
    (a * 1).sum().backward()
    np.testing.assert_allclose(a.grad, np.ones(3))


def test_diamond_graph_visits_each_function_once(rng):
    # y = a*a used twice: d/da (y + y*y) = 2a + 4a^3
    calls = []

    class Square(Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            calls.append(1)
            return (2 * self.x * g,)

    a = t(rng, 4)
    y = Square.apply(a)
    (y + y * y).sum().backward()
    np.testing.assert_allclose(a.grad, 2 * a.data + 4 * a.data ** 3)
    assert len(calls) == 1


def test_backward_computes_only_needed_gradients(rng):
    seen = []

    class Probe(Function):
        def forward(self, x, w):
            seen.append(self.needs_input_grad)
            self.x, self.w = x, w
            return x * w

        def backward(self, g):
            return (g * self.w if self.needs_input_grad[0] else None,
                    g * self.x if self.needs_input_grad[1] else None)

    x, w = t(rng, 3, grad=False), t(rng, 3)
    Probe.apply(x, w).sum().backward()
    assert seen == [(False, True)]
    assert x.grad is None and w.grad is not None


def test_long_chain_does_not_recurse(rng):
    a = t(rng, 2)
    y = a
    for _ in range(5000):
        y = y * 1.0
    y.sum().backward()
    np.testing.assert_allclose(a.grad, np.ones(2))


def test_no_grad_records_nothing(rng):
    a = t(rng, 3)
    with no_grad():
        assert not is_grad_enabled()
        y = a * 2
        with enable_grad():
            z = a * 2
    assert is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad

    @no_grad()
    def evaluate(x):
        return x * 3

    assert not evaluate(a).requires_grad


def test_constants_and_numpy_mix(rng):
    a = t(rng, 3)
    y = np.ones(3) * a + np.arange(3)  # numpy defers to Tensor
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_allclose(a.grad, np.ones(3))


def test_gradient_shape_is_checked(rng):
    class Wrong(Function):
        def forward(self, x):
            return x.copy()

        def backward(self, g):
            return (g[:1],)

    with pytest.raises(ShapeError, match=r"Wrong.backward gave a gradient of shape \(1,\) for "
                                         r"input 0 of shape \(3,\)"):
        Wrong.apply(t(rng, 3)).sum().backward()


def test_backward_errors(rng):
    with pytest.raises(ArgumentError, match="does not require grad"):
        Tensor(np.ones(3)).sum().backward()
    with pytest.raises(ShapeError, match="one-element tensor"):
        (t(rng, 3) * 2).backward()
    with pytest.raises(ShapeError, match=r"grad has shape \(2,\)"):
        (t(rng, 3) * 2).backward(np.ones(2))
    with pytest.raises(DTypeError, match="only float tensors"):
        Tensor(np.arange(3), requires_grad=True)
    with pytest.raises(ShapeError, match="cannot reshape"):
        t(rng, 3).reshape(2, 2)
    with pytest.raises(ShapeError, match="matmul needs"):
        t(rng, 3, 2) @ t(rng, 3, 2)
    with pytest.raises(ArgumentError, match="exponent"):
        t(rng, 3) ** np.ones(3)


def test_gradcheck_catches_a_wrong_gradient(rng):
    class BadSquare(Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            return (3 * self.x * g,)  # should be 2x

    with pytest.raises(GradcheckError, match="differs from finite differences"):
        gradcheck(BadSquare.apply, [t(rng, 4)])


def test_gradcheck_input_errors(rng):
    with pytest.raises(DTypeError, match="float64"):
        gradcheck(lambda a: a * 2, [Tensor(np.ones(3, np.float32), requires_grad=True)])
    with pytest.raises(ArgumentError, match="no input has requires_grad"):
        gradcheck(lambda a: a * 2, [Tensor(np.ones(3))])
    with pytest.raises(ArgumentError, match="must be Tensors"):
        gradcheck(lambda a: a * 2, [np.ones(3)])


def test_gradcheck_restores_existing_grad(rng):
    a = t(rng, 3)
    a.grad = np.full(3, 7.0)
    gradcheck(lambda x: x * x, [a])
    np.testing.assert_array_equal(a.grad, np.full(3, 7.0))


def test_float32_stays_float32(rng):
    a = Tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
    y = (a * 2.0).sigmoid().log_softmax(axis=0).sum()
    assert y.dtype == np.float32
    y.backward()
    assert a.grad.dtype == np.float32


def test_relu_maps_nan_to_zero_and_masks_its_gradient():
    a = Tensor(np.array([np.nan, -1.0, -0.0, 0.0, 2.0, np.inf], np.float32), requires_grad=True)
    y = a.relu()
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, [0, 0, 0, 0, 2, np.inf])
    y.backward(np.full(6, 3.0, np.float32))
    np.testing.assert_array_equal(a.grad, [0, 0, 0, 0, 3, 3])


def test_ragged_mean_per_channel_divides_by_each_channels_count(rng):
    from sigconv.ragged import Ragged
    items = [rng.standard_normal((3,) + s) for s in ((4, 2), (1, 5), (3, 3))]
    x = Tensor(Ragged.from_list(items), requires_grad=True)
    m = x.mean(axis=(0, 2, 3))
    expected = np.concatenate([i.reshape(3, -1) for i in items], axis=1).mean(axis=1)
    np.testing.assert_allclose(m.data, expected)
    ones = Tensor(Ragged.from_list([np.ones(i.shape) for i in items]))
    np.testing.assert_allclose(ones.mean(axis=(0, 2, 3)).data, np.ones(3))
    np.testing.assert_allclose(x.mean().data, np.concatenate([i.ravel() for i in items]).mean())
    m.sum().backward()
    count = sum(i[0].size for i in items)
    np.testing.assert_allclose(x.grad.data, np.full(x.size, 1.0 / count))
