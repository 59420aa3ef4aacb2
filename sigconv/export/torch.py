"""The ``torch.nn.Module`` twin of a sigconv model: :func:`to_torch_module` (needs PyTorch).

Imported on demand by :func:`sigconv.export.to_torch_module`; importing
this module imports torch.  The twin has the model's module tree, names
and state-dict layouts, so ``twin.state_dict()`` has exactly the model's
keys: weights move with :func:`sigconv.checkpoint.to_torch` and back with
:func:`~sigconv.checkpoint.from_torch`.

Layers with parameters become PyTorch's own (``torch.nn.Conv1d/2d/3d``,
``ConvTranspose*d``, ``GroupNorm``, ``LayerNorm``, ``Linear``); where
sigconv pads asymmetrically or by the input size ("same" with a stride)
the convolution is a subclass that pads first (:class:`PaddedConv2d`, ...),
and an asymmetric transposed padding crops after
(:class:`CroppedConvTranspose2d`, ...).  sigconv's batch and instance
normalisation take any rank, so their twins (:class:`BatchNorm`,
:class:`InstanceNorm`) are PyTorch's own normalisation classes with that
rank check only; pooling, resizing and maxout are small modules here that
take any rank as sigconv's do and compute sigconv's windows.  A model with
an ``_export_forward`` hook becomes a :class:`Composite` whose forward runs
that hook with PyTorch operations.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn as tnn
from torch.nn import functional as TF
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from .. import nn, shapes
from .._validation import as_tuple
from ..checkpoint import to_torch
from ..errors import ShapeError
from ..functional.pooling import gaussian_pool_weights
from ..nn.functional import _nearest_maps
from ..typing import IntOrTuple, Padding, PoolKind
from . import _walk

if TYPE_CHECKING:  # the mixins below are used on torch's layers only
    _TorchModule = tnn.Module
else:
    _TorchModule = object

__all__ = ["to_torch_module", "Composite", "BatchNorm", "InstanceNorm", "MaxPool", "AvgPool",
           "LPPool", "GaussianPool", "GlobalPool", "AdaptivePool", "Maxout", "Upsample",
           "PaddedConv1d", "PaddedConv2d", "PaddedConv3d", "CroppedConvTranspose1d",
           "CroppedConvTranspose2d", "CroppedConvTranspose3d"]

_EXPORTER = "to_torch_module"


def _dtype(array: Any) -> torch.dtype | None:
    """The torch dtype of a sigconv parameter or buffer (None for an absent one)."""
    if array is None:
        return None
    return torch.float64 if np.dtype(array.dtype) == np.float64 else torch.float32


def _spatial(x: torch.Tensor, what: str) -> int:
    nd = x.dim() - 2
    if nd not in (1, 2, 3):
        raise ShapeError(f"{what} expects input (N, C, *spatial) with 1 to 3 spatial axes, got "
                         f"shape {tuple(x.shape)}")
    return nd


def _by_rank(name: str, x: torch.Tensor, what: str) -> Callable[..., torch.Tensor]:
    """torch's ``<name>1d/2d/3d`` for ``x``'s number of spatial axes."""
    return getattr(TF, f"{name}{_spatial(x, what)}d")


def _pads_after(pairs: Sequence[tuple[int, int]]) -> list[int]:
    """``((lo, hi), ...)`` per axis in torch.nn.functional.pad's order (last axis first)."""
    return [v for lo, hi in reversed(pairs) for v in (lo, hi)]


def _max_pool(x: torch.Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
              padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
              ceil_mode: bool = False) -> torch.Tensor:
    k, s, p, d = _walk.window(_spatial(x, "MaxPool"), kernel_size, stride, padding, dilation,
                              ceil_mode)
    return _by_rank("max_pool", x, "MaxPool")(x, k, s, p, d, ceil_mode=bool(ceil_mode))


