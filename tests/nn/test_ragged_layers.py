"""Ragged batches through layers and whole models: item i of the batch equals that item alone.

Forward values, the input gradient and the parameter gradients (the sum of
the per-item gradients) of a Ragged batch are compared with running each
item alone as a dense batch of one, in float64, within 1e-6 relative.
BatchNorm in training couples the items through its statistics, so there
the oracle is the masked computation over the real positions only.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigconv import ArgumentError, ShapeError, nn
from sigconv.autograd import Tensor, gradcheck
from sigconv.models import Classifier, EncoderDecoder
from sigconv.nn import functional as F
from sigconv.ragged import Ragged


def _close(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    assert np.abs(actual - expected).max(initial=0.0) <= 1e-6 * scale


def _zero_grads(module):
    for p in module.parameters():
        p.grad = None


def check_each_item_alone(layer, items, seed=0):
    """Forward and all gradients of ``layer`` on a Ragged batch of ``items`` against each alone."""
    rng = np.random.default_rng(seed)
    params = list(layer.parameters()) if isinstance(layer, nn.Module) else []
    x = Tensor(Ragged.from_list(items), requires_grad=True)
    _zero_grads(layer)
    out = layer(x)
    if out.ragged:
        direction = out.data.like(rng.standard_normal(out.data.data.shape))
        pieces = list(direction)
    else:
        direction = rng.standard_normal(out.shape)
        pieces = list(direction)
    out.backward(direction)
    batch_grads = [None if p.grad is None else p.grad.copy() for p in params]
    _zero_grads(layer)
    for i, item in enumerate(items):
        alone = Tensor(item[None], requires_grad=True)
        o = layer(alone)
        _close(out.data[i], o.data[0])
        o.backward(pieces[i][None])
        _close(x.grad[i], alone.grad[0])
    for p, g in zip(params, batch_grads):  # parameter gradient = sum over the items
        _close(g, p.grad)
    return out


@st.composite
def ragged_items(draw, *, min_size=1, max_channels=3):
    nd = draw(st.integers(1, 3))
    extra = 12 if nd == 1 else 4
    shapes = [tuple(draw(st.integers(min_size, min_size + extra)) for _ in range(nd))
              for _ in range(draw(st.integers(1, 4)))]
    channels = draw(st.integers(1, max_channels))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    return nd, [rng.standard_normal((channels,) + s) for s in shapes]


@settings(max_examples=25, deadline=None)
@given(case=ragged_items(min_size=5), out_channels=st.integers(1, 3),
       kernel=st.integers(1, 3), stride=st.integers(1, 2), dilation=st.integers(1, 2),
       padding=st.sampled_from(["same", "valid", "full", 1]), bias=st.booleans())
def test_conv_each_item_alone(case, out_channels, kernel, stride, dilation, padding, bias):
    nd, items = case
    layer = nn.Conv(items[0].shape[0], out_channels, kernel, ndim=nd, stride=stride,
                    padding=padding, dilation=dilation, bias=bias, dtype=np.float64, rng=1)
    out = check_each_item_alone(layer, items)
    assert out.ragged


@settings(max_examples=25, deadline=None)
@given(case=ragged_items(min_size=3), kernel=st.integers(1, 3), stride=st.integers(1, 3),
       ceil_mode=st.booleans())
def test_window_pooling_each_item_alone(case, kernel, stride, ceil_mode):
    nd, items = case
    padding = kernel // 2
    for layer in (nn.MaxPool(kernel, stride=stride, padding=padding, ceil_mode=ceil_mode),
                  nn.AvgPool(kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                             count_include_pad=False),
                  nn.LPPool(2, kernel, stride=stride, ceil_mode=ceil_mode),
                  nn.GaussianPool(kernel, sigma=1.0, stride=stride, padding=padding)):
        assert check_each_item_alone(layer, [np.abs(i) + 0.1 for i in items]).ragged


@settings(max_examples=20, deadline=None)
@given(case=ragged_items(min_size=2), kind=st.sampled_from(["avg", "max", "lp"]),
       size=st.integers(1, 2))
def test_global_and_adaptive_pool_give_dense_tensors(case, kind, size):
    nd, items = case
    items = [np.abs(i) + 0.1 for i in items]
    out = check_each_item_alone(nn.GlobalPool(kind), items)
    assert not out.ragged and out.shape == (len(items), items[0].shape[0])
    out = check_each_item_alone(nn.AdaptivePool(size, kind), items)
    assert not out.ragged and out.shape == (len(items), items[0].shape[0]) + (size,) * nd


@settings(max_examples=20, deadline=None)
@given(case=ragged_items(min_size=1, max_channels=4))
def test_elementwise_layers_each_item_alone(case):
    nd, items = case
    c = items[0].shape[0]
    for layer in (nn.ReLU(), nn.LeakyReLU(0.1), nn.Tanh(), nn.Sigmoid(), nn.Identity(),
                  nn.GELU(), nn.GELU("tanh"), nn.SiLU(), nn.Dropout(0.3).eval(), _Arithmetic()):
        assert check_each_item_alone(layer, items).ragged
    bn = nn.BatchNorm(c, dtype=np.float64)
    bn.running_mean[:] = np.linspace(-1, 1, c)
    bn.running_var[:] = np.linspace(0.5, 2, c)
    bn.weight.data[:] = np.linspace(0.5, 1.5, c)
    check_each_item_alone(bn.eval(), items)
    if c % 2 == 0:
        check_each_item_alone(nn.Maxout(2), items)


class _ResizeAndJoin(nn.Module):
    """Upsample, resize back to the input's item sizes, join with the input along channels."""

    def forward(self, x):
        up = nn.Upsample(scale_factor=2)(x * 1.5)
        back = F.interpolate(up, x.data.shapes if x.ragged else x.shape[2:])
        return F.cat([back.tanh(), x], axis=1)


