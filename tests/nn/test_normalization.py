"""GroupNorm, InstanceNorm and LayerNorm: a slow numpy reference, PyTorch, finite differences.

BatchNorm's own tests are in test_layers.py and test_torch_parity.py; the
Ragged "each item alone" checks of these layers are in test_ragged_layers.py.
"""
import numpy as np
import pytest

from sigconv import ArgumentError, DTypeError, ShapeError, Tensor, gradcheck, nn
from sigconv.checkpoint import from_torch, to_torch
from sigconv.nn import functional as F

SHAPES = [(3, 6, 7), (2, 6, 5, 4), (2, 6, 3, 4, 2)]  # 1 to 3 spatial axes, 6 channels


def slow_group_norm(x, groups, weight=None, bias=None, eps=1e-5):
    """Item by item, group by group, from the definition (float64)."""
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    per = x.shape[1] // groups
    for n in range(x.shape[0]):
        for g in range(groups):
            block = x[n, g * per:(g + 1) * per]
            mean = block.sum() / block.size
            var = ((block - mean) ** 2).sum() / block.size
            out[n, g * per:(g + 1) * per] = (block - mean) / np.sqrt(var + eps)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if weight is not None:
        out = out * np.reshape(weight, shape)
    if bias is not None:
        out = out + np.reshape(bias, shape)
    return out


def slow_layer_norm(x, nd, weight=None, bias=None, eps=1e-5):
    x = np.asarray(x, np.float64)
    flat = x.reshape(-1, int(np.prod(x.shape[x.ndim - nd:])))
    out = np.stack([(row - row.mean()) / np.sqrt(row.var() + eps) for row in flat])
    out = out.reshape(x.shape)
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def _affine(rng, c, dtype=np.float64):
    return rng.uniform(0.5, 1.5, c).astype(dtype), rng.standard_normal(c).astype(dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("groups", [1, 2, 3, 6])
def test_group_norm_matches_slow_reference(rng, shape, groups):
    x = rng.standard_normal(shape) * 3 + 2
    w, b = _affine(rng, shape[1])
    for eps in (1e-5, 0.5):
        got = F.group_norm(x, groups, w, b, eps=eps).data
        np.testing.assert_allclose(got, slow_group_norm(x, groups, w, b, eps), atol=1e-12)
    np.testing.assert_allclose(F.group_norm(x, groups).data, slow_group_norm(x, groups),
                               atol=1e-12)


def test_instance_and_layer_norm_match_slow_reference(rng):
    x = rng.standard_normal((2, 3, 4, 5)) - 1
    w, b = _affine(rng, 3)
    np.testing.assert_allclose(F.instance_norm(x, weight=w, bias=b).data,
                               slow_group_norm(x, 3, w, b), atol=1e-12)
    lw, lb = rng.uniform(0.5, 1.5, (4, 5)), rng.standard_normal((4, 5))
    np.testing.assert_allclose(F.layer_norm(x, (4, 5), lw, lb, eps=1e-3).data,
                               slow_layer_norm(x, 2, lw, lb, 1e-3), atol=1e-12)
    np.testing.assert_allclose(F.layer_norm(x, 5).data, slow_layer_norm(x, 1), atol=1e-12)


def test_statistics_in_float64_for_float32_input(rng):
    """A large offset: float32 sums would lose the variance; the result stays float32."""
    x = (rng.standard_normal((2, 4, 4000)) + 1e4).astype(np.float32)
    got = F.group_norm(x, 2).data
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, slow_group_norm(x, 2), atol=2e-3)
    assert F.layer_norm(x, 4000).dtype == np.float32
    assert F.instance_norm(x).dtype == np.float32