def _nearest(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """sigconv's nearest-neighbour resize: output ``i`` of ``m`` reads ``floor(i * n / m)``."""
    for axis, index in _nearest_maps(tuple(x.shape[2:]), tuple(size), 2):
        x = x.index_select(axis, torch.from_numpy(np.ascontiguousarray(index)).to(x.device))
    return x


def _powered(x: torch.Tensor, p: float) -> torch.Tensor:
    return x * x if p == 2 else x.abs() if p == 1 else x.abs() ** p


def _root(x: torch.Tensor, p: float) -> torch.Tensor:
    return x if p == 1 else torch.sqrt(x) if p == 2 else x ** (1.0 / p)


# --- convolutions ---

class _SigconvPadding(_TorchModule):
    """Zero-pad by sigconv's rule, then convolve without padding (the layer's ``padding`` is 0)."""

    pairs: tuple[tuple[int, int], ...] | None  # None: by the input size
    sigconv_padding: Padding
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pairs = self.pairs
        if pairs is None:  # "same" with a stride: by the input size
            pairs = shapes.resolve_padding(self.sigconv_padding, tuple(x.shape[2:]),
                                           self.kernel_size, self.stride, self.dilation)
        return super().forward(TF.pad(x, _pads_after(pairs)))


class PaddedConv1d(_SigconvPadding, tnn.Conv1d):
    """``torch.nn.Conv1d`` after sigconv's padding (asymmetric, or "same" with a stride)."""


class PaddedConv2d(_SigconvPadding, tnn.Conv2d):
    """``torch.nn.Conv2d`` after sigconv's padding (asymmetric, or "same" with a stride)."""


class PaddedConv3d(_SigconvPadding, tnn.Conv3d):
    """``torch.nn.Conv3d`` after sigconv's padding (asymmetric, or "same" with a stride)."""


class _Crop(_TorchModule):
    """Crop ``(lo, hi)`` per axis from the uncropped transposed convolution (asymmetric padding)."""

    crop: tuple[tuple[int, int], ...]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        keep = tuple(slice(lo, y.shape[a] - hi) for a, (lo, hi) in enumerate(self.crop, start=2))
        return y[(slice(None), slice(None)) + keep]


# mypy's misc below: torch's forward also takes output_size; a twin is called with x
# only (sigconv's ConvTranspose takes none), and the crop follows sigconv's padding
class CroppedConvTranspose1d(_Crop, tnn.ConvTranspose1d):  # type: ignore[misc]
    """``torch.nn.ConvTranspose1d`` cropped by sigconv's asymmetric ``(lo, hi)`` padding."""


class CroppedConvTranspose2d(_Crop, tnn.ConvTranspose2d):  # type: ignore[misc]
    """``torch.nn.ConvTranspose2d`` cropped by sigconv's asymmetric ``(lo, hi)`` padding."""


class CroppedConvTranspose3d(_Crop, tnn.ConvTranspose3d):  # type: ignore[misc]
    """``torch.nn.ConvTranspose3d`` cropped by sigconv's asymmetric ``(lo, hi)`` padding."""


_PADDED = {1: PaddedConv1d, 2: PaddedConv2d, 3: PaddedConv3d}
_CROPPED: dict[int, type[CroppedConvTranspose1d | CroppedConvTranspose2d |
                         CroppedConvTranspose3d]] = {
    1: CroppedConvTranspose1d, 2: CroppedConvTranspose2d, 3: CroppedConvTranspose3d}


def _conv(layer: nn.Conv, path: str) -> tnn.Module:
    options = dict(stride=layer.stride, dilation=layer.dilation, groups=layer.groups,
                   bias=layer.bias is not None, dtype=_dtype(layer.weight))
    pads = _walk.conv_padding(layer)
    args = (layer.in_channels, layer.out_channels, layer.kernel_size)
    if pads is not None and all(lo == hi for lo, hi in pads):
        conv = getattr(tnn, f"Conv{layer.ndim}d")
        return conv(*args, padding=tuple(lo for lo, _ in pads), **options)
    twin = _PADDED[layer.ndim](*args, padding=0, **options)
    twin.sigconv_padding, twin.pairs = layer.padding, pads
    return twin


def _conv_transpose(layer: nn.ConvTranspose, path: str) -> tnn.Module:
    pads, extra = _walk.conv_transpose_padding(layer)
    options = dict(stride=layer.stride, dilation=layer.dilation, groups=layer.groups,
                   output_padding=extra, bias=layer.bias is not None, dtype=_dtype(layer.weight))
    args = (layer.in_channels, layer.out_channels, layer.kernel_size)
    if all(lo == hi for lo, hi in pads):
        conv = getattr(tnn, f"ConvTranspose{layer.ndim}d")
        return conv(*args, padding=tuple(lo for lo, _ in pads), **options)
    twin = _CROPPED[layer.ndim](*args, padding=0, **options)
    twin.crop = pads
    return twin


# --- pooling, resizing, maxout: any rank, sigconv's windows ---

class _Options(tnn.Module):
    """A parameterless layer holding its sigconv options (shown in its repr)."""

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self._options = tuple(options)
        for name, value in options.items():
            setattr(self, name, value)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in self._options)