@settings(max_examples=15, deadline=None)
@given(case=ragged_items(min_size=1))
def test_interpolate_and_cat_each_item_alone(case):
    nd, items = case
    out = check_each_item_alone(_ResizeAndJoin(), items)
    assert out.ragged and out.data.channels == 2 * items[0].shape[0]
    for item, size in zip(items, out.data.shapes):
        assert tuple(size) == item.shape[1:]


@settings(max_examples=8, deadline=None)
@given(nd=st.integers(1, 3), seed=st.integers(0, 1000), n=st.integers(1, 3))
def test_encoder_decoder_in_eval_mode_each_item_alone(nd, seed, n):
    rng = np.random.default_rng(seed)
    sizes = (6, 20) if nd == 1 else (4, 9) if nd == 2 else (4, 6)
    items = [rng.standard_normal((2,) + tuple(rng.integers(*sizes, size=nd))) for _ in range(n)]
    model = EncoderDecoder(2, 2, ndim=nd, widths=(3, 4, 5), convs=1, dtype=np.float64, rng=seed)
    _warm_up(model, items)
    out = check_each_item_alone(model.eval(), items)
    assert out.ragged and [tuple(s) for s in out.data.shapes] == [i.shape[1:] for i in items]


class _Arithmetic(nn.Module):
    """Tensor arithmetic with scalars, on a Ragged as on an array."""

    def forward(self, x):
        return ((2.0 * x - 1) / 3 + x * x) ** 2 - (-x).exp() * 0.1


def test_dropout_in_training_acts_on_the_flat_buffer(rng):
    x = Tensor(Ragged.from_list([rng.standard_normal((2, n)) + 5 for n in (40, 70)]),
               requires_grad=True)
    out = nn.Dropout(0.5, rng=0)(x)
    assert out.ragged
    kept = out.data.data != 0
    np.testing.assert_allclose(out.data.data[kept], 2 * x.data.data[kept])
    assert 0.3 < kept.mean() < 0.7
    out.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2.0 * kept)


