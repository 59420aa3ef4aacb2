"""What both exporters are checked on: one catalogue of layers and the demo's models.

Every layer case is built for 1, 2 and 3 spatial axes and run on two input
sizes (:data:`SIZES`); normalisation layers get non-trivial weights and
running statistics (:func:`randomise_norms`), so that evaluation really
reads them.
"""
import numpy as np

from sigconv import nn
from sigconv.models import Classifier
from sigconv.train.tasks import _build

#: Two spatial sizes per number of axes: odd and even, none divisible by every stride.
SIZES = {1: [(11,), (16,)], 2: [(9, 8), (12, 7)], 3: [(6, 7, 5), (8, 5, 6)]}

#: Input channels of every layer case.
CHANNELS = 4


def per_axis(values, nd):
    return tuple(values[:nd])


def _same_last(nd):
    """Two sizes with the same last axis, for layers tied to it (LayerNorm, Linear)."""
    return [s[:-1] + (6,) for s in SIZES[nd]]


#: (name, build(nd, dtype) -> Module, sizes(nd) or None for SIZES[nd])
LAYER_CASES = [
    ("conv_same", lambda nd, dt: nn.Conv(4, 6, 3, ndim=nd, dtype=dt, rng=1), None),
    ("conv_same_even_kernel", lambda nd, dt: nn.Conv(4, 6, 4, ndim=nd, dtype=dt, rng=1), None),
    ("conv_same_stride_dilation_groups", lambda nd, dt: nn.Conv(
        4, 6, 3, ndim=nd, stride=per_axis((2, 1, 3), nd), dilation=2, groups=2, dtype=dt,
        rng=1), None),
    ("conv_valid_stride_no_bias", lambda nd, dt: nn.Conv(
        4, 6, 3, ndim=nd, stride=2, padding="valid", bias=False, dtype=dt, rng=1), None),
    ("conv_full_dilated", lambda nd, dt: nn.Conv(
        4, 6, 2, ndim=nd, padding="full", dilation=2, dtype=dt, rng=1), None),
    ("conv_pairs_depthwise", lambda nd, dt: nn.Conv(
        4, 8, 3, ndim=nd, padding=((1, 2),) * nd, groups=4, dtype=dt, rng=1), None),
    ("conv_int_padding_stride", lambda nd, dt: nn.Conv(
        4, 6, 3, ndim=nd, padding=2, stride=2, dtype=dt, rng=1), None),
    ("conv_transpose", lambda nd, dt: nn.ConvTranspose(
        4, 6, 3, ndim=nd, stride=2, padding=1, output_padding=1, groups=2, dtype=dt, rng=1),
     None),
    ("conv_transpose_pairs_dilated", lambda nd, dt: nn.ConvTranspose(
        4, 4, 2, ndim=nd, stride=3, padding=((1, 0),) * nd, dilation=2, dtype=dt, rng=1), None),
    ("max_pool", lambda nd, dt: nn.MaxPool(3, stride=2, padding=1), None),
    ("max_pool_ceil_dilated", lambda nd, dt: nn.MaxPool(2, stride=2, padding=1, dilation=2,
                                                        ceil_mode=True), None),
    ("avg_pool", lambda nd, dt: nn.AvgPool(3, stride=2, padding=1), None),
    ("avg_pool_ceil_exclude_pad", lambda nd, dt: nn.AvgPool(
        3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), None),
    ("avg_pool_ceil_include_pad", lambda nd, dt: nn.AvgPool(2, padding=1, ceil_mode=True),
     None),
    ("lp_pool_2", lambda nd, dt: nn.LPPool(2, 3, stride=2), None),
    ("lp_pool_3_ceil", lambda nd, dt: nn.LPPool(3, 2, ceil_mode=True), None),
    ("lp_pool_1.5_ceil_stride_above_kernel", lambda nd, dt: nn.LPPool(1.5, 2, stride=3,
                                                                      ceil_mode=True), None),
    ("lp_pool_1_ceil", lambda nd, dt: nn.LPPool(1, 3, stride=2, ceil_mode=True), None),
    ("gaussian_pool", lambda nd, dt: nn.GaussianPool(3, sigma=1.0, stride=2, padding=1), None),
    ("gaussian_pool_per_axis", lambda nd, dt: nn.GaussianPool(
        per_axis((3, 2, 4), nd), sigma=per_axis((0.7, 1.5, 2.0), nd), stride=1), None),
    ("global_avg_pool", lambda nd, dt: nn.GlobalPool("avg"), None),
    ("global_max_pool", lambda nd, dt: nn.GlobalPool("max"), None),
    ("global_lp_pool", lambda nd, dt: nn.GlobalPool("lp", p=3), None),
    ("adaptive_avg_pool", lambda nd, dt: nn.AdaptivePool(3), None),
    ("adaptive_max_pool_keep_axis", lambda nd, dt: nn.AdaptivePool(
        per_axis((3, None, 2), nd), "max"), None),
    ("adaptive_lp_pool", lambda nd, dt: nn.AdaptivePool(2, "lp", p=2), None),
    ("maxout", lambda nd, dt: nn.Maxout(2), None),
    ("batch_norm", lambda nd, dt: nn.BatchNorm(4, dtype=dt), None),
    ("batch_norm_no_affine", lambda nd, dt: nn.BatchNorm(4, affine=False, dtype=dt), None),
    ("batch_norm_batch_statistics", lambda nd, dt: nn.BatchNorm(
        4, track_running_stats=False, dtype=dt), None),
    ("group_norm", lambda nd, dt: nn.GroupNorm(2, 4, dtype=dt), None),
    ("group_norm_no_affine", lambda nd, dt: nn.GroupNorm(4, 4, affine=False, dtype=dt), None),
    ("instance_norm", lambda nd, dt: nn.InstanceNorm(4, affine=True, dtype=dt), None),
    ("instance_norm_running", lambda nd, dt: nn.InstanceNorm(
        4, affine=True, track_running_stats=True, dtype=dt), None),
    ("layer_norm", lambda nd, dt: nn.LayerNorm(6, dtype=dt), _same_last),
    ("relu", lambda nd, dt: nn.ReLU(), None),
    ("leaky_relu", lambda nd, dt: nn.LeakyReLU(0.2), None),
    ("tanh", lambda nd, dt: nn.Tanh(), None),
    ("sigmoid", lambda nd, dt: nn.Sigmoid(), None),
    ("gelu", lambda nd, dt: nn.GELU(), None),
    ("gelu_tanh", lambda nd, dt: nn.GELU("tanh"), None),
    ("silu", lambda nd, dt: nn.SiLU(), None),
    ("softmax_channels", lambda nd, dt: nn.Softmax(), None),
    ("softmax_last_axis", lambda nd, dt: nn.Softmax(axis=-1), None),
    ("linear_last_axis", lambda nd, dt: nn.Linear(6, 5, dtype=dt, rng=1), _same_last),
    ("flatten_linear", lambda nd, dt: nn.Sequential(
        nn.AdaptivePool(2), nn.Flatten(), nn.Linear(4 * 2 ** nd, 5, dtype=dt, rng=1)), None),
    ("flatten_from_axis_2", lambda nd, dt: nn.Flatten(start_axis=2), None),
    ("dropout", lambda nd, dt: nn.Dropout(0.5), None),
    ("identity", lambda nd, dt: nn.Identity(), None),
    ("upsample_scale", lambda nd, dt: nn.Upsample(scale_factor=per_axis((2, 3, 1), nd)), None),
    ("upsample_size", lambda nd, dt: nn.Upsample(size=per_axis((5, 13, 4), nd)), None),
    ("residual", lambda nd, dt: nn.Residual(nn.Sequential(
        nn.Conv(4, 4, 3, ndim=nd, dtype=dt, rng=1), nn.ReLU())), None),
    ("residual_shortcut", lambda nd, dt: nn.Residual(
        nn.Conv(4, 6, 3, ndim=nd, stride=2, padding=1, dtype=dt, rng=1),
        shortcut=nn.Conv(4, 6, 1, ndim=nd, stride=2, padding=0, dtype=dt, rng=2)), None),
]


