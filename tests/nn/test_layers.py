"""Every layer against finite differences in float64, for each rank it supports."""
import numpy as np
import pytest

from sigconv import Tensor, gradcheck, nn
from sigconv.nn import functional as F


def x_of(rng, *shape):
    return Tensor(rng.standard_normal(shape), requires_grad=True)


def check_layer(layer, x):
    """gradcheck of a layer with respect to its input and every parameter."""
    params = list(layer.parameters())
    assert gradcheck(lambda x, *p: layer(x), [x] + params)


@pytest.mark.parametrize("ndim, options", [
    (1, dict()),
    (1, dict(stride=2, dilation=2, padding="valid")),
    (2, dict()),
    (2, dict(stride=2, groups=2)),
    (2, dict(kernel_size=(2, 3), padding="full", bias=False)),
    (3, dict()),
    (3, dict(stride=(1, 2, 1), padding=1)),
])
def test_conv(rng, ndim, options):
    options = dict(options)
    kernel = options.pop("kernel_size", 3)
    layer = nn.Conv(2, 4, kernel, ndim=ndim, dtype=np.float64, rng=0, **options)
    check_layer(layer, x_of(rng, 2, 2, *(5,) * ndim))


@pytest.mark.parametrize("shape", [(2, 2, 6), (2, 2, 6, 5), (1, 2, 4, 4, 4)])
@pytest.mark.parametrize("make", [
    lambda: nn.MaxPool(2),
    lambda: nn.MaxPool(3, stride=1, padding=1),
    lambda: nn.AvgPool(2, ceil_mode=True),
    lambda: nn.AvgPool(3, stride=2, padding=1, count_include_pad=False),
    lambda: nn.LPPool(2, 2),
    lambda: nn.LPPool(3, 2, stride=1),
    lambda: nn.GaussianPool(3, sigma=1.0, stride=2, padding=1),
    lambda: nn.GlobalPool("avg"),
    lambda: nn.GlobalPool("max"),
    lambda: nn.GlobalPool("lp", p=3),
    lambda: nn.AdaptivePool(2, "avg"),
    lambda: nn.AdaptivePool(3, "max"),
    lambda: nn.AdaptivePool(2, "lp"),
    lambda: nn.Maxout(2),
], ids=["max", "max-overlap", "avg-ceil", "avg-nopad", "lp2", "lp3", "gauss", "global-avg",
        "global-max", "global-lp", "adaptive-avg", "adaptive-max", "adaptive-lp", "maxout"])
def test_pooling_any_rank(rng, make, shape):
    check_layer(make(), x_of(rng, *shape))


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 3, 4, 4), (2, 3, 3, 3, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(rng, shape, training):
    layer = nn.BatchNorm(3, dtype=np.float64)
    layer.weight.data[:] = rng.uniform(0.5, 2, 3)
    layer.bias.data[:] = rng.standard_normal(3)
    layer.running_mean[:] = rng.standard_normal(3)
    layer.running_var[:] = rng.uniform(0.5, 2, 3)
    layer.train(training)
    check_layer(layer, x_of(rng, *shape))


def test_batch_norm_without_affine(rng):
    check_layer(nn.BatchNorm(3, affine=False, dtype=np.float64), x_of(rng, 4, 3, 5))


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.LeakyReLU(0.2), nn.Tanh(), nn.Sigmoid(),
                                   nn.Softmax(1), nn.Flatten(), nn.Identity(),
                                   nn.Upsample(scale_factor=2), nn.Upsample(size=(3, 7))],
                         ids=lambda m: type(m).__name__)
def test_elementwise_and_shape_layers(rng, layer):
    check_layer(layer, x_of(rng, 2, 3, 4, 5))


def test_linear(rng):
    check_layer(nn.Linear(5, 3, dtype=np.float64, rng=0), x_of(rng, 4, 5))
    check_layer(nn.Linear(5, 3, bias=False, dtype=np.float64, rng=0), x_of(rng, 2, 4, 5))


def test_dropout(rng):
    layer = nn.Dropout(0.4)

    def fixed_mask(x):
        layer.rng = np.random.default_rng(3)  # the same mask for every evaluation
        return layer(x)

    x = x_of(rng, 4, 6)
    assert gradcheck(fixed_mask, [x])
    out = fixed_mask(Tensor(np.ones((200, 50)))).data
    assert set(np.unique(out)) <= {0.0, 1 / 0.6}
    assert abs((out == 0).mean() - 0.4) < 0.02
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, x.data)


def test_max_unpool(rng):
    x = rng.standard_normal((2, 2, 6, 6))
    import sigconv.functional as SF
    pooled, indices = SF.max_pool(x, 2, return_indices=True)
    p = Tensor(pooled, requires_grad=True)
    assert gradcheck(lambda p: F.max_unpool(p, indices, 2), [p])


def test_interpolate_matches_torch(torch, rng):
    x = rng.standard_normal((2, 3, 5, 7))
    ours = F.interpolate(x, (8, 4)).data
    theirs = torch.nn.functional.interpolate(torch.from_numpy(x), size=(8, 4), mode="nearest")
    np.testing.assert_array_equal(ours, theirs.numpy())