def _masked_batch_norm(batch, weight, bias, eps):
    """Batch norm of a Ragged with statistics over the mask of its padded form (the oracle)."""
    padded, mask = batch.to_padded(0.0)
    m = mask[:, None]  # (N, 1, *spatial)
    count = mask.sum()
    axes = (0,) + tuple(range(2, padded.ndim))
    mean = (padded * m).sum(axis=axes) / count
    shape = (1, -1) + (1,) * (padded.ndim - 2)
    var = (((padded - mean.reshape(shape)) ** 2) * m).sum(axis=axes) / count
    out = (padded - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    out = out * weight.reshape(shape) + bias.reshape(shape)
    return [out[(i, slice(None)) + tuple(slice(0, n) for n in s)]
            for i, s in enumerate(batch.shapes)], mean, var, count


@settings(max_examples=20, deadline=None)
@given(case=ragged_items(min_size=1, max_channels=3), seed=st.integers(0, 1000))
def test_batch_norm_training_uses_real_positions_only(case, seed):
    nd, items = case
    rng = np.random.default_rng(seed)
    c = items[0].shape[0]
    batch = Ragged.from_list(items)
    if batch.data.size // c < 2:
        return
    bn = nn.BatchNorm(c, momentum=0.25, dtype=np.float64)
    bn.weight.data[:] = rng.uniform(0.5, 1.5, c)
    bn.bias.data[:] = rng.standard_normal(c)
    x = Tensor(batch, requires_grad=True)
    out = bn(x)
    expected, mean, var, count = _masked_batch_norm(batch, bn.weight.data, bn.bias.data, bn.eps)
    for got, want in zip(out.data, expected):
        _close(got, want)
    _close(bn.running_mean, 0.25 * mean)
    _close(bn.running_var, 0.75 + 0.25 * var * count / (count - 1))
    # gradients: the same as dense batch norm of every real position laid side by side
    direction = out.data.like(rng.standard_normal(out.data.data.shape))
    out.backward(direction)
    side_by_side = np.concatenate([i.reshape(c, -1) for i in items], axis=1)[None]
    g_side = np.concatenate([g.reshape(c, -1) for g in direction], axis=1)[None]
    dense = nn.BatchNorm(c, dtype=np.float64)
    dense.weight.data[:], dense.bias.data[:] = bn.weight.data, bn.bias.data
    xd = Tensor(side_by_side, requires_grad=True)
    dense(xd).backward(g_side)
    _close(np.concatenate([g.reshape(c, -1) for g in x.grad], axis=1), xd.grad[0])
    _close(bn.weight.grad, dense.weight.grad)
    _close(bn.bias.grad, dense.bias.grad)


def test_batch_norm_ragged_gradcheck(rng):
    batch = Ragged.from_list([rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 1, 4))])
    x = Tensor(batch, requires_grad=True)
    w = Tensor(rng.uniform(0.5, 1.5, 2), requires_grad=True)
    b = Tensor(rng.standard_normal(2), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [x, w, b])


@settings(max_examples=10, deadline=None)
@given(nd=st.integers(1, 3), seed=st.integers(0, 1000), n=st.integers(1, 4))
def test_classifier_in_eval_mode_each_item_alone(nd, seed, n):
    rng = np.random.default_rng(seed)
    sizes = (8, 24) if nd == 1 else (4, 9) if nd == 2 else (4, 6)
    items = [rng.standard_normal((2,) + tuple(rng.integers(*sizes, size=nd))) for _ in range(n)]
    model = Classifier(2, 3, ndim=nd, widths=(3, 4), dropout=0.2, dtype=np.float64, rng=seed)
    _warm_up(model, items)
    out = check_each_item_alone(model.eval(), items)
    assert out.shape == (n, 3)


@settings(max_examples=10, deadline=None)
@given(nd=st.integers(1, 3), seed=st.integers(0, 1000), n=st.integers(1, 4))
def test_fully_convolutional_model_each_item_alone(nd, seed, n):
    rng = np.random.default_rng(seed)
    sizes = (6, 20) if nd == 1 else (3, 8) if nd == 2 else (3, 5)
    items = [rng.standard_normal((2,) + tuple(rng.integers(*sizes, size=nd))) for _ in range(n)]
    model = nn.Sequential(nn.Conv(2, 4, 3, ndim=nd, dtype=np.float64, rng=seed), nn.ReLU(),
                          nn.MaxPool(2, ceil_mode=True),
                          nn.Conv(4, 3, 3, ndim=nd, stride=2, dtype=np.float64, rng=seed + 1),
                          nn.Tanh(), nn.Conv(3, 1, 1, ndim=nd, dtype=np.float64, rng=seed + 2))
    out = check_each_item_alone(model, items)
    assert out.ragged and out.data.channels == 1


