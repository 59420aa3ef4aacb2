"""Fused training-step ops: BatchNorm + ReLU in one step, global average pooling.

``batch_norm_relu`` (and :class:`~sigconv.nn.Sequential`'s use of it for a
BatchNorm followed by a ReLU) must give what the two layers give one after
the other, in values and in every gradient, for dense and Ragged batches of
1 to 3 spatial axes in float32 and float64; the statistics are checked
against numpy's two-pass formulas in float64, the gradients against finite
differences and PyTorch.
"""
import numpy as np
import pytest

from sigconv import Ragged, Tensor, gradcheck, nn
from sigconv import functional as SF
from sigconv.errors import ArgumentError
from sigconv.nn import functional as F
from sigconv.nn.functional import _BatchNorm

TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}


def _batch(rng, ragged, nd, dtype, channels=3):
    """A Ragged batch of items of different sizes, or a dense one."""
    if ragged:
        sizes = [(5, 1, 7)[:nd], (2, 4, 3)[:nd], (1, 1, 1)[:nd], (6, 2, 2)[:nd]]
        return Ragged.from_list([(rng.standard_normal((channels,) + s) * 2 + 1).astype(dtype)
                                 for s in sizes])
    return (rng.standard_normal((3, channels) + (4, 3, 5)[:nd]) * 2 + 1).astype(dtype)


def _values(a):
    return a.data if isinstance(a, Ragged) else a


def _layers(dtype, channels=3, seed=0, **options):
    bn = nn.BatchNorm(channels, dtype=dtype, **options)
    if bn.affine:
        rng = np.random.default_rng(seed)
        bn.weight.data[:] = rng.uniform(0.5, 1.5, channels)
        bn.bias.data[:] = rng.standard_normal(channels) * 0.3
    return bn