def _torch_dtype(torch, dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("shape", SHAPES)
def test_group_norm_forward_and_backward_match_torch(torch, rng, shape, dtype, tol):
    for groups, eps in [(1, 1e-5), (2, 1e-3), (3, 1e-5), (6, 0.1)]:
        x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        ours = nn.GroupNorm(groups, shape[1], eps=eps, dtype=dtype)
        ours.weight.data[:], ours.bias.data[:] = _affine(rng, shape[1], dtype)
        theirs = torch.nn.GroupNorm(groups, shape[1], eps=eps).to(_torch_dtype(torch, dtype))
        theirs.load_state_dict(to_torch(ours))
        xt = Tensor(x, requires_grad=True)
        out = ours(xt)
        out.backward(g)
        xtt = torch.tensor(x, requires_grad=True)
        tout = theirs(xtt)
        tout.backward(torch.from_numpy(g))
        assert out.dtype == dtype
        np.testing.assert_allclose(out.data, tout.detach().numpy(), atol=tol, rtol=tol)
        np.testing.assert_allclose(xt.grad, xtt.grad.numpy(), atol=tol, rtol=tol)
        np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), atol=tol * 10,
                                   rtol=tol)
        np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), atol=tol * 10,
                                   rtol=tol)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("shape", SHAPES)
def test_instance_norm_matches_torch_with_running_statistics(torch, rng, shape, dtype, tol):
    nd = len(shape) - 2
    ours = nn.InstanceNorm(6, momentum=0.3, affine=True, track_running_stats=True, dtype=dtype)
    ours.weight.data[:], ours.bias.data[:] = _affine(rng, 6, dtype)
    theirs = getattr(torch.nn, f"InstanceNorm{nd}d")(6, momentum=0.3, affine=True,
                                                     track_running_stats=True)
    theirs = theirs.to(_torch_dtype(torch, dtype))
    theirs.load_state_dict(to_torch(ours))
    for _ in range(2):  # two training steps update the running statistics alike
        x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        xt, xtt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        ours.zero_grad()
        theirs.zero_grad()
        ours(xt).backward(g)
        theirs(xtt).backward(torch.from_numpy(g))
        np.testing.assert_allclose(xt.grad, xtt.grad.numpy(), atol=tol, rtol=tol)
        np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), atol=tol * 10,
                                   rtol=tol)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), atol=tol, rtol=tol,
                                   err_msg=key)
    ours.eval(), theirs.eval()  # evaluation normalises by the running statistics
    x = rng.standard_normal(shape).astype(dtype)
    xt, xtt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = ours(xt), theirs(xtt)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), atol=tol, rtol=tol)
    out.backward(np.ones(shape, dtype))
    tout.backward(torch.ones(shape, dtype=_torch_dtype(torch, dtype)))
    np.testing.assert_allclose(xt.grad, xtt.grad.numpy(), atol=tol, rtol=tol)
    # without running statistics: each item's own in evaluation too, and no state
    plain, tplain = nn.InstanceNorm(6).eval(), getattr(torch.nn, f"InstanceNorm{nd}d")(6).eval()
    assert list(plain.state_dict()) == list(tplain.state_dict()) == []
    np.testing.assert_allclose(plain(x).data, tplain(torch.from_numpy(x)).numpy(), atol=tol)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("shape, normalized", [((4, 7), (7,)), ((2, 3, 5), (5,)),
                                               ((2, 3, 4, 5), (3, 4, 5)),
                                               ((2, 2, 3, 4, 2), (4, 2))])
def test_layer_norm_matches_torch(torch, rng, shape, normalized, dtype, tol):
    for kwargs in (dict(), dict(eps=1e-2, bias=False), dict(elementwise_affine=False)):
        ours = nn.LayerNorm(normalized, dtype=dtype, **kwargs)
        theirs = torch.nn.LayerNorm(normalized, **kwargs).to(_torch_dtype(torch, dtype))
        for p in ours.parameters():
            p.data[...] = rng.uniform(0.5, 1.5, p.shape)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        theirs.load_state_dict(to_torch(ours))
        x = (rng.standard_normal(shape) * 3 - 1).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        xt, xtt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, tout = ours(xt), theirs(xtt)
        out.backward(g)
        tout.backward(torch.from_numpy(g))
        np.testing.assert_allclose(out.data, tout.detach().numpy(), atol=tol, rtol=tol)
        np.testing.assert_allclose(xt.grad, xtt.grad.numpy(), atol=tol, rtol=tol)
        for name, p in theirs.named_parameters():
            np.testing.assert_allclose(getattr(ours, name).grad, p.grad.numpy(), atol=tol * 10,
                                       rtol=tol, err_msg=name)