def _warm_up(model, items):
    """One training-mode pass so the running statistics are not the defaults.

    The items go in twice, so that even the deepest BatchNorm of a single
    small item sees more than one value per channel (as PyTorch requires).
    """
    model.train()
    model(Tensor(Ragged.from_list(list(items) * 2)))


def test_classifier_training_step_on_ragged_batch(rng):
    items = [rng.standard_normal((1, n)).astype(np.float32) for n in (30, 55, 17)]
    model = Classifier(1, 4, ndim=1, widths=(4, 8), rng=0)
    logits = model(Tensor(Ragged.from_list(items)))
    loss = nn.CrossEntropyLoss()(logits, np.array([0, 3, 1]))
    loss.backward()
    assert logits.dtype == np.float32 and logits.shape == (3, 4)
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_mse_loss_on_ragged_outputs(rng):
    shapes = [(2, 5), (2, 9)]
    x = Tensor(Ragged.from_list([rng.standard_normal(s) for s in shapes]), requires_grad=True)
    target = Ragged.from_list([rng.standard_normal(s) for s in shapes])
    loss = nn.MSELoss()(x, Tensor(target))
    diff = x.data.data - target.data
    np.testing.assert_allclose(loss.data, np.mean(diff ** 2))
    loss.backward()
    np.testing.assert_allclose(x.grad.data, 2 * diff / diff.size)
    per_element = F.mse_loss(x, target, reduction="none")
    assert per_element.ragged
    with pytest.raises(ShapeError, match="same item shapes"):
        F.mse_loss(x, Ragged.from_list([rng.standard_normal((2, 5)), rng.standard_normal((2, 8))]))
    with pytest.raises(ShapeError, match="Ragged input needs a Ragged target"):
        F.mse_loss(x, np.zeros((2, 2, 9)))


@settings(max_examples=15, deadline=None)
@given(case=ragged_items(min_size=1, max_channels=3))
def test_softmax_and_channel_sums_each_item_alone(case):
    nd, items = case
    check_each_item_alone(nn.Softmax(), items)
    check_each_item_alone(_LogSoftmaxTimesSelf(), items)


class _LogSoftmaxTimesSelf(nn.Module):
    def forward(self, x):
        return F.log_softmax(x, axis=1) * x


def test_channel_sum_and_dice_loss_on_ragged(rng):
    shapes = [(3, 4, 2), (3, 1, 5)]
    logits = [rng.standard_normal(s) for s in shapes]
    masks = [rng.uniform(size=s) for s in shapes]
    x = Tensor(Ragged.from_list(logits), requires_grad=True)
    sums = x.sum(axis=(0, 2, 3))
    _close(sums.data, sum(l.reshape(3, -1).sum(axis=1) for l in logits))
    loss = F.dice_loss(x, Ragged.from_list(masks))
    # oracle: the items side by side as one dense (1, C, P) batch
    side = Tensor(np.concatenate([l.reshape(3, -1) for l in logits], axis=1)[None],
                  requires_grad=True)
    dense = F.dice_loss(side, np.concatenate([m.reshape(3, -1) for m in masks], axis=1)[None])
    _close(loss.data, dense.data)
    loss.backward()
    dense.backward()
    _close(np.concatenate([g.reshape(3, -1) for g in x.grad], axis=1), side.grad[0])
    assert gradcheck(lambda t: F.dice_loss(t, Ragged.from_list(masks)), [x])


@pytest.mark.parametrize("ndim, stride, shapes", [
    (1, 2, [(5,), (9,), (1,)]),
    (2, 2, [(3, 4), (6, 2)]),
    (3, 1, [(2, 3, 2), (3, 2, 4)]),
])
def test_conv_transpose_each_item_alone(rng, ndim, stride, shapes):
    layer = nn.ConvTranspose(2, 3, 3, ndim=ndim, stride=stride, padding=1,
                             output_padding=stride - 1, dtype=np.float64)
    check_each_item_alone(layer, [rng.standard_normal((2,) + s) for s in shapes])