def _run(step, bn, data, direction):
    """Output, input gradient, parameter gradients and running statistics of one step."""
    x = Tensor(data, requires_grad=True)
    out = step(x)
    out.backward(out.data.like(direction) if out.ragged else direction.reshape(out.shape))
    grads = [p.grad for p in bn.parameters()]
    stats = [bn.running_mean.copy(), bn.running_var.copy()] if bn.track_running_stats else []
    return [_values(out.data), _values(x.grad)] + grads + stats


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("ragged", [False, True], ids=["dense", "ragged"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_fused_equals_batch_norm_then_relu(rng, dtype, nd, ragged, training, affine):
    data = _batch(rng, ragged, nd, dtype)
    direction = rng.standard_normal(_values(data).size).astype(dtype)
    results = []
    for fused in (False, True):
        bn = _layers(dtype, affine=affine)
        bn.running_mean[:] = [0.5, -0.2, 1.0]
        bn.running_var[:] = [2.0, 0.5, 1.5]
        bn.train(training)
        relu = nn.ReLU()
        step = nn.Sequential(bn, relu) if fused else (lambda x: relu(bn(x)))
        results.append(_run(step, bn, data, direction))
    for unfused, fused in zip(*results):
        assert fused.dtype == unfused.dtype == dtype
        np.testing.assert_allclose(fused, unfused, **TOL[dtype])


def test_sequential_fuses_only_plain_batch_norm_then_relu(rng):
    x = Tensor(_batch(rng, True, 1, np.float64), requires_grad=True)
    out = nn.Sequential(nn.BatchNorm(3, dtype=np.float64), nn.ReLU())(x)
    assert isinstance(out._ctx, _BatchNorm) and out._ctx.relu
    out = nn.Sequential(nn.ReLU(), nn.BatchNorm(3, dtype=np.float64))(x)  # other order
    assert isinstance(out._ctx, _BatchNorm) and not out._ctx.relu

    class Shifted(nn.BatchNorm):  # a subclass with its own forward is called, never bypassed
        def forward(self, x):
            return super().forward(x) + 1.0

    class Leaky(nn.ReLU):
        def forward(self, x):
            return F.leaky_relu(x, 0.5)

    for first, second in ((Shifted(3, dtype=np.float64), nn.ReLU()),
                          (nn.BatchNorm(3, dtype=np.float64), Leaky())):
        seq = nn.Sequential(first, second)
        np.testing.assert_array_equal(seq(x).data.data, second(first(x)).data.data)


def test_classifier_output_unchanged_by_fusion(rng):
    from sigconv.models import Classifier

    items = [rng.standard_normal((1, n)).astype(np.float32) for n in (40, 57, 33)]
    model = Classifier(1, 4, ndim=1, widths=(4, 6), kernel_size=5, rng=0)
    x = Tensor(Ragged.from_list(items))
    fused = model(x).data
    layers = list(model.features)
    h = x
    for layer in layers:  # the same layers one by one, without Sequential's fusion
        h = layer(h)
    unfused = model.head(model.pool(h)).data
    np.testing.assert_allclose(fused, unfused, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("ragged", [False, True], ids=["dense", "ragged"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_relu_gradcheck(rng, nd, ragged, training):
    data = _batch(rng, ragged, nd, np.float64, channels=2)
    x = Tensor(data, requires_grad=True)
    w = Tensor(rng.uniform(0.5, 1.5, 2), requires_grad=True)
    b = Tensor(rng.standard_normal(2) * 0.3, requires_grad=True)
    mean, var = np.array([0.5, 1.5]), np.array([2.0, 0.7])
    assert gradcheck(lambda x, w, b: F.batch_norm_relu(
        x, mean.copy(), var.copy(), w, b, training=training), [x, w, b])


def test_batch_norm_relu_two_dimensional_input(rng):
    """``(N, C)`` input (after a linear layer) takes the numpy formulas, fused or not."""
    x = Tensor(rng.standard_normal((6, 3)), requires_grad=True)
    w = Tensor(rng.uniform(0.5, 1.5, 3), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.batch_norm_relu(x, None, None, w, b, training=True),
                     [x, w, b])
    want = F.relu(F.batch_norm(x, None, None, w, b, training=True)).data
    np.testing.assert_allclose(F.batch_norm_relu(x, None, None, w, b, training=True).data, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ragged", [False, True], ids=["dense", "ragged"])
def test_batch_statistics_against_numpy(rng, dtype, ragged):
    """Mean and variance in one pass over memory equal numpy's two-pass float64 values.

    Far from zero (mean 1e4, spread 1), where a naive sum of squares in
    float32 would lose every digit of the variance.
    """
    items = [(1e4 + rng.standard_normal((2, n))).astype(dtype) for n in (300, 1, 17, 1000)]
    data = Ragged.from_list(items) if ragged else np.stack([i[:, :17] for i in items[::2]] * 2)
    flat = np.concatenate([i.reshape(2, -1) for i in (items if ragged else data)], axis=1)
    flat = flat.astype(np.float64)
    bn = nn.BatchNorm(2, dtype=dtype)
    out = F.batch_norm_relu(Tensor(data), bn.running_mean, bn.running_var, training=True,
                            momentum=1.0)  # momentum 1: the running statistics are this batch's
    count = flat.shape[1]
    np.testing.assert_allclose(bn.running_mean, flat.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(bn.running_var, flat.var(axis=1) * count / (count - 1),
                               rtol=1e-4 if dtype == np.float32 else 1e-10)
    want = np.maximum((flat - flat.mean(axis=1, keepdims=True))
                      / np.sqrt(flat.var(axis=1, keepdims=True) + 1e-5), 0)
    got = np.concatenate([i.reshape(2, -1) for i in
                          (out.data if ragged else _values(out.data))], axis=1)
    np.testing.assert_allclose(got, want, atol=5e-3 if dtype == np.float32 else 1e-8)


def test_strided_and_read_only_buffers(rng):
    """Ragged batches over strided or read-only flat buffers, and strided gradients."""
    data = _batch(rng, True, 1, np.float64)
    strided = Ragged(np.repeat(data.data, 2)[::2], data.shapes, data.channels)
    frozen = Ragged(data.data.copy(), data.shapes, data.channels)
    frozen.data.flags.writeable = False
    direction = rng.standard_normal(2 * data.data.size)[::2]
    want = _run(lambda x: F.batch_norm_relu(x, None, None, training=True),
                nn.BatchNorm(3, affine=False, track_running_stats=False), data, direction.copy())
    for other in (strided, frozen):
        got = _run(lambda x: F.batch_norm_relu(x, None, None, training=True),
                   nn.BatchNorm(3, affine=False, track_running_stats=False), other, direction)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_nan_input_as_unfused(rng):
    data = _batch(rng, True, 1, np.float64)
    data.data[4] = np.nan  # channel 0 of item 0
    unfused = F.relu(F.batch_norm(Tensor(data), None, None, training=True)).data.data
    fused = F.batch_norm_relu(Tensor(data), None, None, training=True).data.data
    np.testing.assert_array_equal(fused, unfused)


def test_ragged_item_of_a_fused_step_equals_its_padded_real_positions(rng):
    """Statistics over every item's real positions only: Ragged vs a mask over padded data."""
    data = _batch(rng, True, 2, np.float64)
    out = F.batch_norm_relu(Tensor(data), None, None, training=True).data
    padded, mask = data.to_padded(0.0)
    m = mask[:, None]
    count = mask.sum()
    mean = (padded * m).sum(axis=(0, 2, 3)) / count
    var = (((padded - mean[:, None, None]) ** 2) * m).sum(axis=(0, 2, 3)) / count
    want = np.maximum((padded - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5), 0)
    for i, item in enumerate(out):
        region = (i, slice(None)) + tuple(slice(0, n) for n in item.shape[1:])
        np.testing.assert_allclose(item, want[region], atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 3, 50), (2, 3, 6, 7), (2, 3, 3, 4, 5)])
def test_fused_matches_torch(torch, rng, dtype, shape):
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    ours = nn.Sequential(_layers(dtype), nn.ReLU())
    xs = Tensor(x, requires_grad=True)
    out = ours(xs)
    out.backward(g)
    bn_cls = {3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d, 5: torch.nn.BatchNorm3d}
    theirs = bn_cls[len(shape)](3).to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours[0].weight.data))
        theirs.bias.copy_(torch.from_numpy(ours[0].bias.data))
    xt = torch.from_numpy(x).requires_grad_()
    yt = torch.relu(theirs(xt))
    yt.backward(torch.from_numpy(g))
    tol = TOL[dtype] if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.data, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(xs.grad, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(ours[0].weight.grad, theirs.weight.grad.numpy(), **tol)
    np.testing.assert_allclose(ours[0].bias.grad, theirs.bias.grad.numpy(), **tol)
    np.testing.assert_allclose(ours[0].running_var, theirs.running_var.numpy(), **tol)


# --- global average pooling on the flat buffer ---

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("ragged", [False, True], ids=["dense", "ragged"])
def test_global_avg_pool_equals_the_kernel(rng, dtype, nd, ragged):
    data = _batch(rng, ragged, nd, dtype)
    x = Tensor(data, requires_grad=True)
    out = F.global_pool(x, "avg")
    want = SF.adaptive_pool(data, (1,) * nd, "avg")
    assert out.dtype == dtype and out.shape == want.shape[:2]
    np.testing.assert_allclose(out.data, want.reshape(want.shape[:2]), **TOL[dtype])
    g = rng.standard_normal(out.shape).astype(dtype)
    out.backward(g)
    want_grad = SF.adaptive_pool_backward(g.reshape(want.shape), data, "avg")
    np.testing.assert_allclose(_values(x.grad), _values(want_grad), **TOL[dtype])


def test_global_avg_pool_ragged_gradcheck(rng):
    x = Tensor(_batch(rng, True, 2, np.float64), requires_grad=True)
    assert gradcheck(lambda x: F.global_pool(x, "avg"), [x])


def test_global_avg_pool_still_checks_p(rng):
    with pytest.raises(ArgumentError, match="p"):
        F.global_pool(Tensor(_batch(rng, True, 1, np.float64)), "avg", p=-1)