def test_batch_norm_running_statistics_match_torch(torch, rng):
    ours = nn.BatchNorm(3, momentum=0.2)
    theirs = torch.nn.BatchNorm2d(3, momentum=0.2)
    for _ in range(3):
        x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32) * 2 + 1
        np.testing.assert_allclose(ours(x).data, theirs(torch.from_numpy(x)).detach().numpy(),
                                   atol=1e-5)
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-5)
    ours.eval(), theirs.eval()
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(ours(x).data, theirs(torch.from_numpy(x)).detach().numpy(),
                               atol=1e-5)


def test_batch_norm_cumulative_average(rng):
    layer = nn.BatchNorm(2, momentum=None)
    batches = [rng.standard_normal((8, 2)).astype(np.float32) + i for i in range(3)]
    for b in batches:
        layer(b)
    np.testing.assert_allclose(layer.running_mean, np.mean([b.mean(0) for b in batches], 0),
                               rtol=1e-5)
    assert int(layer.num_batches_tracked) == 3


def test_float32_parameters_by_default(rng):
    for layer in (nn.Conv(1, 2, 3, ndim=1), nn.Linear(2, 3), nn.BatchNorm(2)):
        assert all(p.dtype == np.float32 for p in layer.parameters())
    layer = nn.Conv(1, 2, 3, ndim=1)
    out = layer(rng.standard_normal((1, 1, 8)).astype(np.float32))
    assert out.dtype == np.float32
    out.sum().backward()
    assert layer.weight.grad.dtype == np.float32


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("options", [dict(), dict(stride=2, padding=1, output_padding=1),
                                     dict(groups=2, dilation=2, bias=False)])
def test_conv_transpose(rng, ndim, options):
    layer = nn.ConvTranspose(2, 2, 3 if ndim < 3 else 2, ndim=ndim, dtype=np.float64, rng=0,
                             **options)
    check_layer(layer, x_of(rng, 1, 2, *(3,) * ndim))


def test_conv_transpose_matches_torch(torch, rng):
    ours = nn.ConvTranspose(4, 6, 3, ndim=2, stride=2, padding=1, groups=2, rng=0)
    theirs = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(ours(x, output_size=(10, 10)).data,
                               theirs(torch.from_numpy(x), output_size=(10, 10)).detach().numpy(),
                               atol=1e-5)


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("options", [dict(), dict(stride=2, padding="same", bias=False)])
def test_local_conv(rng, ndim, options):
    size = (5 if ndim == 1 else 4 if ndim == 2 else 3,) * ndim
    layer = nn.LocalConv(2, 2, 2, ndim=ndim, input_size=size, dtype=np.float64, rng=0, **options)
    check_layer(layer, x_of(rng, 1, 2, *size))


@pytest.mark.parametrize("ndim, options", [
    (1, dict(tile=2)), (1, dict(tile=3, stride=2, padding="valid")),
    (2, dict(tile=2)), (2, dict(tile=(1, 2), stride=2, padding="valid")),
    (3, dict(tile=(2, 1, 1))),
])
def test_tiled_conv(rng, ndim, options):
    # tiny: finite differences cost two forward calls per weight and input value
    layer = nn.TiledConv(1, 2, 2, ndim=ndim, dtype=np.float64, rng=0, **options)
    check_layer(layer, x_of(rng, 1, 1, *(5 if ndim == 1 else 4 if ndim == 2 else 3,) * ndim))


def test_tiled_conv_with_unit_tile_is_conv(rng):
    tiled = nn.TiledConv(2, 3, 3, ndim=2, tile=1, rng=0)
    conv = nn.Conv(2, 3, 3, ndim=2)
    conv.weight.data[...] = tiled.weight.data[..., 0, 0]
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(tiled(x).data, conv(x).data, atol=1e-5)


def test_local_conv_input_size_is_checked():
    layer = nn.LocalConv(1, 2, 3, ndim=2, input_size=(6, 6))
    with pytest.raises(Exception, match=r"built for inputs of spatial size \(6, 6\)"):
        layer(np.zeros((1, 1, 7, 6), np.float32))


@pytest.mark.parametrize("ndim", [1, 2])
def test_separable_and_fft_conv_are_differentiable(rng, ndim):
    x = x_of(rng, 1, 2, *(5,) * ndim)
    factors = [Tensor(rng.standard_normal(shape), requires_grad=True)
               for shape in [(2, 3), (3,)][:ndim]]  # per-channel and shared factors
    bias = Tensor(rng.standard_normal(2), requires_grad=True)
    assert gradcheck(lambda x, b, *f: F.separable_conv(x, f, b, padding="same"),
                     [x, bias] + factors)
    w = Tensor(rng.standard_normal((2, 2) + (3,) * ndim), requires_grad=True)
    assert gradcheck(lambda x, w: F.fft_conv(x, w, padding="same"), [x, w])