class _Weighted(nn.Module):
    """One functional op with a learnable weight (and per-channel bias), as a layer."""

    def __init__(self, op, weight, bias=None, **options):
        super().__init__()
        self.op, self.options = op, options
        self.weight = nn.Parameter(weight)
        self.bias = None if bias is None else nn.Parameter(bias)

    def forward(self, x):
        return self.op(x, self.weight, self.bias, **self.options)


class _Separable(nn.Module):
    def __init__(self, factors, bias, **options):
        super().__init__()
        self.options = options
        self.f0, self.f1 = (nn.Parameter(f) for f in factors)
        self.bias = nn.Parameter(bias)

    def forward(self, x):
        return F.separable_conv(x, [self.f0, self.f1], self.bias, **self.options)


def test_tiled_fft_and_separable_each_item_alone(rng):
    items = [rng.standard_normal((2,) + s) for s in [(7, 9), (4, 5), (10, 3)]]
    tiled = nn.TiledConv(2, 3, 2, ndim=2, tile=2, dtype=np.float64)
    check_each_item_alone(tiled, items)
    fft = _Weighted(F.fft_conv, rng.standard_normal((4, 1, 3, 3)), rng.standard_normal(4),
                    padding="same", groups=2)
    check_each_item_alone(fft, items)
    separable = _Separable([rng.standard_normal((2, 3)), rng.standard_normal(3)],
                           rng.standard_normal(2), padding="same")
    check_each_item_alone(separable, items)


def test_tiled_conv_per_tile_bias_each_item_alone(rng):
    """A (C_out, *tile) bias: forward and backward item by item, each item's phases from its origin."""
    items = [rng.standard_normal((2,) + s) for s in [(7, 9), (4, 5), (10, 3)]]
    tiled = _Weighted(F.tiled_conv, rng.standard_normal((3, 2, 2, 2, 2, 3)),
                      rng.standard_normal((3, 2, 3)), padding="same")
    check_each_item_alone(tiled, items)
    x = Tensor(Ragged.from_list(items[1:]))
    assert gradcheck(lambda b: F.tiled_conv(x, tiled.weight.data, b, padding="same"),
                     [Tensor(rng.standard_normal((3, 2, 3)), requires_grad=True)])


def test_cross_entropy_on_ragged_logits(rng):
    """Every position of every item counts once: sums equal the items' sums alone."""
    items = [rng.standard_normal((3,) + s) for s in [(4, 5), (2, 7), (1, 1)]]
    labels = [rng.integers(0, 3, s) for s in [(4, 5), (2, 7), (1, 1)]]
    x = Tensor(Ragged.from_list(items), requires_grad=True)
    loss = F.cross_entropy(x, labels, reduction="sum", label_smoothing=0.1,
                           weight=np.array([1.0, 2.0, 0.5]))
    loss.backward()
    total = 0.0
    for i, (item, label) in enumerate(zip(items, labels)):
        alone = Tensor(item[None], requires_grad=True)
        part = F.cross_entropy(alone, label[None], reduction="sum", label_smoothing=0.1,
                               weight=np.array([1.0, 2.0, 0.5]))
        part.backward()
        total += float(part.data)
        _close(x.grad[i], alone.grad[0])
    _close(loss.data, total)
    as_ragged = Ragged.from_list([label[None] for label in labels])
    mean = F.cross_entropy(Tensor(Ragged.from_list(items)), as_ragged)
    dense = F.cross_entropy(Tensor(np.concatenate([i.reshape(3, -1) for i in items], 1)[None]),
                            np.concatenate([label.reshape(-1) for label in labels])[None])
    _close(mean.data, dense.data)
    assert gradcheck(lambda t: F.cross_entropy(t, labels), [x])


def test_structured_labeller_each_item_alone(rng):
    from sigconv.models import StructuredLabeller
    items = [rng.standard_normal((2, 5, 7)), rng.standard_normal((2, 9, 3))]
    model = StructuredLabeller(2, 3, ndim=2, hidden=4, steps=2, dtype=np.float64, rng=0)
    assert check_each_item_alone(model, items).ragged