def test_state_dicts_round_trip_with_torch(torch, rng):
    pairs = [(nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
             (nn.GroupNorm(2, 4, affine=False), torch.nn.GroupNorm(2, 4, affine=False)),
             (nn.InstanceNorm(4, affine=True, track_running_stats=True),
              torch.nn.InstanceNorm3d(4, affine=True, track_running_stats=True)),
             (nn.InstanceNorm(4, track_running_stats=True),
              torch.nn.InstanceNorm2d(4, track_running_stats=True)),
             (nn.LayerNorm((3, 4)), torch.nn.LayerNorm((3, 4)))]
    for ours, theirs in pairs:
        with torch.no_grad():
            for value in theirs.state_dict().values():
                if value.dtype == torch.float32:
                    value.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, tuple(value.shape))))
        ours.load_state_dict(from_torch(theirs))
        state = ours.state_dict()
        assert list(state) == list(theirs.state_dict())
        for key, value in theirs.state_dict().items():
            assert state[key].shape == tuple(value.shape) and state[key].dtype == \
                value.numpy().dtype
            np.testing.assert_array_equal(state[key], value.numpy())
        fresh = type(theirs)(*_torch_args(theirs))
        fresh.load_state_dict(to_torch(ours))  # and back
        for key, value in fresh.state_dict().items():
            np.testing.assert_array_equal(value.numpy(), state[key])


def _torch_args(module):
    import torch
    if isinstance(module, torch.nn.GroupNorm):
        return module.num_groups, module.num_channels, module.eps, module.affine
    if isinstance(module, torch.nn.LayerNorm):
        return (module.normalized_shape,)
    return module.num_features, module.eps, module.momentum, module.affine, \
        module.track_running_stats


@pytest.mark.parametrize("shape", [(2, 4), (2, 4, 5), (1, 4, 3, 2), (2, 4, 2, 2, 2)])
def test_group_norm_gradcheck(rng, shape):
    w, b = (Tensor(v, requires_grad=True) for v in _affine(rng, 4))
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    for groups in (1, 2, 4):
        assert gradcheck(lambda x, w, b: F.group_norm(x, groups, w, b, eps=1e-3), [x, w, b])
    assert gradcheck(lambda x: F.group_norm(x, 2), [x])


@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 3, 3, 2), (2, 3, 2, 2, 2)])
def test_instance_norm_gradcheck(rng, shape):
    w, b = (Tensor(v, requires_grad=True) for v in _affine(rng, 3))
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.instance_norm(x, weight=w, bias=b), [x, w, b])
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    assert gradcheck(lambda x, w, b: F.instance_norm(x, mean, var, w, b, use_input_stats=False),
                     [x, w, b])
    layer = nn.InstanceNorm(3, affine=True, track_running_stats=True, dtype=np.float64)
    assert gradcheck(lambda x, *p: layer(x), [x] + list(layer.parameters()))


def test_layer_norm_gradcheck(rng):
    x = Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    w = Tensor(rng.uniform(0.5, 1.5, (3, 4)), requires_grad=True)
    b = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (3, 4), w, b), [x, w, b])
    assert gradcheck(lambda x: F.layer_norm(x, 4), [x])


def test_layers_are_the_same_in_training_and_evaluation(rng):
    """No batch statistics: an item gives the same alone and in a batch, in either mode."""
    x = rng.standard_normal((3, 4, 6, 5)).astype(np.float32)
    for layer in (nn.GroupNorm(2, 4), nn.InstanceNorm(4), nn.LayerNorm((6, 5))):
        batch = layer(x).data
        for mode in (True, False):
            layer.train(mode)
            np.testing.assert_allclose(layer(x[1:2]).data[0], batch[1], atol=1e-6)


def test_empty_batch_and_constant_input(rng):
    x = np.zeros((0, 4, 5))
    assert F.group_norm(x, 2).shape == (0, 4, 5)
    assert F.layer_norm(x, 5).shape == (0, 4, 5)
    t = Tensor(np.zeros((0, 4, 5)), requires_grad=True)
    F.group_norm(t, 2, np.ones(4), np.zeros(4)).sum().backward()
    assert t.grad.shape == (0, 4, 5)
    const = np.full((2, 4, 3), 7.0)  # zero variance: the output is the bias, no NaN
    np.testing.assert_array_equal(F.group_norm(const, 2, None, np.arange(4.0)).data,
                                  np.broadcast_to(np.arange(4.0)[:, None], (2, 4, 3)))