class MaxPool(_Options):
    """Maximum over windows, any rank (``torch.nn.functional.max_pool1d/2d/3d``)."""

    kernel_size: IntOrTuple
    stride: IntOrTuple | None
    padding: IntOrTuple
    dilation: IntOrTuple
    ceil_mode: bool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _max_pool(x, self.kernel_size, self.stride, self.padding, self.dilation,
                         self.ceil_mode)


class AvgPool(_Options):
    """Mean over windows, any rank (``torch.nn.functional.avg_pool1d/2d/3d``)."""

    kernel_size: IntOrTuple
    stride: IntOrTuple | None
    padding: IntOrTuple
    ceil_mode: bool
    count_include_pad: bool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s, p, _ = _walk.window(_spatial(x, "AvgPool"), self.kernel_size, self.stride,
                                  self.padding)
        return _by_rank("avg_pool", x, "AvgPool")(x, k, s, p, ceil_mode=bool(self.ceil_mode),
                                                   count_include_pad=bool(self.count_include_pad))


class LPPool(_Options):
    """sigconv's Lp pooling: ``(sum |x|^p)^(1/p)`` over each window; partial ceil-mode
    windows take the norm of their samples (PyTorch's ``lp_pool`` differs there)."""

    p: float
    kernel_size: IntOrTuple
    stride: IntOrTuple | None
    ceil_mode: bool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s, _, _ = _walk.window(_spatial(x, "LPPool"), self.kernel_size, self.stride,
                                  ceil_mode=self.ceil_mode)
        powered = _powered(x, self.p)
        if self.ceil_mode:
            powered = TF.pad(powered, _pads_after([(0, q) for q in _walk.lp_ceil_padding(k, s)]))
        mean = _by_rank("avg_pool", x, "LPPool")(powered, k, s)
        return _root(mean * math.prod(k), self.p)


class GaussianPool(_Options):
    """sigconv's Gaussian-weighted average over windows: a fixed depthwise convolution."""

    kernel_size: IntOrTuple
    sigma: float | Sequence[float]
    stride: IntOrTuple | None
    padding: IntOrTuple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nd = _spatial(x, "GaussianPool")
        k, s, p, _ = _walk.window(nd, self.kernel_size, self.stride, self.padding)
        weights = torch.from_numpy(gaussian_pool_weights(k, self.sigma)).to(x.dtype)
        channels = x.shape[1]
        kernel = weights.reshape((1, 1) + k).expand((channels, 1) + k).to(x.device)
        return _by_rank("conv", x, "GaussianPool")(x, kernel, stride=s, padding=p,
                                                   groups=channels)


def _window_reduce(h: torch.Tensor, axis: int, kind: str, keepdim: bool = True) -> torch.Tensor:
    if kind == "avg":
        return h.mean(dim=axis, keepdim=keepdim)
    if kind == "max":
        return h.max(dim=axis, keepdim=keepdim).values
    return h.sum(dim=axis, keepdim=keepdim)


class GlobalPool(_Options):
    """Pool each channel over all positions, ``(N, C, *spatial) -> (N, C)``."""

    kind: PoolKind
    p: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _spatial(x, "GlobalPool")
        h = x.flatten(2)
        if self.kind == "lp":
            return _root(_window_reduce(_powered(h, self.p), 2, "lp", False), self.p)
        return _window_reduce(h, 2, self.kind, False)


class AdaptivePool(_Options):
    """Pool to ``output_size``: on each axis output ``i`` of ``m`` pools sigconv's (and
    PyTorch's) window ``[floor(i n / m), ceil((i + 1) n / m))``."""

    output_size: int | None | Sequence[int | None]
    kind: PoolKind
    p: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nd = _spatial(x, "AdaptivePool")
        h = _powered(x, self.p) if self.kind == "lp" else x
        for axis, m in enumerate(_walk.adaptive_sizes(self.output_size, nd), start=2):
            if m is None:
                continue
            windows = shapes.adaptive_pool_windows(h.shape[axis], m)
            h = torch.cat([_window_reduce(h.narrow(axis, a, b - a), axis, self.kind)
                           for a, b in windows], dim=axis)
        return _root(h, self.p) if self.kind == "lp" else h