def test_what_refuses_a_ragged_batch(rng):
    x = Tensor(Ragged.from_list([rng.standard_normal((2, 6)), rng.standard_normal((2, 9))]))
    for layer, op in [(nn.LocalConv(2, 2, 3, ndim=1, input_size=6), "LocalConv")]:
        with pytest.raises(ArgumentError, match=f"{op} does not take Ragged batches"):
            layer(x)
    with pytest.raises(ArgumentError, match="LocalConv does not take Ragged batches"):
        F.local_conv(x, np.ones((2, 4, 2, 3)))
    with pytest.raises(ArgumentError, match="linear takes dense"):
        nn.Linear(2, 3)(x)
    with pytest.raises(ArgumentError, match="Reshape does not take Ragged"):
        nn.Flatten()(x)
    with pytest.raises(ShapeError, match="target of Ragged logits"):
        F.cross_entropy(x, np.zeros(2, int))
    with pytest.raises(ArgumentError, match="reduction 'mean' or 'sum'"):
        F.cross_entropy(x, [np.zeros(6, int), np.zeros(9, int)], reduction="none")
    with pytest.raises(ShapeError, match="dice_loss of Ragged logits needs a Ragged target"):
        F.dice_loss(x, np.zeros(2, int))
    with pytest.raises(ArgumentError, match="channel axis 1 only"):
        F.log_softmax(x, axis=2)
    with pytest.raises(ArgumentError, match="channel axis 1 only"):
        F.cat([x, x], axis=2)
    with pytest.raises(ShapeError, match="with the same item shapes"):
        F.cat([x, Tensor(Ragged.from_list([np.ones((1, 6)), np.ones((1, 8))]))], axis=1)
    with pytest.raises(ShapeError, match="size for a Ragged of 2 items"):
        F.interpolate(x, np.array([[3], [4], [5]]))
    mixed = Tensor(Ragged.from_list([rng.standard_normal((2, 1)), rng.standard_normal((2, 9))]))
    with pytest.raises(ShapeError, match="some items are still poolable"):
        EncoderDecoder(2, 1, ndim=1, widths=(2, 2), dtype=np.float64).eval()(mixed)
    with pytest.raises(ShapeError, match="combines with scalars"):
        x + np.ones(3)
    with pytest.raises(ShapeError, match="expects 3 input channels"):
        nn.Conv(3, 2, 3, ndim=1)(x)
    with pytest.raises(ShapeError, match="with ndim=2 expects input"):
        nn.Conv(2, 2, 3, ndim=2)(x)
    with pytest.raises(ArgumentError, match="sums over all of its elements"):
        x.sum(axis=1)


def test_ragged_gradient_layout_is_checked(rng):
    x = Tensor(Ragged.from_list([rng.standard_normal((1, 4)), rng.standard_normal((1, 2))]),
               requires_grad=True)
    y = x * 2
    with pytest.raises(ShapeError, match="grad has shape"):
        y.backward(Ragged.from_list([np.ones((1, 4)), np.ones((1, 3))]))
    with pytest.raises(ShapeError, match="grad has shape"):
        y.backward(np.ones(6))
    with pytest.raises(ShapeError, match="one-element tensor"):
        y.backward()


# -- per-item normalisation: each item alone in training mode too ---------------------------

def _randomised(layer, rng):
    for p in layer.parameters():
        p.data[...] = rng.uniform(0.5, 1.5, p.shape) if p is layer.weight else \
            rng.standard_normal(p.shape)
    return layer


@settings(max_examples=20, deadline=None)
@given(case=ragged_items(min_size=2, max_channels=4), seed=st.integers(0, 1000),
       eps=st.sampled_from([1e-5, 0.1]))
def test_group_and_instance_norm_each_item_alone(case, seed, eps):
    nd, items = case
    rng = np.random.default_rng(seed)
    items = [3 * i + rng.standard_normal() for i in items]  # a different offset per item
    c = items[0].shape[0]
    for groups in [g for g in (1, 2, 4) if c % g == 0]:
        check_each_item_alone(_randomised(nn.GroupNorm(groups, c, eps=eps, dtype=np.float64),
                                          rng), items)
    check_each_item_alone(nn.GroupNorm(1, c, affine=False, dtype=np.float64), items)
    check_each_item_alone(nn.InstanceNorm(c, eps=eps, dtype=np.float64), items)
    tracked = _randomised(nn.InstanceNorm(c, affine=True, track_running_stats=True,
                                          dtype=np.float64), rng)
    check_each_item_alone(tracked, items)  # training: each item's own statistics
    check_each_item_alone(tracked.eval(), items)  # evaluation: the running statistics