def test_repr_and_defaults():
    assert repr(nn.GroupNorm(2, 8)) == "GroupNorm(2, 8, eps=1e-05, affine=True)"
    assert nn.GroupNorm(2, 8).weight.dtype == np.float32
    layer = nn.InstanceNorm(3)
    assert layer.weight is None and layer.running_mean is None and not layer.state_dict()
    assert nn.LayerNorm(5).normalized_shape == (5,)
    assert nn.LayerNorm(5, bias=False).bias is None


X = np.zeros((2, 4, 5), np.float32)


@pytest.mark.parametrize("call, error, message", [
    (lambda: nn.GroupNorm(3, 4), ArgumentError, r"num_groups \(3\) must divide num_channels \(4\)"),
    (lambda: nn.GroupNorm(0, 4), ArgumentError, "num_groups must be a positive int"),
    (lambda: nn.GroupNorm(2, 4, eps=0), ArgumentError, "eps must be a finite number > 0"),
    (lambda: nn.GroupNorm(2, 4, eps=float("nan")), ArgumentError, "eps must be"),
    (lambda: nn.GroupNorm(2, 4, dtype=np.int32), DTypeError, "float32 or float64"),
    (lambda: nn.GroupNorm(2, 6)(X), ShapeError, r"GroupNorm expects input \(N, 6, \*\)"),
    (lambda: nn.GroupNorm(1, 4)(np.zeros(4)), ShapeError, "GroupNorm expects input"),
    (lambda: F.group_norm(X, 3), ArgumentError, r"num_groups \(3\) must divide the number of "
                                                r"channels \(4\)"),
    (lambda: F.group_norm(X, 2, np.ones(3)), ShapeError, r"weight must have shape \(4,\)"),
    (lambda: F.group_norm(X, 2, eps=-1.0), ArgumentError, "eps must be"),
    (lambda: F.group_norm(np.zeros(3), 1), ShapeError, r"needs input \(N, C, \*spatial\)"),
    (lambda: nn.InstanceNorm(4, momentum=2), ArgumentError,
     r"momentum must be a number in \[0, 1\]"),
    (lambda: nn.InstanceNorm(4, momentum=None), ArgumentError, "momentum must be a number"),
    (lambda: nn.InstanceNorm(4, eps="small"), ArgumentError, "eps must be"),
    (lambda: nn.InstanceNorm(3)(X), ShapeError, r"InstanceNorm expects input \(N, 3, \*spatial\)"),
    (lambda: nn.InstanceNorm(4)(np.zeros((2, 4))), ShapeError, "InstanceNorm expects input"),
    (lambda: nn.InstanceNorm(4)(np.zeros((2, 4, 1))), ShapeError,
     "more than one spatial position in every item"),
    (lambda: F.instance_norm(X, use_input_stats=False), ArgumentError,
     "needs running_mean and running_var"),
    (lambda: F.instance_norm(X, np.zeros(4)), ArgumentError, "give both running_mean"),
    (lambda: F.instance_norm(X, np.zeros(3), np.ones(3)), ShapeError,
     r"running_mean must have shape \(4,\)"),
    (lambda: nn.LayerNorm(()), ArgumentError, "at least one axis"),
    (lambda: nn.LayerNorm((3, 0)), ArgumentError, "normalized_shape must be a positive int"),
    (lambda: nn.LayerNorm("x"), ArgumentError, "normalized_shape must be a positive int"),
    (lambda: nn.LayerNorm(4)(X), ShapeError, r"does not end in normalized_shape \(4,\)"),
    (lambda: nn.LayerNorm((2, 3, 4, 5))(X), ShapeError, "does not end in normalized_shape"),
    (lambda: F.layer_norm(X, 5, np.ones(4)), ShapeError, r"weight must have shape \(5,\)"),
    (lambda: nn.LayerNorm(5, eps=0)(X), ArgumentError, "eps must be"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()