class Maxout(_Options):
    """Maximum over consecutive groups of ``pieces`` channels."""

    pieces: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        if c % self.pieces:
            raise ShapeError(f"Maxout: {c} channels are not a multiple of pieces={self.pieces}")
        groups = x.reshape((n, c // self.pieces, self.pieces) + tuple(x.shape[2:]))
        return groups.max(dim=2).values


class Upsample(_Options):
    """sigconv's nearest-neighbour resize, by ``scale_factor`` or to ``size`` (exact indices)."""

    scale_factor: IntOrTuple | None
    size: IntOrTuple | None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nd = _spatial(x, "Upsample")
        if self.size is not None:
            size = as_tuple(self.size, nd, "size", minimum=1)
        else:
            factors = as_tuple(self.scale_factor, nd, "scale_factor", minimum=1)
            size = tuple(n * f for n, f in zip(x.shape[2:], factors))
        return _nearest(x, size)


# --- normalisation: PyTorch's classes, any rank ---

class BatchNorm(_BatchNorm):
    """PyTorch's batch normalisation for input ``(N, C)`` or ``(N, C, *spatial)``, as sigconv's.

    ``torch.nn.BatchNorm1d/2d/3d`` are this class with a check of one rank.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected input (N, C, *), got {input.dim()}D input")


class InstanceNorm(_InstanceNorm):
    """PyTorch's instance normalisation for input ``(N, C, *spatial)`` of 1 to 3 spatial axes."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        _spatial(input, "InstanceNorm")
        if input.shape[1] != self.num_features:
            raise ShapeError(f"InstanceNorm expects {self.num_features} channels, got input "
                             f"of shape {tuple(input.shape)}")
        return self._apply_instance_norm(input)


def _batch_norm(layer: nn.BatchNorm, path: str) -> tnn.Module:
    return BatchNorm(layer.num_channels, eps=layer.eps, momentum=layer.momentum,
                     affine=layer.affine, track_running_stats=layer.track_running_stats,
                     dtype=_dtype(layer.weight if layer.affine else layer.running_mean))


def _instance_norm(layer: nn.InstanceNorm, path: str) -> tnn.Module:
    return InstanceNorm(layer.num_features, eps=layer.eps, momentum=layer.momentum,
                        affine=layer.affine, track_running_stats=layer.track_running_stats,
                        dtype=_dtype(layer.weight if layer.affine else layer.running_mean))


def _group_norm(layer: nn.GroupNorm, path: str) -> tnn.Module:
    return tnn.GroupNorm(layer.num_groups, layer.num_channels, eps=layer.eps,
                         affine=layer.affine, dtype=_dtype(layer.weight))


def _layer_norm(layer: nn.LayerNorm, path: str) -> tnn.Module:
    return tnn.LayerNorm(layer.normalized_shape, eps=layer.eps,
                         elementwise_affine=layer.elementwise_affine,
                         bias=layer.bias is not None, dtype=_dtype(layer.weight))


# --- models with a hook ---

class _Ops:
    """The operations a model's ``_export_forward`` hook writes its forward with (PyTorch)."""

    def __init__(self, module: tnn.Module) -> None:
        self._module = module

    def child(self, name: str, x: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self._module.get_submodule(name)(x)
        return output

    def add(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b

    def relu(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)

    def softmax(self, x: torch.Tensor, axis: int = 1) -> torch.Tensor:
        return torch.softmax(x, dim=axis)

    def cat(self, values: Sequence[torch.Tensor], axis: int = 1) -> torch.Tensor:
        return torch.cat(list(values), dim=axis)

    def max_pool(self, x: torch.Tensor, kernel_size: IntOrTuple, *,
                 stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
                 dilation: IntOrTuple = 1, ceil_mode: bool = False) -> torch.Tensor:
        return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode)

    def resize_like(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return _nearest(x, like.shape[2:])

    def if_spatial_at_least(self, x: torch.Tensor, minimum: int,
                            then: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        return then(x) if min(x.shape[2:]) >= minimum else x


class Composite(tnn.Module):
    """The twin of a sigconv model whose ``forward`` is Python code over its submodules.

    Holds the twins of the model's submodules under the same names and the
    model's plain options (``steps``, ``ndim``, ...); ``forward`` runs the
    sigconv class's ``_export_forward`` hook with PyTorch operations.
    """

    def __init__(self, sigconv_class: type[nn.Module],
                 children: Sequence[tuple[str, tnn.Module | None]],
                 options: dict[str, Any]) -> None:
        super().__init__()
        self.sigconv_class = sigconv_class
        for name, child in children:
            self.register_module(name, child)
        for name, value in options.items():
            if not hasattr(tnn.Module, name) and name not in self._modules:
                setattr(self, name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = getattr(self.sigconv_class, _walk.HOOK)(self, _Ops(self), x)
        return output

    def _get_name(self) -> str:
        return self.sigconv_class.__name__


# --- the conversion ---

def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _convert(module: nn.Module, path: str) -> tnn.Module:
    kind, rule = _walk.rule_for(module, path, LAYERS, _EXPORTER)
    if kind == "hook":
        children = [(name, None if child is None else _convert(child, _join(path, name)))
                    for name, child in module._modules.items()]
        return Composite(type(module), children, _walk.config_of(module))
    return rule(module, path)


def _sequential(layer: nn.Sequential, path: str) -> tnn.Module:
    return tnn.Sequential(OrderedDict(
        (name, _convert(_walk.present(child, _join(path, name), _EXPORTER), _join(path, name)))
        for name, child in layer._modules.items()))


def _module_list(layer: nn.ModuleList, path: str) -> tnn.Module:
    return tnn.ModuleList(
        _convert(_walk.present(child, _join(path, name), _EXPORTER), _join(path, name))
        for name, child in layer._modules.items())


def _options(cls: type[tnn.Module], *names: str) -> Callable[[Any, str], tnn.Module]:
    """The rule making ``cls`` with the sigconv layer's options ``names``."""
    return lambda layer, path: cls(**{n: getattr(layer, n) for n in names})


#: sigconv layer class -> rule(layer, path) -> torch module.
LAYERS: dict[type[nn.Module], Callable[[Any, str], tnn.Module]] = {
    nn.Conv: _conv, nn.ConvTranspose: _conv_transpose,
    nn.MaxPool: _options(MaxPool, "kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    nn.AvgPool: _options(AvgPool, "kernel_size", "stride", "padding", "ceil_mode",
                         "count_include_pad"),
    nn.LPPool: _options(LPPool, "p", "kernel_size", "stride", "ceil_mode"),
    nn.GaussianPool: _options(GaussianPool, "kernel_size", "sigma", "stride", "padding"),
    nn.GlobalPool: _options(GlobalPool, "kind", "p"),
    nn.AdaptivePool: _options(AdaptivePool, "output_size", "kind", "p"),
    nn.Maxout: _options(Maxout, "pieces"),
    nn.Upsample: _options(Upsample, "scale_factor", "size"),
    nn.BatchNorm: _batch_norm, nn.InstanceNorm: _instance_norm, nn.GroupNorm: _group_norm,
    nn.LayerNorm: _layer_norm,
    nn.ReLU: lambda layer, path: tnn.ReLU(),
    nn.LeakyReLU: lambda layer, path: tnn.LeakyReLU(layer.negative_slope),
    nn.Tanh: lambda layer, path: tnn.Tanh(),
    nn.Sigmoid: lambda layer, path: tnn.Sigmoid(),
    nn.GELU: lambda layer, path: tnn.GELU(layer.approximate),
    nn.SiLU: lambda layer, path: tnn.SiLU(),
    nn.Softmax: lambda layer, path: tnn.Softmax(dim=layer.axis),
    nn.Linear: lambda layer, path: tnn.Linear(layer.in_features, layer.out_features,
                                              bias=layer.bias is not None,
                                              dtype=_dtype(layer.weight)),
    nn.Flatten: lambda layer, path: tnn.Flatten(start_dim=layer.start_axis),
    nn.Dropout: lambda layer, path: tnn.Dropout(layer.p),
    nn.Identity: lambda layer, path: tnn.Identity(),
    nn.Sequential: _sequential, nn.ModuleList: _module_list,
}


def to_torch_module(model: nn.Module) -> tnn.Module:
    """The ``torch.nn.Module`` computing what ``model`` computes, with its weights copied.

    See :func:`sigconv.export.to_torch_module`.
    """
    model = _walk.check_module(model, "to_torch_module")
    twin = _convert(model, "")
    twin.load_state_dict(to_torch(model))  # the same names and layouts, checked strictly
    for name, module in model.named_modules():
        twin.get_submodule(name).training = module.training
    return twin