def randomise_norms(model, seed=0):
    """Non-trivial affine weights and running statistics in every normalisation layer."""
    rng = np.random.default_rng(seed)
    for module in model.modules():
        for name in ("weight", "bias"):
            param = module._parameters.get(name) if isinstance(
                module, (nn.BatchNorm, nn.GroupNorm, nn.InstanceNorm, nn.LayerNorm)) else None
            if param is not None:
                shift = 1.0 if name == "weight" else 0.0
                param.data[...] = shift + 0.3 * rng.standard_normal(param.shape)
        if getattr(module, "running_mean", None) is not None:
            module.running_mean[...] = 0.5 * rng.standard_normal(module.running_mean.shape)
            module.running_var[...] = rng.uniform(0.5, 2.0, module.running_var.shape)
    return model


def layer(name, nd, dtype=np.float32):
    """The layer case ``name`` for ``nd`` spatial axes, in evaluation mode."""
    build, sizes = next((b, s) for n, b, s in LAYER_CASES if n == name)
    module = randomise_norms(build(nd, dtype)).eval()
    return module, (sizes(nd) if sizes else SIZES[nd])


def inputs(sizes, dtype=np.float32, channels=CHANNELS, seed=0, batch=2):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, channels) + tuple(s)).astype(dtype) for s in sizes]


#: The demo's models (sigconv demo: sigconv.train.tasks._build with the demo's channels and
#: classes) and a residual classifier, with the input sizes they are checked on.
#: name -> (build(), channels, spatial sizes)
MODELS = {
    "demo 1-D classifier": (lambda: _build("classifier", 1, 3, 1, 0, dropout=0.2),
                            1, [(300,), (517,)]),
    "demo 2-D classifier": (lambda: _build("classifier", 1, 10, 2, 0, dropout=0.2),
                            1, [(8, 8), (13, 10)]),
    "demo 3-D encoder-decoder": (lambda: _build("encoder-decoder", 1, 1, 3, 0),
                                 1, [(6, 6, 6), (5, 7, 4), (1, 6, 5)]),
    "demo 3-D residual encoder-decoder": (
        lambda: _build("residual-encoder-decoder", 1, 1, 3, 0), 1, [(6, 6, 6), (7, 5, 6)]),
    "demo 3-D labeller": (lambda: _build("labeller", 1, 4, 3, 0), 1, [(6, 6, 6), (5, 7, 6)]),
    "residual classifier, batch norm": (lambda: Classifier(
        2, 3, ndim=2, widths=(4, 8, 8), residual=True, rng=0), 2, [(12, 12), (9, 14)]),
    "residual classifier, group norm": (lambda: Classifier(
        2, 3, ndim=1, widths=(4, 8, 8), residual=True, norm="group", rng=0), 2, [(20,), (33,)]),
    "residual classifier, instance norm": (lambda: Classifier(
        2, 3, ndim=3, widths=(4, 8), residual=True, norm="instance", global_pool="max",
        rng=0), 2, [(6, 6, 6), (5, 7, 6)]),
}


def model(name, dtype=np.float32):
    """The model ``name`` of :data:`MODELS` in ``dtype``, evaluation mode, with its sizes."""
    build, channels, sizes = MODELS[name]
    net = randomise_norms(build().astype(dtype)).eval()
    return net, channels, sizes