def test_instance_norm_running_statistics_of_a_ragged_batch(rng):
    """The mean over items of each item's mean and unbiased variance, as each alone gives."""
    items = [rng.standard_normal((2,) + s) * 2 + 1 for s in [(3, 4), (2, 2), (5, 1)]]
    layer = nn.InstanceNorm(2, momentum=0.5, track_running_stats=True, dtype=np.float64)
    layer(Tensor(Ragged.from_list(items)))
    means = np.mean([i.reshape(2, -1).mean(axis=1) for i in items], axis=0)
    variances = np.mean([i.reshape(2, -1).var(axis=1, ddof=1) for i in items], axis=0)
    _close(layer.running_mean, 0.5 * means)
    _close(layer.running_var, 0.5 + 0.5 * variances)


def test_group_and_instance_norm_ragged_gradcheck(rng):
    batch = Ragged.from_list([rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 1, 3)),
                              rng.standard_normal((4, 2, 1))])
    x = Tensor(batch, requires_grad=True)
    w = Tensor(rng.uniform(0.5, 1.5, 4), requires_grad=True)
    b = Tensor(rng.standard_normal(4), requires_grad=True)
    for groups in (1, 2, 4):
        assert gradcheck(lambda x, w, b: F.group_norm(x, groups, w, b), [x, w, b])
    assert gradcheck(lambda x, w, b: F.instance_norm(x, weight=w, bias=b), [x, w, b])
    mean, var = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    assert gradcheck(lambda x, w, b: F.instance_norm(x, mean, var, w, b, use_input_stats=False),
                     [x, w, b])


def test_layer_norm_refuses_a_ragged_batch(rng):
    x = Tensor(Ragged.from_list([rng.standard_normal((2, 6)), rng.standard_normal((2, 9))]))
    with pytest.raises(ArgumentError, match=r"use group_norm\(x, 1\) \(nn.GroupNorm\(1, C\)\)"):
        nn.LayerNorm(6)(x)
    with pytest.raises(ShapeError, match="more than one spatial position in every item"):
        nn.InstanceNorm(2)(Tensor(Ragged.from_list([np.ones((2, 4)), np.ones((2, 1))])))


@settings(max_examples=6, deadline=None)
@given(nd=st.integers(1, 3), seed=st.integers(0, 1000), n=st.integers(1, 3),
       norm=st.sampled_from(["group", "instance"]))
def test_residual_classifier_with_group_norm_trains_each_item_alone(nd, seed, n, norm):
    """Per-item normalisation: a training step on a Ragged batch is every item alone."""
    rng = np.random.default_rng(seed)
    sizes = (8, 24) if nd == 1 else (4, 9) if nd == 2 else (4, 6)
    items = [rng.standard_normal((2,) + tuple(rng.integers(*sizes, size=nd))) for _ in range(n)]
    model = Classifier(2, 3, ndim=nd, widths=(4, 8), residual=True, norm=norm,
                       dtype=np.float64, rng=seed)
    assert check_each_item_alone(model.train(), items).shape == (n, 3)


@settings(max_examples=4, deadline=None)
@given(nd=st.integers(1, 3), seed=st.integers(0, 1000), n=st.integers(1, 3))
def test_residual_classifier_in_eval_mode_each_item_alone(nd, seed, n):
    rng = np.random.default_rng(seed)
    sizes = (8, 24) if nd == 1 else (4, 9) if nd == 2 else (4, 6)
    items = [rng.standard_normal((2,) + tuple(rng.integers(*sizes, size=nd))) for _ in range(n)]
    model = Classifier(2, 3, ndim=nd, widths=(3, 4, 4), residual=True, dtype=np.float64,
                       rng=seed)
    _warm_up(model, items)
    check_each_item_alone(model.eval(), items)
